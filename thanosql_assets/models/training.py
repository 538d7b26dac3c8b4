"""Training a SimCLR model with Lightning on images decoded once into memory."""

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch

from sql_frontend.errors import DataError
from thanosql_assets.models.embedder import ImageEmbedder
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.simclr.backbones import build_backbone
from thanosql_assets.models.simclr.data import ShuffledBatches
from thanosql_assets.models.simclr.module import SimCLRModule
from thanosql_assets.models.simclr.transforms import AugmentationConfig

EpochCallback = Callable[[int, float, float], None]  # (epoch, mean loss, source images per second)


@dataclass
class TrainingResult:
    embedder: ImageEmbedder
    module: SimCLRModule
    epoch_losses: list[float]
    seconds: float
    images_per_second: float
    device: str
    resolved_options: dict[str, Any] = field(default_factory=dict)


def pick_device(requested: str) -> str:
    if requested == "cuda" and not torch.cuda.is_available():
        raise DataError("OPTIONS (device='cuda') asks for a GPU, but none is available here.", hint="Use device='auto' or 'cpu'.")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def resolve_options(options: dict[str, Any], geometry: ImageGeometry, device: str) -> dict[str, Any]:
    """Fill the defaults that depend on the data and the device (options left as None)."""
    resolved = dict(options)
    colour = geometry.channels == 3
    defaults = {
        "horizontal_flip": colour,
        "color_jitter": 0.4 if colour else 0.0,
        "stroke": 0.0 if colour else 0.5,
        # ResNets pay off on a GPU with photo-sized images; the small CNN everywhere else.
        "backbone": "resnet18" if device == "cuda" and max(geometry.height, geometry.width) > 32 else "small_cnn",
    }
    for name, value in defaults.items():
        if resolved.get(name) is None:
            resolved[name] = value
    resolved["device"] = device
    return resolved


def augmentation_config(options: dict[str, Any]) -> AugmentationConfig:
    return AugmentationConfig(
        rotation_degrees=options["rotation"],
        shear=options["shear"],
        translate=options["translate"],
        scale_min=1 - options["scale"],
        scale_max=1 + options["scale"],
        elastic=options["elastic"],
        stroke=options["stroke"],
        horizontal_flip=options["horizontal_flip"],
        color_jitter=options["color_jitter"],
    )


class _ProgressReporter(L.Callback):
    """Reports each epoch (loss, images/s) and, during long epochs, batches every few seconds."""

    def __init__(self, images: int, max_epochs: int, progress: Callable[[str], None], on_epoch: EpochCallback | None):
        self.images = images
        self.max_epochs = max_epochs
        self.progress = progress
        self.on_epoch = on_epoch
        self.losses: list[float] = []
        self._epoch_started = 0.0
        self._last_report = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_started = self._last_report = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        if now - self._last_report > 10:
            self._last_report = now
            self.progress(
                f"epoch {trainer.current_epoch + 1}/{self.max_epochs}: batch {batch_idx + 1}/{trainer.num_training_batches}"
            )

    def on_train_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self._epoch_started
        loss = float(trainer.callback_metrics["train_loss"])
        rate = self.images / seconds if seconds > 0 else float("nan")
        self.losses.append(loss)
        self.progress(f"epoch {trainer.current_epoch + 1}/{self.max_epochs}: loss {loss:.4f}, {rate:,.0f} images/s")
        if self.on_epoch is not None:
            self.on_epoch(trainer.current_epoch, loss, rate)


def train_simclr(
    images: np.ndarray,
    geometry: ImageGeometry,
    options: dict[str, Any],
    progress: Callable[[str], None],
    on_epoch: EpochCallback | None = None,
) -> TrainingResult:
    """Train on uint8 images (N x C x H x W); `options` are validated BUILD MODEL options."""
    if len(images) < 2:
        raise DataError(f"SimCLR needs at least 2 training images; the query returned {len(images)}.")
    device = pick_device(options["device"])
    options = resolve_options(options, geometry, device)
    L.seed_everything(options["seed"], workers=True, verbose=False)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")

    data = torch.from_numpy(np.ascontiguousarray(images).copy())
    pixels = data.float().div_(255).transpose(0, 1).reshape(geometry.channels, -1)
    mean, std = pixels.mean(dim=1), pixels.std(dim=1).clamp_min(1e-3)

    backbone = build_backbone(options["backbone"], geometry.channels, options["embedding_dim"])
    module = SimCLRModule(
        backbone,
        mean=mean,
        std=std,
        augmentation=augmentation_config(options),
        projection_head=options["projection_head"],
        projection_dim=options["projection_dim"],
        learning_rate=options["learning_rate"],
        temperature=options["temperature"],
    )
    batches = ShuffledBatches(data, options["batch_size"], options["seed"])
    reporter = _ProgressReporter(len(images), options["max_epochs"], progress, on_epoch)
    trainer = L.Trainer(
        max_epochs=options["max_epochs"],
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if device == "cuda" and torch.cuda.is_bf16_supported() else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[reporter],
    )
    progress(
        f"training SimCLR ({options['backbone']}, {geometry.channels}x{geometry.height}x{geometry.width} images) on "
        f"{len(images)} images for {options['max_epochs']} epochs, batch {batches.batch_size}, on {device}"
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch deprecation raised inside Lightning
        trainer.fit(module, train_dataloaders=batches)
    seconds = time.perf_counter() - started

    embedder = ImageEmbedder(module.backbone.cpu().float(), geometry, mean, std).eval()
    return TrainingResult(
        embedder=embedder,
        module=module.cpu(),
        epoch_losses=reporter.losses,
        seconds=seconds,
        images_per_second=len(batches) * batches.batch_size * options["max_epochs"] / seconds,
        device=device,
        resolved_options=options,
    )
