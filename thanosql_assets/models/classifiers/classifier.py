"""The classifier users get: an encoder, a linear head, the classes, and the preprocessing it was trained with.

This is what MLflow stores for each classifier version (pickled whole, as `ImageEmbedder`);
PREDICT and EVALUATE load it and call `predict_files_checked`, which decodes images exactly as
training did (`images.decode_images`). Inference takes the same fast path as embedding: the
encoder with BatchNorm folded into its convolutions, channels-last, in bfloat16 where the
hardware computes it natively; the folded copy is built on first use and never stored.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from thanosql_assets.models.embedder import FoldedForInference, ImageEmbedder, native_bf16
from thanosql_assets.models.images import ImageGeometry, OnError, SkippedImage, decode_images


@dataclass(frozen=True)
class PredictedFiles:
    """Class probabilities of the usable files among those given, and which files they are."""

    probabilities: np.ndarray  # float32 K x C (K kept files, C classes), in the order of the files given
    kept: list[int]  # the position in the files given of each row: K entries, ascending
    skipped: list[SkippedImage]  # the other files, ascending; empty under on_error='raise'


class ImageClassifier(FoldedForInference, nn.Module):
    """uint8 images -> class logits. `classes[i]` is the label value (int, str, bool...) of class index i;
    `network` says what the encoder is (`networks.describe_network`, or the SimCLR model's encoder)."""

    _folded_key = "_inference_encoder"

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        geometry: ImageGeometry,
        mean: torch.Tensor,
        std: torch.Tensor,
        classes: list,
        network: str = "",
    ):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.geometry = geometry
        self.classes = list(classes)
        self.network = network  # one line saying what the encoder is, for metadata
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float())

    @classmethod
    def from_embedder(cls, embedder: ImageEmbedder, classes: list) -> ImageClassifier:
        """A classifier with a copy of a SimCLR model's encoder and preprocessing, and a new linear head."""
        encoder = copy.deepcopy(embedder.backbone)
        head = nn.Linear(encoder.output_dim, len(classes))
        mean, std = embedder.mean.detach().cpu().clone(), embedder.std.detach().cpu().clone()
        network = f"encoder of the SimCLR model ({_backbone_name(embedder.backbone)}) + linear head"
        return cls(encoder, head, embedder.geometry, mean, std, classes, network)

    def with_new_head(self, classes: list) -> ImageClassifier:
        """A copy with a new, untrained linear head for `classes` (fine-tuning for other labels)."""
        classifier = copy.deepcopy(self)
        classifier.head = nn.Linear(self.head.in_features, len(classes))
        classifier.classes = list(classes)
        return classifier

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) B x C x H x W -> the float input the encoder was trained on."""
        return (images.float() / 255 - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) images B x C x H x W -> logits B x K (training-time graph)."""
        return self.head(self.encoder(self.normalize(images)))

    @torch.inference_mode()
    def predict_proba(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 images N x C x H x W -> float32 class probabilities N x K (softmax of the logits)."""
        encoder = self._folded(self.encoder)
        head = self.head.eval()
        device = self.mean.device
        out = []
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=native_bf16(device.type)):
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.array(images[start : start + batch_size])).to(device)  # a writable copy
                logits = head(encoder(self.normalize(batch).contiguous(memory_format=torch.channels_last)))
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), dtype=np.float32)

    def predict_files_checked(
        self,
        values: Sequence[Any],
        batch_size: int = 256,
        *,
        column: str | None = None,
        on_error: OnError = "raise",
        chunk: int = 8192,
    ) -> PredictedFiles:
        """Class probabilities of the image files named by `values` (paths; None or NaN for NULL rows of `column`).

        on_error='raise': the first unusable file raises a DataError naming it (probabilities: N x K).
        on_error='skip': unusable files are left out and listed in `skipped` (probabilities: K' x K for `kept`).
        Files are decoded `chunk` at a time so large tables fit in memory.
        """
        values = list(values)  # positions, also for a pandas Series with its own index
        parts, kept, skipped = [], [], []
        for start in range(0, len(values), chunk):
            decoded = decode_images(values[start : start + chunk], self.geometry, column=column, on_error=on_error)
            parts.append(self.predict_proba(decoded.images, batch_size))
            kept.extend(start + index for index in decoded.kept)
            skipped.extend(replace(image, index=start + image.index) for image in decoded.skipped)
        probabilities = np.concatenate(parts) if parts else np.zeros((0, self.num_classes), dtype=np.float32)
        return PredictedFiles(probabilities, kept, skipped)


def _backbone_name(backbone: nn.Module) -> str:
    """The SimCLR backbone's name (small_cnn, resnet18...), from its structure."""
    from thanosql_assets.models.simclr.backbones import SmallCNN

    if isinstance(backbone, SmallCNN):
        return "small_cnn"
    layers = [getattr(backbone, f"layer{i}", None) for i in range(1, 5)]
    if all(isinstance(layer, nn.Sequential) for layer in layers):
        convs_per_block = 3 if hasattr(layers[0][0], "conv3") else 2
        return f"resnet{2 + convs_per_block * sum(len(layer) for layer in layers)}"
    return type(backbone).__name__
