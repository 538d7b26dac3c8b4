"""Training a SimCLR model with Lightning on images decoded once into memory."""

import copy
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch

from thanosql.errors import DataError
from thanosql_assets.models.embedder import ImageEmbedder
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.simclr.backbones import build_backbone
from thanosql_assets.models.simclr.config import SimCLRConfig
from thanosql_assets.models.simclr.data import ShuffledBatches
from thanosql_assets.models.simclr.module import SimCLRModule
from thanosql_assets.models.simclr.transforms import AugmentationConfig
from thanosql_assets.models.training import (
    EpochCallback,
    ProgressReporter,
    fit_seconds,
    is_distributed,
    lightning_trainer,
    pick_device,
    trained_batches,
)


@dataclass
class TrainingResult:
    embedder: ImageEmbedder
    module: SimCLRModule
    epoch_losses: list[float]
    seconds: float
    images_per_second: float
    device: str
    config: SimCLRConfig  # what trained: the requested config with the data's and the device's defaults filled in


def augmentation_config(config: SimCLRConfig) -> AugmentationConfig:
    return AugmentationConfig(
        rotation_degrees=config.rotation,
        shear=config.shear,
        translate=config.translate,
        scale_min=1 - config.scale,
        scale_max=1 + config.scale,
        elastic=config.elastic,
        stroke=config.stroke,
        horizontal_flip=config.horizontal_flip,
        color_jitter=config.color_jitter,
    )


def train_simclr(
    images: np.ndarray,
    geometry: ImageGeometry,
    config: SimCLRConfig,
    progress: Callable[[str], None],
    on_epoch: EpochCallback | None = None,
    start: ImageEmbedder | None = None,
) -> TrainingResult:
    """Train on uint8 images (N x C x H x W) of `geometry`; from a copy of `start`'s encoder and
    pixel statistics when given (FIT MODEL; `geometry` is then `start.geometry`)."""
    if len(images) < 2:
        raise DataError(f"SimCLR needs at least 2 training images; the query returned {len(images)}.")
    device = pick_device(config.device, is_distributed(config.devices, config.num_nodes))
    L.seed_everything(config.seed, workers=True, verbose=False)
    data = torch.from_numpy(np.ascontiguousarray(images).copy())
    batches = ShuffledBatches(data, config.batch_size, config.seed)
    config = config.resolved(geometry, device, batches_per_epoch=batches.batches)

    if start is not None:
        mean, std = start.mean.flatten().clone(), start.std.flatten().clone()
        backbone = copy.deepcopy(start.backbone).train()  # loaded models are in eval mode
    else:
        pixels = data.float().div_(255).transpose(0, 1).reshape(geometry.channels, -1)
        mean, std = pixels.mean(dim=1), pixels.std(dim=1).clamp_min(1e-3)
        backbone = build_backbone(config.backbone, geometry.channels, config.embedding_dim)
    module = SimCLRModule(
        backbone,
        mean=mean,
        std=std,
        augmentation=augmentation_config(config),
        projection_head=config.projection_head,
        projection_dim=config.projection_dim,
        learning_rate=config.learning_rate,
        temperature=config.temperature,
    )
    reporter = ProgressReporter(len(images), config.max_epochs, progress, on_epoch)
    trainer = lightning_trainer(config.max_epochs, device, [reporter], devices=config.devices, num_nodes=config.num_nodes)
    progress(
        f"training SimCLR ({config.backbone}, {geometry.channels}x{geometry.height}x{geometry.width} images) on "
        f"{len(images)} images for {config.max_epochs} epochs, batch {batches.batch_size}, on {device}"
    )
    seconds = fit_seconds(trainer, module, batches, reporter)

    embedder = ImageEmbedder(module.backbone.cpu().float(), geometry, mean, std).eval()
    return TrainingResult(
        embedder=embedder,
        module=module.cpu(),
        epoch_losses=reporter.losses,
        seconds=seconds,
        images_per_second=trained_batches(batches.batches, trainer.world_size) * batches.batch_size * config.max_epochs / seconds,
        device=device,
        config=config,
    )
