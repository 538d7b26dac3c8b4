"""The classifier networks: torchvision architectures, untrained, adapted to the images' channels and size.

Every stock network downsamples its input 32x, a quarter or half of that in its stem, which
suits 224 px photos: a 28 px digit would be 1x1 after the third of five stages. For small
inputs the stem downsamples less (`stem_stride`), so the last feature map keeps a few cells
per side; the Vision Transformer gets smaller patches instead. The rest of each architecture
is torchvision's.

These changes make these networks learn within a few short epochs from scratch (BUILD MODEL's
default is 3 epochs of batch 16): stochastic depth is off (it regularizes long trainings and
slows short ones), BatchNorm statistics follow recent steps (`_short_training_batch_norm`),
EfficientNet's last layer starts at PyTorch's scale rather than ImageNet's, and ConvNeXt is built as in its paper's ImageNet recipe minus what only
pays off over hundreds of epochs (see `_convnext`).

A network comes as (encoder, head): the encoder maps normalized images B x C x H x W to
features B x F and has `.output_dim = F`; the head, the network's last linear layer, maps
features to logits B x K. Fine-tuning a SimCLR model swaps in its encoder (`ImageClassifier.from_embedder`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# A stem downsamples less until the last feature map keeps this many cells per side or more
# (ResNets: 4x4 for 28 px digits, as SimCLR's CIFAR ResNets), or it reaches its family's minimum.
_MIN_LAST_SIDE = 3.5  # 3.5 cells round up to 4


@dataclass(frozen=True)
class _Family:
    stock_stem_stride: int  # the rest of the network downsamples 32 / stock_stem_stride
    min_stem_stride: int  # the least a CPU can afford (ConvNeXt's 7x7 depthwise convolutions at full resolution cannot)
    learning_rate: float


_FAMILIES = {
    "resnet": _Family(4, 1, 2e-3),
    "convnext": _Family(4, 2, 1e-3),
    "efficientnet": _Family(2, 1, 2e-3),
    "mobilenet": _Family(2, 1, 2e-3),
    "vit": _Family(16, 1, 3e-4),
}
# ViT sizes as torchvision's factories set them: layers, heads, hidden size, MLP size.
_VIT_SIZES = {"vit_b_16": (12, 12, 768, 3072), "vit_b_32": (12, 12, 768, 3072), "vit_l_16": (24, 16, 1024, 4096)}


def _family(name: str) -> _Family:
    for prefix, family in _FAMILIES.items():
        if name.startswith(prefix):
            return family
    raise ValueError(f"no classifier network named {name!r}")


def stem_stride(name: str, input_size: int) -> int:
    """How much the stem of CNN `name` downsamples `input_size` px images: the stock stride for
    photo-sized inputs, halved while the last feature map would have under 4 cells per side."""
    family = _family(name)
    rest = 32 // family.stock_stem_stride
    stride = family.stock_stem_stride
    while stride > family.min_stem_stride and input_size / (stride * rest) < _MIN_LAST_SIDE:
        stride //= 2
    return stride


def vit_patch_size(input_size: int) -> int:
    """ViT patches: 16 px as ViT-B/16 for photos, smaller for small images so they still make about 8 x 8 tokens."""
    return min(16, math.ceil(input_size / 8))


def default_learning_rate(name: str) -> float:
    """Peak AdamW learning rate of the one-cycle schedule when training network `name` from scratch."""
    return _family(name).learning_rate


def describe_network(name: str, in_channels: int, input_size: int) -> str:
    """One line saying what trains, e.g. "torchvision resnet18, 3x3 stride-1 stem, no max-pool (1-channel 28 px input)"."""
    family = _family(name)
    stride = stem_stride(name, input_size)
    if name.startswith("vit"):
        patch = vit_patch_size(input_size)
        tokens = math.ceil(input_size / patch)
        adaptation = f"{patch}x{patch} patches ({tokens}x{tokens} tokens)"
    elif stride == family.stock_stem_stride:
        adaptation = "stock stem"
    elif name.startswith("resnet"):
        adaptation = "3x3 stride-1 stem, no max-pool" if stride == 1 else "7x7 stride-2 stem, no max-pool"
    elif name.startswith("convnext"):
        adaptation = "convolutional stem (four 3x3 convolutions at full resolution, then 3x3 stride 2)"
    else:
        adaptation = "stride-1 stem"
    return f"torchvision {name}, {adaptation} ({in_channels}-channel {input_size} px input)"


def build_network(name: str, in_channels: int, num_classes: int, input_size: int) -> tuple[nn.Module, nn.Module]:
    """(encoder, head) of torchvision's architecture `name` (e.g. resnet18, convnext_tiny,
    efficientnet_v2_s, mobilenet_v3_large, vit_b_16), untrained, for `in_channels`-channel
    images of `input_size` px: encoder float B x C x H x W -> B x F (`.output_dim` = F), head B x F -> B x K."""
    import torchvision

    if not hasattr(torchvision.models, name):
        raise ValueError(f"torchvision has no network named {name!r}")
    stride = stem_stride(name, input_size)
    if name.startswith("vit"):
        model = _vit(name, in_channels, num_classes, input_size)
    elif name.startswith("resnet"):
        model = _resnet(name, in_channels, num_classes, stride)
    elif name.startswith("convnext"):
        model = _convnext(name, in_channels, num_classes, stride)
    elif name.startswith(("efficientnet", "mobilenet")):
        model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **_no_stochastic_depth(name))
        model.features[0][0] = _replace_conv(model.features[0][0], in_channels, stride)
        _short_training_batch_norm(model)
    else:
        raise ValueError(f"no classifier network named {name!r}")
    head = detach_last_linear(model)
    if name.startswith("efficientnet"):
        # torchvision draws EfficientNet's last layer from ±1/sqrt(classes): small for ImageNet's
        # 1,000 classes, but for 10 it starts with logits so large that a default BUILD's loss
        # began above chance and ended at half of ResNet18's accuracy. PyTorch's default scales
        # with the features instead.
        head.reset_parameters()
    model.output_dim = head.in_features
    return model, head


def _short_training_batch_norm(model: nn.Module) -> None:
    """BatchNorm running statistics that follow the last ~10 steps (PyTorch's momentum 0.1).

    MobileNetV3's ImageNet recipe averages them over ~100 steps (momentum 0.01): after a few
    hundred steps from scratch they still mix in the statistics of early, very different
    weights, and in eval mode the network gave every image the same class."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1


def _no_stochastic_depth(name: str) -> dict:
    # MobileNetV3 has none; EfficientNetV2 drops blocks with up to 20% probability by default.
    return {"stochastic_depth_prob": 0.0} if name.startswith("efficientnet") else {}


def _replace_conv(conv: nn.Conv2d, in_channels: int, stride: int, kernel_size: int | None = None) -> nn.Conv2d:
    """A copy of stem convolution `conv` with `in_channels` inputs, `stride` and 'same' padding,
    initialized as torchvision initializes its CNNs' convolutions."""
    kernel = kernel_size or conv.kernel_size[0]
    replacement = nn.Conv2d(
        in_channels, conv.out_channels, kernel, stride=stride, padding=(kernel - 1) // 2, bias=conv.bias is not None
    )
    nn.init.kaiming_normal_(replacement.weight, mode="fan_out", nonlinearity="relu")
    if replacement.bias is not None:
        nn.init.zeros_(replacement.bias)
    return replacement


def _resnet(name: str, in_channels: int, num_classes: int, stride: int) -> nn.Module:
    import torchvision

    # zero_init_residual stays off: residual branches starting at zero learn measurably slower
    # in a few hundred steps.
    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
    if stride == 1:  # as SimCLR and CIFAR ResNets: a 3x3 stem that keeps every pixel
        model.conv1 = _replace_conv(model.conv1, in_channels, 1, kernel_size=3)
    else:
        model.conv1 = _replace_conv(model.conv1, in_channels, 2)
    if stride < 4:
        model.maxpool = nn.Identity()
    return model


def _convnext(name: str, in_channels: int, num_classes: int, stride: int) -> nn.Module:
    """ConvNeXt without the parts of its ImageNet recipe that only pay off over hundreds of epochs:
    layer scale starts at 1 rather than 1e-6 (blocks that start as identities take many steps to
    contribute), weights get PyTorch's default initialization rather than a 0.02 standard
    deviation, and no stochastic depth. For small images a convolutional stem replaces the
    4x4 patchify stem (`ConvStem`)."""
    import torchvision

    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes, stochastic_depth_prob=0.0, layer_scale=1.0)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.reset_parameters()
    patchify = model.features[0][0]
    if stride == 4:
        model.features[0][0] = nn.Conv2d(in_channels, patchify.out_channels, kernel_size=4, stride=4)
    else:
        model.features[0][0] = ConvStem(in_channels, patchify.out_channels)
    return model


