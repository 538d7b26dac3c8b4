"""Batched image augmentations on tensors: one call augments a whole batch, on the CPU or GPU.

Each image of the batch gets its own random affine warp (rotation, shear, translation, scale,
and a horizontal flip when enabled) and a smooth elastic distortion, all sampled in one
`grid_sample`; then, with some probability, its strokes are thickened or thinned (a 3x3 max
or min filter), and colour images get colour jitter. No per-image Python loop.

The defaults suit handwriting: the variations that keep a digit the same digit (slant,
position, size, stroke width, wobble). Digits must not be flipped (a mirrored 2 is not a 2)
and carry no colour; photos want flips and colour jitter instead of stroke changes.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class AugmentationConfig:
    rotation_degrees: float = 20.0
    shear: float = 0.3  # largest horizontal shear factor (x += shear * y)
    translate: float = 0.1  # largest shift, as a fraction of the image side
    scale_min: float = 0.85
    scale_max: float = 1.15
    elastic: float = 0.03  # std of the displacement at the elastic control points, fraction of the side
    elastic_grid: int = 4  # control points per side: fewer = smoother, larger-scale distortions
    stroke: float = 0.5  # probability of thickening or thinning strokes (half each)
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
        shear = uniform(-cfg.shear, cfg.shear)
        flip = torch.ones(batch, device=device)
        if cfg.horizontal_flip:
            flip = torch.where(torch.rand(batch, device=device) < 0.5, -flip, flip)
        # affine_grid maps output coordinates to input coordinates in [-1, 1] units (side = 2):
        # rotation x scale x shear, then a shift.
        cos, sin = torch.cos(angle) * inverse_scale, torch.sin(angle) * inverse_scale
        theta = torch.stack(
            [
                torch.stack([cos * flip, cos * shear - sin, uniform(-2 * cfg.translate, 2 * cfg.translate)], dim=1),
                torch.stack([sin * flip, sin * shear + cos, uniform(-2 * cfg.translate, 2 * cfg.translate)], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        if cfg.elastic > 0:
            points = cfg.elastic_grid
            coarse = torch.randn(batch, 2, points, points, device=device) * (2 * cfg.elastic)
            field = F.interpolate(coarse, size=images.shape[-2:], mode="bicubic", align_corners=False)
            grid = grid + field.permute(0, 2, 3, 1)
        out = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
        if cfg.stroke > 0:
            out = _stroke_width(out, cfg.stroke)
        if cfg.color_jitter > 0:
            out = _color_jitter(out, cfg.color_jitter)
        return out.clamp_(0, 1)


def _stroke_width(images: torch.Tensor, probability: float) -> torch.Tensor:
    """Thicken (3x3 max filter) or thin (3x3 min filter) bright strokes, each with probability/2."""
    draw = torch.rand(images.shape[0], 1, 1, 1, device=images.device)
    thick = F.max_pool2d(images, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-images, 3, stride=1, padding=1)
    return torch.where(draw < probability / 2, thick, torch.where(draw < probability, thin, images))


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
