"""Encoders, by name (the BUILD MODEL option `backbone`).

`small_cnn` suits small images on a CPU (MNIST-sized digits train at hundreds of images per
second on two cores); the torchvision ResNets are the usual SimCLR encoders and belong on a
GPU. The ResNets get a 3x3 stride-1 stem without max-pooling, as SimCLR uses for small
(CIFAR-sized) images, and take any number of input channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


def _conv_block(in_channels: int, out_channels: int, ceil_mode: bool = False) -> list[nn.Module]:
    """3x3 convolution, BatchNorm, 2x2 max-pooling, ReLU.

    Pooling before the ReLU computes the same function as after it (both take maxima, and ReLU
    keeps order) with the ReLU on a quarter of the values; these elementwise passes, not the
    convolutions, are most of a training step of this small network on a CPU.
    """
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.MaxPool2d(2, ceil_mode=ceil_mode),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks (32-64-128 channels) with max-pooling, then a linear map of the
    4x4 feature map to the embedding.

    Keeping the coarse 4x4 layout instead of global average pooling keeps *where* strokes are,
    which is much of what tells digits apart (P@4 on MNIST rose from about 0.88 to 0.94 with it
    in the same training time; see bench/simclr_quality.py).
    """

    def __init__(self, in_channels: int, embedding_dim: int = 128, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            *_conv_block(in_channels, width),
            *_conv_block(width, 2 * width),
            *_conv_block(2 * width, 4 * width, ceil_mode=True),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(4 * width * 16, embedding_dim),
        )
        self.output_dim = embedding_dim

    def forward(self, x):
        return self.features(x)


def _resnet(factory_name: str) -> Callable[[int, int], nn.Module]:
    def build(in_channels: int, embedding_dim: int) -> nn.Module:
        import torchvision

        model = getattr(torchvision.models, factory_name)(weights=None)
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
        feature_dim = model.fc.in_features
        model.fc = nn.Identity() if embedding_dim == feature_dim else nn.Linear(feature_dim, embedding_dim)
        model.output_dim = embedding_dim
        return model

    return build


@dataclass(frozen=True)
class Backbone:
    name: str
    build: Callable[[int, int], nn.Module]  # (in_channels, embedding_dim) -> module with .output_dim
    default_embedding_dim: int
    description: str


BACKBONES: dict[str, Backbone] = {
    "small_cnn": Backbone("small_cnn", lambda c, d: SmallCNN(c, d), 128, "3-layer CNN for small images; fast on a CPU"),
    "resnet18": Backbone("resnet18", _resnet("resnet18"), 512, "torchvision ResNet-18 (GPU recommended)"),
    "resnet34": Backbone("resnet34", _resnet("resnet34"), 512, "torchvision ResNet-34 (GPU recommended)"),
    "resnet50": Backbone("resnet50", _resnet("resnet50"), 2048, "torchvision ResNet-50 (GPU recommended)"),
}


def build_backbone(name: str, in_channels: int, embedding_dim: int | None = None) -> nn.Module:
    backbone = BACKBONES[name]
    return backbone.build(in_channels, embedding_dim or backbone.default_embedding_dim)
