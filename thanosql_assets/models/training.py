"""What every trainer shares: the device, a Lightning Trainer set up for in-process training, and
progress lines (epochs, batches) for the person waiting."""

import logging
import time
import warnings
from collections.abc import Callable

import lightning as L
import torch

from thanosql.errors import DataError

EpochCallback = Callable[[int, float, float], None]  # (epoch, mean loss, source images per second)


def pick_device(requested: str) -> str:
    """'cuda' or 'cpu' for a requested device ('auto' takes the GPU when there is one)."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise DataError("OPTIONS (device='cuda') asks for a GPU, but none is available here.", hint="Use device='auto' or 'cpu'.")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


class ProgressReporter(L.Callback):
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


def fit_seconds(trainer: L.Trainer, module: L.LightningModule, batches) -> float:
    """Train `module` on `batches` (an iterable of batches); the seconds it took. Lightning's
    warnings about a plain iterable's length and torch's deprecations inside Lightning are muted."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch deprecation raised inside Lightning
        trainer.fit(module, train_dataloaders=batches)
    return time.perf_counter() - started


def lightning_trainer(max_epochs: int, device: str, callbacks: list[L.Callback]) -> L.Trainer:
    """A Trainer for one device, bf16 mixed precision on GPUs that have it, with no files written
    and no console output of its own (progress goes through `ProgressReporter`)."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if device == "cuda" and torch.cuda.is_bf16_supported() else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
