"""Batched image augmentations on tensors: one call augments a whole batch, on the CPU or GPU.

Each image of the batch gets its own random affine warp (rotation, translation, scale, and
a horizontal flip when enabled), an optional mild elastic distortion, and, for colour
images, optional colour jitter. All of it is one `grid_sample` plus elementwise arithmetic,
so augmenting costs little next to the encoder and needs no per-image Python loop.

Digits must not be flipped (a mirrored 2 is not a 2) and carry no colour; photos want both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class AugmentationConfig:
    rotation_degrees: float = 20.0
    translate: float = 0.1  # largest shift, as a fraction of the image side
    scale_min: float = 0.85
    scale_max: float = 1.15
    elastic: float = 0.03  # std of the smooth displacement field, as a fraction of the image side
    horizontal_flip: bool = False
    color_jitter: float = 0.0  # strength of brightness/contrast/saturation changes (0 = off)


class BatchAugment(nn.Module):
    def __init__(self, config: AugmentationConfig = AugmentationConfig()):
        super().__init__()
        self.config = config

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`images`: float B x C x H x W in [0, 1]; returns a randomly augmented copy, same shape and range."""
        cfg = self.config
        batch = images.shape[0]
        device = images.device

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.rand(batch, device=device) * (high - low) + low

        angle = uniform(-cfg.rotation_degrees, cfg.rotation_degrees) * (math.pi / 180)
        inverse_scale = 1.0 / uniform(cfg.scale_min, cfg.scale_max)
        flip = torch.ones(batch, device=device)
        if cfg.horizontal_flip:
            flip = torch.where(torch.rand(batch, device=device) < 0.5, -flip, flip)
        # affine_grid maps output coordinates to input coordinates, in [-1, 1] units (side = 2).
        cos, sin = torch.cos(angle) * inverse_scale, torch.sin(angle) * inverse_scale
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin, uniform(-2 * cfg.translate, 2 * cfg.translate)], dim=1),
                torch.stack([sin * flip, cos, uniform(-2 * cfg.translate, 2 * cfg.translate)], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        if cfg.elastic > 0:
            coarse = torch.randn(batch, 2, 4, 4, device=device) * (2 * cfg.elastic)
            field = F.interpolate(coarse, size=images.shape[-2:], mode="bicubic", align_corners=False)
            grid = grid + field.permute(0, 2, 3, 1)
        out = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
        if cfg.color_jitter > 0:
            out = _color_jitter(out, cfg.color_jitter)
        return out.clamp_(0, 1)


def _color_jitter(images: torch.Tensor, strength: float) -> torch.Tensor:
    batch, channels = images.shape[:2]
    shape = (batch, 1, 1, 1)

    def factor() -> torch.Tensor:
        return 1 + (torch.rand(shape, device=images.device) * 2 - 1) * strength

    images = images * factor()  # brightness
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * factor() + mean  # contrast
    if channels == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        gray = (images * weights).sum(dim=1, keepdim=True)
        images = (images - gray) * factor() + gray  # saturation
    return images
