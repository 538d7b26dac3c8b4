"""The SimCLR Lightning module: two augmented views per image, encoder, projection head, NT-Xent."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from thanosql_assets.models.simclr.heads import build_head
from thanosql_assets.models.simclr.loss import NTXentLoss
from thanosql_assets.models.simclr.transforms import AugmentationConfig, BatchAugment


class SimCLRModule(L.LightningModule):
    """Batches are uint8 images (B x C x H x W), decoded once before training; augmentation runs
    on whatever device the module is on."""

    def __init__(
        self,
        backbone: nn.Module,
        mean: torch.Tensor,
        std: torch.Tensor,
        augmentation: AugmentationConfig,
        projection_head: str = "none",
        projection_dim: int = 128,
        learning_rate: float = 2e-3,
        temperature: float = 0.2,
        weight_decay: float = 1e-6,
    ):
        super().__init__()
        # Channels-last convolutions: tensor cores on a GPU, and 45% more images/s on this CPU.
        self.backbone = backbone.to(memory_format=torch.channels_last)
        self.head = build_head(projection_head, backbone.output_dim, projection_dim)
        self.augment = BatchAugment(augmentation)
        self.criterion = NTXentLoss(temperature)
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay

    def _project(self, views: torch.Tensor) -> torch.Tensor:
        normalized = ((views - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return self.head(self.backbone(normalized))

    def training_step(self, batch, batch_idx):
        images = batch.float() / 255
        z1 = self._project(self.augment(images))
        z2 = self._project(self.augment(images))
        loss = self.criterion(z1, z2)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=images.shape[0], sync_dist=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        total_steps = max(1, self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.learning_rate, total_steps=total_steps, pct_start=min(0.1, 10 / total_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
