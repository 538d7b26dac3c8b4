"""Inference-time folding of BatchNorm into convolutions: same outputs, and safe beside other threads."""

import threading

import pytest
import torch
from torch import nn

from thanosql_assets.models.embedder import fold_for_inference
from thanosql_assets.models.simclr.backbones import build_backbone


def trained_looking(backbone: str) -> nn.Module:
    """A backbone whose BatchNorms hold non-trivial statistics, as after training."""
    torch.manual_seed(0)
    module = build_backbone(backbone, 1)
    for norm in module.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(norm.weight, 0.5, 1.5)
            nn.init.uniform_(norm.bias, -0.2, 0.2)
    return module.eval()


@pytest.mark.parametrize("backbone", ["small_cnn", "resnet18", "resnet50"])
def test_folding_removes_every_batchnorm_and_keeps_the_outputs(backbone):
    module = trained_looking(backbone)
    folded = fold_for_inference(module)
    assert not [m for m in folded.modules() if isinstance(m, nn.BatchNorm2d)]
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(folded(images.contiguous(memory_format=torch.channels_last)), module(images), atol=1e-4, rtol=1e-4)


def test_folding_a_model_does_not_disturb_inference_in_other_threads():
    # The SQL server serves searches on threads while a CONVERT loads (and folds) a new model version.
    serving = trained_looking("small_cnn")
    errors: list[Exception] = []
    done = threading.Event()

    def keep_inferring():
        while not done.is_set():
            try:
                with torch.no_grad():
                    serving(torch.rand(8, 1, 28, 28))
            except Exception as error:  # noqa: BLE001 - any failure fails the test
                errors.append(error)
                return

    thread = threading.Thread(target=keep_inferring)
    thread.start()
    try:
        for _ in range(30):
            fold_for_inference(build_backbone("small_cnn", 1))
    finally:
        done.set()
        thread.join()
    assert not errors, errors
