"""Choosing where training runs, without touching CUDA before DDP forks its processes."""

import pytest
import torch

from thanosql.errors import DataError
from thanosql_assets.models.training import is_distributed, pick_device


def test_ddp_is_several_devices_or_nodes():
    assert not is_distributed(1, 1)
    assert is_distributed(2, 1) and is_distributed(1, 2)


def test_gpus_are_counted_through_nvml_before_ddp_and_through_cuda_otherwise(monkeypatch):
    # torch.cuda.is_available initializes the CUDA driver, after which forked processes cannot use
    # the GPUs; device_count asks NVML. Here: a machine with 2 GPUs, where the driver must not start.
    def initializes_the_driver():
        raise AssertionError("torch.cuda.is_available() called before a DDP fork")

    monkeypatch.setattr(torch.cuda, "is_available", initializes_the_driver)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("auto", distributed=True) == "cuda"
    assert pick_device("cuda", distributed=True) == "cuda"
    assert pick_device("cpu", distributed=True) == "cpu"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # one device: CUDA's own, stronger answer
    assert pick_device("auto") == "cpu"
    with pytest.raises(DataError, match="asks for a GPU"):
        pick_device("cuda")


def test_a_pretrained_starts_head_is_fitted_on_the_cpu_before_ddp(monkeypatch):
    import numpy as np

    from thanosql_assets.models.classifiers import trainer
    from thanosql_assets.models.classifiers.config import ClassifierConfig
    from thanosql_assets.models.embedder import ImageEmbedder
    from thanosql_assets.models.images import ImageGeometry
    from thanosql_assets.models.simclr.backbones import build_backbone

    class HeadFitted(Exception):
        pass

    def fit_head(classifier, images, targets, device, **kwargs):
        raise HeadFitted(device)

    monkeypatch.setattr(trainer, "pick_device", lambda requested, distributed=False: "cuda")  # a GPU machine
    monkeypatch.setattr(trainer, "_fit_head", fit_head)
    geometry = ImageGeometry(1, 16, 16)
    embedder = ImageEmbedder(build_backbone("small_cnn", 1), geometry, torch.tensor([0.4]), torch.tensor([0.25])).eval()
    images, targets = np.zeros((8, 1, 16, 16), np.uint8), np.array([0, 1] * 4)
    for devices, fitted_on in ((2, "cpu"), (1, "cuda")):
        with pytest.raises(HeadFitted) as fitted:
            trainer.train_classifier(
                images, targets, ["a", "b"], geometry, ClassifierConfig(devices=devices), "resnet18", lambda _: None, start=embedder
            )
        assert fitted.value.args == (fitted_on,)
