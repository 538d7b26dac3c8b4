"""The model users get: an encoder plus the preprocessing it was trained with.

This is what MLflow stores for each model version; CONVERT and SEARCH load it and call
`embed` on images decoded with `images.load_images(paths, embedder.geometry)`, so query images
get exactly the preprocessing the training images got.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from thanosql_assets.models.images import ImageGeometry


class ImageEmbedder(nn.Module):
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
        """uint8 (or 0..255 float) images B x C x H x W -> embeddings B x D."""
        return self.backbone((images.float() / 255 - self.mean) / self.std)

    @torch.inference_mode()
    def embed(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        self.eval()
        device = self.mean.device
        out = [
            self(torch.from_numpy(images[start : start + batch_size]).to(device)).float().cpu().numpy()
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.embedding_dim), dtype=np.float32)
