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


def test_the_folded_copy_follows_training_and_moves():
    import numpy as np

    from thanosql_assets.models.embedder import ImageEmbedder
    from thanosql_assets.models.images import ImageGeometry

    embedder = ImageEmbedder(trained_looking("small_cnn"), ImageGeometry(1, 28, 28), torch.tensor([0.5]), torch.tensor([0.25])).eval()
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    before = embedder.embed(images)  # folds and keeps the copy
    embedder.train()
    with torch.no_grad():
        for parameter in embedder.backbone.parameters():
            parameter.mul_(1.5)  # as a training step would change them
    embedder.eval()
    after = embedder.embed(images)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, embedder(torch.from_numpy(images)).detach().numpy(), atol=0.05, rtol=0.05)  # bf16 where native
    assert "_inference_backbone" in embedder.__dict__
    embedder.double()  # a cast (as .to() and .cpu()) drops the copy too
    assert "_inference_backbone" not in embedder.__dict__
