"""The algorithms BUILD MODEL ... USING <algorithm> accepts, each with its typed config.

Two kinds: `simclr` learns image embeddings without labels (CONVERT, SEARCH), `classifier`
learns labels (PREDICT, EVALUATE). Classifiers are torchvision networks named as ThanoSQL and
seed 004 name them; `network` is the name `classifiers.networks.build_network` builds.
Kept free of torch imports: the SQL frontend checks options and the code location builds
assets without loading training code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from thanosql_assets.models.classifiers.config import ClassifierConfig
from thanosql_assets.models.simclr.config import SimCLRConfig

Kind = Literal["simclr", "classifier"]
# Network families, by the prefix of their torchvision name (resnet18) or Hugging Face architecture
# (ViTForImageClassification): a model of one family can start the BUILD of another of the same.
FAMILIES = ("resnet", "convnext", "efficientnet", "mobilenet", "vit")


def network_family(name: str) -> str | None:
    """The family of a torchvision network name or Hugging Face architecture, any case (None: none of ours)."""
    name = name.lower()
    return next((family for family in FAMILIES if name.startswith(family)), None)


@dataclass(frozen=True)
class Algorithm:
    name: str  # as users write it, e.g. SimCLR or ConvNeXt_Tiny
    config: type  # the frozen dataclass of its training OPTIONS
    kind: Kind = "simclr"
    network: str | None = None  # classifiers: the torchvision network

    @property
    def family(self) -> str | None:
        """Classifiers: the family of their network (resnet, convnext...)."""
        return network_family(self.network) if self.network else None

    @property
    def column_suffix(self) -> str:
        """The embedding column of a model `m` is `m_<suffix>`, as in the tutorials (`..._simclr`)."""
        return self.name.lower()


def _classifier(name: str, network: str) -> Algorithm:
    return Algorithm(name, ClassifierConfig, kind="classifier", network=network)


ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name.lower(): algorithm
    for algorithm in (
        Algorithm("SimCLR", SimCLRConfig),
        _classifier("ConvNeXt_Tiny", "convnext_tiny"),
        _classifier("ConvNeXt_Base", "convnext_base"),
        _classifier("EfficientNetV2S", "efficientnet_v2_s"),
        _classifier("EfficientNetV2M", "efficientnet_v2_m"),
        _classifier("ResNet18", "resnet18"),
        _classifier("ResNet50", "resnet50"),
        _classifier("MobileNetV3", "mobilenet_v3_large"),
        _classifier("ViT", "vit_b_16"),
    )
}


# Classifiers trained elsewhere and registered with UPLOAD MODEL, named as ThanoSQL's LIST
# names their class: a Hugging Face `save_pretrained` directory, or torchvision weights.
UPLOADED: dict[str, Algorithm] = {
    algorithm.name.lower(): algorithm
    for algorithm in (Algorithm("User_HuggingFace", ClassifierConfig, kind="classifier"), Algorithm("User_PyTorch", ClassifierConfig, kind="classifier"))
}


def algorithm_of(name: str) -> Algorithm:
    """The algorithm a catalog entry names (as written, any case): one BUILD MODEL trains, or an uploaded model's class."""
    return ALGORITHMS.get(name.lower()) or UPLOADED[name.lower()]
