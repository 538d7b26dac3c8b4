"""Pretrained torchvision weights as an `ImageClassifier`: a state dict for one of torchvision's stock networks.

The network is torchvision's own architecture, unchanged (not the small-image variants
`classifiers.networks` trains from scratch), so state dicts from torchvision's pretrained
weights or from fine-tuning a stock network load as they are. The number of classes is what
the state dict's last linear layer says; 1000 outputs are ImageNet's, named as torchvision
names them. Images are 224 px RGB normalized with ImageNet's mean and standard deviation, as
torchvision's weights were trained.

Every unusable input (no such file, not a torch weights file, weights of another architecture,
a network torchvision does not have) raises a DataError saying what is wrong and how to fix it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from thanosql.errors import DataError
from thanosql_assets.models.classifiers.classifier import ImageClassifier
from thanosql_assets.models.classifiers.networks import detach_last_linear
from thanosql_assets.models.images import ImageGeometry

IMAGE_SIZE = 224  # torchvision's classification weights are evaluated on 224 px crops (ViT-B/16 takes nothing else)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_CLASSES = 1000
_HINT_SAVE = "Save the weights with `torch.save(model.state_dict(), path)` from a stock torchvision model."


def load_torchvision_classifier(weights_file: Path, network: str, input_size: int = IMAGE_SIZE) -> ImageClassifier:
    """The classifier `network` (a torchvision classification model name, e.g. resnet18, convnext_tiny,
    efficientnet_v2_s, mobilenet_v3_large, vit_b_16) with the state dict in `weights_file` (or
    in the one .pth file of that directory, as GET THANOSQL MODEL fetches torchvision's weights).

    Images are resized to `input_size` px: 224 as the weights were trained, or another size for
    fine-tuning a convolutional network on smaller images (ViTs take 224 px only).
    Classes are ImageNet's category names for 1000 outputs, else "0".."K-1". Raises a DataError when
    the file is missing or not a state dict, or holds weights of another architecture.
    """
    import torchvision

    weights_file = _weights_file(Path(weights_file))
    if network not in torchvision.models.list_models(module=torchvision.models):
        raise DataError(
            f"torchvision has no classification network named {network!r}.",
            hint="Name one of torchvision.models.list_models(module=torchvision.models), e.g. resnet18, convnext_tiny, vit_b_16.",
        )
    state = _read_state_dict(weights_file)
    model = getattr(torchvision.models, network)(weights=None)
    num_classes = _resize_last_linear(model, state)
    _load_state(model, state, weights_file, network)
    head = detach_last_linear(model)
    model.output_dim = head.in_features
    geometry = ImageGeometry(3, input_size, input_size)
    classes = _imagenet_categories(network) if num_classes == IMAGENET_CLASSES else [str(index) for index in range(num_classes)]
    description = f"torchvision {network}, pretrained weights from {weights_file.name} (3-channel {input_size} px input)"
    return ImageClassifier(
        model, head, geometry, torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD), classes, description
    ).eval()


def _weights_file(path: Path) -> Path:
    """`path`, or the one .pth / .pt file in directory `path`."""
    if not path.is_dir():
        return path
    found = sorted(item for item in path.iterdir() if item.suffix in (".pth", ".pt"))
    if len(found) != 1:
        raise DataError(
            f"{path} holds {len(found) or 'no'} .pth / .pt weights files{': ' + ', '.join(item.name for item in found) if found else ''}; one was expected.",
            hint=_HINT_SAVE,
        )
    return found[0]


def _read_state_dict(weights_file: Path) -> dict[str, torch.Tensor]:
    """The state dict in the file; a DataError when there is no such file or it holds something else."""
    if not weights_file.is_file():
        raise DataError(f"Cannot load torchvision weights from {weights_file}: no such file.", hint=_HINT_SAVE)
    try:
        # weights_only: a pickle that runs code when loaded is refused, not run
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False, which is not on offer here
        raise DataError(
            f"Cannot load torchvision weights from {weights_file}: it is not a torch weights file, "
            "or it holds Python objects other than tensors.",
            hint=_HINT_SAVE,
        ) from None
    except Exception as error:  # a truncated zip archive (RuntimeError), an unreadable file (OSError)...
        reason = str(error).strip().split(". ")[0] or type(error).__name__
        raise DataError(f"Cannot load torchvision weights from {weights_file}: it is corrupt or truncated ({reason}).", hint=_HINT_SAVE) from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise DataError(
            f"{weights_file} holds a {type(state).__name__} of other things, not a state dict (parameter names -> tensors).",
            hint=_HINT_SAVE,
        )
    return state


def _resize_last_linear(model: nn.Module, state: dict[str, torch.Tensor]) -> int:
    """The number of classes the state dict's last linear layer has; the model's last linear layer
    is replaced by one of that many outputs when it differs from the model's default."""
    name, last = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    weight = state.get(f"{name}.weight")
    if weight is None or weight.ndim != 2 or weight.shape[1] != last.in_features or weight.shape[0] == last.out_features:
        return last.out_features  # other weights: loading them says what is wrong
    parent_name, _, child_name = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    setattr(parent, child_name, nn.Linear(last.in_features, weight.shape[0], bias=last.bias is not None))
    return weight.shape[0]


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], weights_file: Path, network: str) -> None:
    """Loads the weights; a DataError naming the first differences when they are not the network's."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [
        f"{key} ({'x'.join(map(str, state[key].shape))}, not {'x'.join(map(str, value.shape))})"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    differences = [
        f"{what} {_first_few(keys)}"
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("other shapes", reshaped))
        if keys
    ]
    if differences:
        raise DataError(
            f"The weights in {weights_file} are not torchvision's {network}: {'; '.join(differences)}.",
            hint=f"Name the network the weights were saved from, or save them from torchvision.models.{network}.",
        )
    model.load_state_dict(state)


def _first_few(keys: list[str], shown: int = 3) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _imagenet_categories(network: str) -> list[str]:
    """ImageNet's class names as torchvision lists them (metadata only: no weights are downloaded)."""
    import torchvision

    return list(torchvision.models.get_model_weights(network).DEFAULT.meta["categories"])
