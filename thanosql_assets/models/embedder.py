"""The model users get: an encoder plus the preprocessing it was trained with.

This is what MLflow stores for each model version; CONVERT and SEARCH load it and call
`embed_files` (or `embed_files_checked`, which can skip unusable files and list them), which
decode images exactly as training did (`images.decode_images`), so query images get the same
preprocessing as the images they are compared with.

For inference the encoder runs with BatchNorm folded into the convolutions, in channels-last
memory layout, and in bfloat16 where the hardware computes it natively (GPUs, CPUs with
AVX512-BF16 or AMX). On this machine's CPU that is about 2x the images/s of the plain module
per step, and bf16 moved no embedding further than cosine 0.99998 from its float32 value nor
changed P@4 (bench/simclr_quality.py). Embeddings are stored as float32. The folded copy is
built on first use and never stored.
"""

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from thanosql_assets.models.images import ImageGeometry, OnError, SkippedImage, decode_images


@lru_cache(maxsize=4)
def native_bf16(device_type: str) -> bool:
    """Whether bfloat16 matrix arithmetic runs natively (rather than emulated) on this device."""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def fold_for_inference(module: nn.Module) -> nn.Module:
    """An eval-mode copy with each BatchNorm folded into the convolution before it, in channels-last layout.

    The pairs are found by walking the module tree: a Conv2d followed by a BatchNorm2d in a
    Sequential, and `convN`/`bnN` siblings as torchvision's ResNets name them. Not with torch.fx:
    its tracing patches `nn.Module` for the whole process, so inference running meanwhile in
    another thread (the SQL server's searches, while a CONVERT loads a new model) would fail.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    module = copy.deepcopy(module).eval()
    for parent in list(module.modules()):
        names = list(parent._modules)
        for position, name in enumerate(names):
            norm = parent._modules[name]
            if not isinstance(norm, nn.BatchNorm2d):
                continue
            if isinstance(parent, nn.Sequential):
                conv_name = names[position - 1] if position else None
            else:
                conv_name = "conv" + name[2:] if name.startswith("bn") else None
            conv = parent._modules.get(conv_name) if conv_name else None
            if isinstance(conv, nn.Conv2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, norm))
                setattr(parent, name, nn.Identity())
    return module.to(memory_format=torch.channels_last)


@dataclass(frozen=True)
class EmbeddedFiles:
    """Embeddings of the usable files among those given, and which files they are."""

    vectors: np.ndarray  # float32 K x D, in the order of the files given
    kept: list[int]  # the position in the files given of each vector: K entries, ascending
    skipped: list[SkippedImage]  # the other files, ascending; empty under on_error='raise'


class FoldedForInference:
    """Mixin for a module that infers through a folded copy of one of its submodules
    (`fold_for_inference`): built on first use, kept under `_folded_key` outside nn.Module's
    registry, so it is neither a submodule nor saved, and left out of pickles. Switching
    between training and eval mode, or moving or casting the module, drops the copy (its
    weights may change), so the next inference folds the module as it is then."""

    _folded_key: str

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop(self._folded_key, None)
        return state

    def train(self, mode: bool = True):
        self.__dict__.pop(self._folded_key, None)
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):  # what .to(), .cpu(), .float() ... go through
        self.__dict__.pop(self._folded_key, None)
        return super()._apply(fn, *args, **kwargs)

    def _folded(self, module: nn.Module) -> nn.Module:
        if self._folded_key not in self.__dict__:
            self.__dict__[self._folded_key] = fold_for_inference(module)
        return self.__dict__[self._folded_key]


class ImageEmbedder(FoldedForInference, nn.Module):
    _folded_key = "_inference_backbone"

    def __init__(self, backbone: nn.Module, geometry: ImageGeometry, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.backbone = backbone
        self.geometry = geometry
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).float())

    @property
    def embedding_dim(self) -> int:
        return self.backbone.output_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) images B x C x H x W -> embeddings B x D (training-time graph)."""
        return self.backbone((images.float() / 255 - self.mean) / self.std)


    @torch.inference_mode()
    def embed(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 images N x C x H x W -> float32 embeddings N x D."""
        backbone = self._folded(self.backbone)
        device = self.mean.device
        out = []
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=native_bf16(device.type)):
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.array(images[start : start + batch_size])).to(device)  # a writable copy
                batch = ((batch.float() / 255 - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
                out.append(backbone(batch).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embedding_dim), dtype=np.float32)

    def embed_files(self, paths: Sequence[Path], batch_size: int = 256, chunk: int = 8192) -> np.ndarray:
        """float32 embeddings N x D of N image files; a DataError names the first unusable file."""
        return self.embed_files_checked(paths, batch_size, chunk=chunk).vectors

    def embed_files_checked(
        self,
        values: Sequence[Any],
        batch_size: int = 256,
        *,
        column: str | None = None,
        on_error: OnError = "raise",
        chunk: int = 8192,
    ) -> EmbeddedFiles:
        """Embeddings of the image files named by `values` (paths; None or NaN for NULL rows of `column`).

        on_error='raise': the first unusable file raises a DataError naming it (vectors: N x D).
        on_error='skip': unusable files are left out and listed in `skipped` (vectors: K x D for `kept`).
        Files are decoded `chunk` at a time so large tables fit in memory. Decoding on a second
        thread, overlapped with inference, was measured slower on two cores (both compete for
        them), so chunks are decoded, then embedded.
        """
        values = list(values)  # positions, also for a pandas Series with its own index
        parts, kept, skipped = [], [], []
        for start in range(0, len(values), chunk):
            decoded = decode_images(values[start : start + chunk], self.geometry, column=column, on_error=on_error)
            parts.append(self.embed(decoded.images, batch_size))
            kept.extend(start + index for index in decoded.kept)
            skipped.extend(replace(image, index=start + image.index) for image in decoded.skipped)
        vectors = np.concatenate(parts) if parts else np.zeros((0, self.embedding_dim), dtype=np.float32)
        return EmbeddedFiles(vectors, kept, skipped)