def _vit(name: str, in_channels: int, num_classes: int, input_size: int) -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    if name not in _VIT_SIZES:
        raise ValueError(f"no classifier network named {name!r}")
    layers, heads, hidden, mlp = _VIT_SIZES[name]
    patch = vit_patch_size(input_size)
    model = VisionTransformer(
        image_size=math.ceil(input_size / patch) * patch,
        patch_size=patch,
        num_layers=layers,
        num_heads=heads,
        hidden_dim=hidden,
        mlp_dim=mlp,
        num_classes=num_classes,
    )
    if in_channels != 3:
        model.conv_proj = nn.Conv2d(in_channels, hidden, kernel_size=patch, stride=patch)
        fan_in = in_channels * patch * patch  # as VisionTransformer initializes its patch projection
        nn.init.trunc_normal_(model.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(model.conv_proj.bias)
    return PadToSquare(model, model.image_size)


def detach_last_linear(model: nn.Module) -> nn.Linear:
    """The model's last nn.Linear in the order its modules are registered (its classification
    layer), replaced in the model by nn.Identity."""
    name = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    parent_name, _, child_name = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    last = getattr(parent, child_name)
    setattr(parent, child_name, nn.Identity())
    return last


class ConvStem(nn.Sequential):
    """ConvNeXt's stem for small images: 3x3 convolutions at full resolution, then a 3x3
    stride-2 one (B x C x H x W -> B x out_channels x H/2 x W/2).

    A 2x2 patchify stem alone leaves stroke-level detail to the first 7x7 depthwise blocks at
    half resolution, and from scratch on 28 px digits that learned markedly worse in a few
    epochs; full-resolution 3x3 convolutions (as a ResNet's stride-1 stem and first stage)
    recover most of it. A stride-1 stem for the whole network would too, at several times the cost.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, depth: int = 4):
        layers: list[nn.Module] = []
        for index in range(depth):
            layers += [nn.Conv2d(in_channels if index == 0 else width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.GELU()]
        super().__init__(*layers, nn.Conv2d(width, out_channels, 3, stride=2, padding=1))


class PadToSquare(nn.Module):
    """Pads images on the right and bottom to `side` x `side` px, then runs `inner`: a ViT's
    patches must tile the image it was built for."""

    def __init__(self, inner: nn.Module, side: int):
        super().__init__()
        self.inner = inner
        self.side = side

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if (height, width) != (self.side, self.side):
            images = F.pad(images, (0, self.side - width, 0, self.side - height))
        return self.inner(images)
