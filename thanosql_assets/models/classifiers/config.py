"""BUILD MODEL ... USING <classifier> OPTIONS, typed: every training option, its default and range.

ThanoSQL's names and defaults (max_epochs 3, batch_size 16); options whose default is None
depend on the data, the network or the device (`ClassifierConfig.resolved`). Importing this
module costs no torch (option checks, the code location and the SQL server use it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from thanosql_assets.models.config import devices_option, num_nodes_option, option
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.simclr.config import Device


@dataclass(frozen=True)
class ClassifierConfig:
    max_epochs: int = option(3, "passes over the training images (ThanoSQL's older spelling: epochs)", minimum=1, maximum=100_000)
    batch_size: int = option(16, "images per training step", minimum=1, maximum=65_536)
    learning_rate: float | None = option(
        None, "peak learning rate of AdamW, one-cycle schedule (default: the network's own)", minimum=1e-7, maximum=10
    )
    input_size: int | None = option(
        None, "side of the square images the network sees (default: the images' own size up to 64 px, else 64)", minimum=8, maximum=1024
    )
    seed: int = option(0, "random seed; the same seed and data give the same model on the CPU", minimum=0, maximum=2**32 - 1)
    device: Device = option("auto", "where to train: auto (GPU when present), cpu or cuda")
    devices: int = devices_option()
    num_nodes: int = num_nodes_option()

    def resolved(self, geometry: ImageGeometry, device: str, learning_rate: float) -> ClassifierConfig:
        """This config with the input size of `geometry` (from `images.infer_geometry`), the device
        and the network's learning rate filled in."""
        return dataclasses.replace(
            self, input_size=geometry.height, device=device, learning_rate=self.learning_rate or learning_rate
        )


# Options ThanoSQL users may write under an older name: older name -> current name.
OPTION_ALIASES = {"epochs": "max_epochs"}
