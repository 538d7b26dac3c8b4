"""BUILD MODEL ... USING SimCLR OPTIONS, typed: every option, its default and valid range.

Options whose default is None depend on the data or the device (`SimCLRConfig.resolved`):
colour jitter and horizontal flips are on for colour photos and off for grayscale images such
as digits (a flipped 2 is not a 2), stroke thickening/thinning the other way round; the backbone
is the small CNN unless a GPU trains photo-sized images; small tables get more epochs, so that
every model takes a minimum number of optimizer steps.

The defaults were chosen with bench/simclr_quality.py (1,000 MNIST training images, 2 CPU
cores): P@4 on unseen digits rose with the training steps up to about 640 and then levelled
off, which sets the small-table epochs; training stays under a minute there.
Importing this module costs no torch (option checks, the code location and the SQL server use it).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, get_args

from thanosql_assets.models.config import devices_option, num_nodes_option, option
from thanosql_assets.models.images import ImageGeometry

Backbone = Literal["small_cnn", "resnet18", "resnet34", "resnet50"]
Head = Literal["none", "linear", "mlp"]
Device = Literal["auto", "cpu", "cuda"]
BACKBONE_NAMES: tuple[str, ...] = get_args(Backbone)
HEADS: tuple[str, ...] = get_args(Head)

DEFAULT_EPOCHS = 30
MIN_DEFAULT_STEPS = 640  # optimizer steps a default training takes at least, however small the table
MAX_DEFAULT_EPOCHS = 80  # ... but no more epochs than this: a table of one batch trains 80 steps


def default_max_epochs(batches_per_epoch: int) -> int:
    """30 epochs, or more (up to 80) where that makes fewer than 640 optimizer steps."""
    return min(MAX_DEFAULT_EPOCHS, max(DEFAULT_EPOCHS, math.ceil(MIN_DEFAULT_STEPS / batches_per_epoch)))


@dataclass(frozen=True)
class SimCLRConfig:
    max_epochs: int | None = option(
        None, "passes over the training images (default: 30, or up to 80 on small tables, for at least 640 optimizer steps)", minimum=1, maximum=100_000,
    )
    batch_size: int = option(128, "images per training step (each seen as two views)", minimum=2, maximum=65_536)
    learning_rate: float = option(2e-3, "peak learning rate of Adam (one-cycle schedule)", minimum=1e-7, maximum=10)
    temperature: float = option(0.2, "NT-Xent temperature τ", minimum=0.01, maximum=10)
    backbone: Backbone | None = option(None, "encoder network (default: small_cnn, or resnet18 for images over 32 px on a GPU)")
    embedding_dim: int | None = option(None, "size of the stored embeddings (default: the backbone's)", minimum=8, maximum=8192)
    projection_head: Head = option("none", "head between the embeddings and the loss: none (best for search), linear, or mlp (the paper's)")
    projection_dim: int = option(128, "output size of a linear or mlp projection head", minimum=8, maximum=8192)
    image_size: int | None = option(
        None, "side of the square images the model sees (default: the images' own size up to 64 px, else 64)", minimum=8, maximum=1024
    )
    seed: int = option(0, "random seed; the same seed and data give the same model on the CPU", minimum=0, maximum=2**32 - 1)
    rotation: float = option(20.0, "largest random rotation, in degrees", minimum=0, maximum=180)
    shear: float = option(0.3, "largest random horizontal shear (slant), as a factor", minimum=0, maximum=1)
    translate: float = option(0.1, "largest random shift, as a fraction of the image side", minimum=0, maximum=0.5)
    scale: float = option(0.15, "largest random zoom in or out, as a fraction", minimum=0, maximum=0.9)
    elastic: float = option(0.03, "strength of the smooth elastic distortion (0 = off)", minimum=0, maximum=0.2)
    stroke: float | None = option(
        None, "probability of thickening or thinning strokes (default: 0.5 for grayscale images, 0 for colour)", minimum=0, maximum=1
    )
    horizontal_flip: bool | None = option(None, "randomly mirror images (default: on for colour images, off for grayscale)")
    color_jitter: float | None = option(
        None, "strength of brightness/contrast/saturation jitter (default: 0.4 for colour images, 0 for grayscale)", minimum=0, maximum=1
    )
    device: Device = option("auto", "where to train: auto (GPU when present), cpu or cuda")
    devices: int = devices_option()
    num_nodes: int = num_nodes_option()

    def resolved(self, geometry: ImageGeometry, device: str, batches_per_epoch: int | None = None) -> SimCLRConfig:
        """This config with the defaults that depend on the data and the device filled in; the
        default max_epochs needs the data's `batches_per_epoch` (left unset without it)."""
        colour = geometry.channels == 3
        defaults = {
            "max_epochs": None if batches_per_epoch is None else default_max_epochs(batches_per_epoch),
            "horizontal_flip": colour,
            "color_jitter": 0.4 if colour else 0.0,
            "stroke": 0.0 if colour else 0.5,
            # ResNets pay off on a GPU with photo-sized images; the small CNN everywhere else.
            "backbone": "resnet18" if device == "cuda" and max(geometry.height, geometry.width) > 32 else "small_cnn",
        }
        chosen = {name: value for name, value in defaults.items() if getattr(self, name) is None}
        return dataclasses.replace(self, **chosen, device=device)
