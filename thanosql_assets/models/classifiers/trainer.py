"""Training a classifier with Lightning on labelled images decoded once into memory.

Four starts: a new network (BUILD MODEL ... USING ResNet18), a SimCLR model's encoder with a
new head (OPTIONS (base_model=...)), a pretrained classifier (OPTIONS (pretrained=...):
torchvision's ImageNet weights, or an uploaded or trained classifier), or a copy of a trained
classifier with its classes (FIT MODEL new USING old).

A pretrained encoder is fine-tuned after linear probing (LP-FT): a new head is first fitted on
the frozen encoder's features of the training images and of augmented views of them (full
batch, a few hundred steps), then everything trains at a low learning rate. A random head
would send large, meaningless gradients into the pretrained encoder during the first steps;
and with few labels (ten per class) fine-tuning at the rates that train networks from scratch
loses accuracy, as the encoder overfits the handful of images. A classifier whose classes are
the labels' keeps its head and trains further at the same low rate.

A SimCLR start can also learn from unlabelled images (self-training, as in semi-supervised
learning's pseudo-labelling): the probe labels each one, those it labels with some confidence
join the training images with that label, and the head is fitted again on all of them before
fine-tuning. With ten labels per class most of what the encoder gets wrong is where few
labelled points sit; hundreds of confidently labelled neighbours fill that in.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from thanosql.errors import DataError
from thanosql_assets.models.classifiers.classifier import ImageClassifier
from thanosql_assets.models.classifiers.config import ClassifierConfig
from thanosql_assets.models.classifiers.networks import build_network, default_learning_rate, describe_network
from thanosql_assets.models.embedder import ImageEmbedder
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.training import (
    EpochCallback,
    ProgressReporter,
    fit_seconds,
    is_distributed,
    lightning_trainer,
    pick_device,
    rank_batches,
)

LABEL_SMOOTHING = 0.1
WEIGHT_DECAY = 0.05
SHIFT = 0.05  # training images move by up to this share of their size (more costs accuracy in 3 epochs)
WARMUP = 0.25  # share of the steps over which the learning rate rises to its peak
FINE_TUNE_LEARNING_RATE = 5e-5  # default peak for a pretrained start: a SimCLR encoder, or a trained classifier
# Linear probing: full-batch AdamW steps on the features of the images and of augmented views of
# them, up to 16 per image while there are under 4,096 features in all.
_PROBE_STEPS = 300
_PROBE_LEARNING_RATE = 0.01
_PROBE_FEATURES = 4096
_PROBE_VIEWS = 16
PSEUDO_LABEL_CONFIDENCE = 0.5  # self-training keeps the unlabelled images the probe labels at least this sure
_SELF_TRAINING_FEATURES = 16384  # its second probe sees more views: measurably better, and a SimCLR encoder is cheap to run


@dataclass
class ClassifierTrainingResult:
    classifier: ImageClassifier  # on the CPU, eval mode
    epoch_losses: list[float]
    seconds: float
    images_per_second: float
    device: str
    config: ClassifierConfig  # what trained: the requested config with input size, device and learning rate filled in
    network: str  # one line saying what trained
    pseudo_labelled: int = 0  # unlabelled images self-training labelled and trained on


class LabelledBatches:
    """Iterable of (uint8 images, int64 targets) batches, reshuffled every epoch by a seeded generator.

    Each image is in exactly one batch per epoch; a last batch of one image joins the batch
    before it (BatchNorm cannot normalize a batch of one 1x1 feature map)."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int):
        self.images = images
        self.targets = targets
        self.batch_size = min(max(batch_size, 2), len(images))  # batches of one: same reason
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        """Batches per epoch of this process (its share under DDP)."""
        return len(rank_batches(self.batches))

    @property
    def batches(self) -> int:
        """Batches per epoch over all processes."""
        full, rest = divmod(len(self.images), self.batch_size)
        return full + (rest > 1)

    def __iter__(self):
        # Every DDP process draws the same order (the same seeded generator) and takes its own batches of it.
        order = torch.randperm(len(self.images), generator=self.generator)
        for batch in rank_batches(self.batches):
            batch %= self.batches
            end = len(order) if batch == self.batches - 1 else (batch + 1) * self.batch_size
            chosen = order[batch * self.batch_size : end]
            yield self.images[chosen], self.targets[chosen]


class ClassifierModule(L.LightningModule):
    """Cross-entropy with label smoothing, AdamW with a one-cycle schedule, each training image
    shifted at random by a few pixels (`random_shift`). Batches are uint8 images and class indices."""

    def __init__(self, classifier: ImageClassifier, learning_rate: float):
        super().__init__()
        # Channels-last convolutions: tensor cores on a GPU, and faster on this CPU as well.
        self.classifier = classifier.to(memory_format=torch.channels_last)
        self.learning_rate = learning_rate

    def training_step(self, batch, batch_idx):
        images, targets = batch
        inputs = random_shift(self.classifier.normalize(images)).contiguous(memory_format=torch.channels_last)
        logits = self.classifier.head(self.classifier.encoder(inputs))
        loss = F.cross_entropy(logits.float(), targets, label_smoothing=LABEL_SMOOTHING)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(targets), sync_dist=True)
        return loss

    def configure_optimizers(self):
        # No weight decay on norms, biases and layer scales: decaying them only fights the normalization.
        decay = [p for p in self.parameters() if p.ndim > 1 and p.requires_grad]
        rest = [p for p in self.parameters() if p.ndim <= 1 and p.requires_grad]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}], lr=self.learning_rate
        )
        total_steps = max(1, self.trainer.estimated_stepping_batches)
        # OneCycleLR divides by the warm-up's length in steps minus one: one step of warm-up
        # (four steps in all, e.g. FIT on a few rows) would divide by zero.
        warmup = WARMUP if WARMUP * total_steps != 1 else 1 / (2 * total_steps)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.learning_rate, total_steps=total_steps, pct_start=warmup)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def random_shift(images: torch.Tensor, fraction: float = SHIFT) -> torch.Tensor:
    """Each image B x C x H x W moved by a random offset of up to `fraction` of its size in each
    direction (bilinear, edges extended): the one augmentation that suits any photo or scan,
    and what keeps a network trained from scratch on a thousand images from learning where
    things sit rather than what they look like."""
    offsets = (torch.rand(len(images), 2, device=images.device) * 2 - 1) * (2 * fraction)  # affine_grid's units: half sizes
    theta = torch.zeros(len(images), 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = offsets.to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def train_classifier(
    images: np.ndarray,
    targets: np.ndarray,
    classes: list,
    geometry: ImageGeometry,
    config: ClassifierConfig,
    network: str,
    progress: Callable[[str], None],
    on_epoch: EpochCallback | None = None,
    start: ImageClassifier | ImageEmbedder | Any | None = None,
    unlabelled: np.ndarray | None = None,
) -> ClassifierTrainingResult:
    """Train on uint8 images (N x C x H x W) of `geometry` and their class indices (int N) into `classes`.

    start=None: a new `network` (a torchvision name, `build_network`). start=ImageEmbedder:
    its encoder with a new head. start=ImageClassifier (or a model with `as_image_classifier()`,
    as Hugging Face classifiers have): a copy of it, with a new head unless its classes are
    `classes`. Images of a start are decoded at its geometry. `unlabelled` (uint8 images of the
    same geometry, with a SimCLR start): self-training, as the module says. Deterministic on the
    CPU for a given seed.
    """
    if len(images) < 2:
        raise DataError(f"A classifier needs at least 2 training images; the query returned {len(images)}.")
    if len(classes) < 2:
        raise DataError(
            f"A classifier needs at least 2 classes; every training image has the label {classes[0]!r}." if classes
            else "A classifier needs at least 2 classes; the training images have no labels.",
            hint="Train on images of at least two different labels.",
        )
    images = np.ascontiguousarray(images)
    if images.shape[1:] != (geometry.channels, geometry.height, geometry.width):
        raise ValueError(f"images are {images.shape[1:]}, not {geometry}")
    if unlabelled is not None and unlabelled.shape[1:] != images.shape[1:]:
        raise ValueError(f"unlabelled images are {unlabelled.shape[1:]}, not {images.shape[1:]}")
    targets = np.asarray(targets, dtype=np.int64)
    if targets.shape != (len(images),) or targets.min() < 0 or targets.max() >= len(classes):
        raise ValueError("targets must hold one class index into `classes` per image")

    distributed = is_distributed(config.devices, config.num_nodes)
    device = pick_device(config.device, distributed)
    # The new head of a pretrained start is fitted before training; under DDP on the CPU, so that
    # CUDA stays untouched in this process until the forked processes take the GPUs.
    head_device = "cpu" if distributed else device
    pretrained = start is not None
    pseudo_labelled = 0
    config = config.resolved(
        geometry, device, FINE_TUNE_LEARNING_RATE if pretrained else default_learning_rate(network)
    )
    L.seed_everything(config.seed, workers=True, verbose=False)
    data = torch.from_numpy(images.copy())
    labels = torch.from_numpy(targets)

    if hasattr(start, "as_image_classifier"):
        start = start.as_image_classifier()
    if start is not None and start.geometry != geometry:
        raise ValueError(f"images are {geometry}; the model training starts from takes {start.geometry}")
    if isinstance(start, ImageClassifier) and list(start.classes) == list(classes):
        classifier = copy.deepcopy(start).cpu().float()
        description = f"{start.network or 'the given classifier'}, trained further"
    elif isinstance(start, ImageClassifier):
        classifier = start.with_new_head(classes).cpu().float()
        description = f"{start.network}, fine-tuned with a new head"
        progress(f"fitting the new head on the pretrained network's features of {len(images)} images")
        _fit_head(classifier, data, labels, head_device)
    elif isinstance(start, ImageEmbedder):
        classifier = ImageClassifier.from_embedder(start, classes).cpu().float()
        description = classifier.network
        progress(f"fitting the new head on the SimCLR model's features of {len(images)} images")
        _fit_head(classifier, data, labels, head_device)
        if unlabelled is not None and len(unlabelled):
            data, labels, pseudo_labelled = _self_training(classifier, data, labels, unlabelled, head_device, progress)
    else:
        pixels = data.float().div_(255).transpose(0, 1).reshape(geometry.channels, -1)
        mean, std = pixels.mean(dim=1), pixels.std(dim=1).clamp_min(1e-3)
        size = max(geometry.height, geometry.width)
        encoder, head = build_network(network, geometry.channels, len(classes), size)
        description = describe_network(network, geometry.channels, size)
        classifier = ImageClassifier(encoder, head, geometry, mean, std, classes, description)

    module = ClassifierModule(classifier.train(), config.learning_rate)
    batches = LabelledBatches(data, labels, config.batch_size, config.seed)
    reporter = ProgressReporter(len(data), config.max_epochs, progress, on_epoch)
    trainer = lightning_trainer(config.max_epochs, device, [reporter], devices=config.devices, num_nodes=config.num_nodes)
    progress(
        f"training {description} on {len(data)} images of {len(classes)} classes for {config.max_epochs} epochs, "
        f"batch {batches.batch_size}, learning rate {config.learning_rate:g}, on {device}"
    )
    seconds = fit_seconds(trainer, module, batches, reporter)

    classifier = module.classifier.cpu().float().to(memory_format=torch.contiguous_format).eval()
    return ClassifierTrainingResult(
        classifier=classifier,
        epoch_losses=reporter.losses,
        seconds=seconds,
        images_per_second=len(data) * config.max_epochs / seconds,
        device=device,
        config=config,
        network=description,
        pseudo_labelled=pseudo_labelled,
    )


def _self_training(
    classifier: ImageClassifier, images: torch.Tensor, targets: torch.Tensor, unlabelled: np.ndarray, device: str, progress: Callable[[str], None]
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The training images and targets plus the unlabelled images the probe labels with
    confidence, and how many those are; the head is fitted again, new, on all of them."""
    pool = torch.from_numpy(np.ascontiguousarray(unlabelled))
    classifier.to(device)
    encoder, head = classifier.encoder.eval(), classifier.head
    probabilities = []
    with torch.no_grad():
        for start in range(0, len(pool), 256):
            pixels = classifier.normalize(pool[start : start + 256].to(device)).contiguous(memory_format=torch.channels_last)
            probabilities.append(torch.softmax(head(encoder(pixels)), dim=1).cpu())
    classifier.cpu()
    confidence, pseudo = torch.cat(probabilities).max(dim=1)
    confident = confidence >= PSEUDO_LABEL_CONFIDENCE
    count = int(confident.sum())
    progress(
        f"self-training: the probe labels {count} of {len(pool)} unlabelled images with confidence {PSEUDO_LABEL_CONFIDENCE:g} or more; "
        f"fitting the head again on them and the {len(images)} labelled images"
    )
    images, targets = torch.cat([images, pool[confident]]), torch.cat([targets, pseudo[confident]])
    head.reset_parameters()
    _fit_head(classifier, images, targets, device, features=_SELF_TRAINING_FEATURES)
    return images, targets, count


def _fit_head(classifier: ImageClassifier, images: torch.Tensor, targets: torch.Tensor, device: str, features: int = _PROBE_FEATURES) -> None:
    """Fit the linear head on the frozen encoder's features (eval mode, as the head first sees them)
    of the training images and of augmented views of them (up to 16 per image while under
    `features` in all), full batch."""
    from thanosql_assets.models.simclr.config import SimCLRConfig
    from thanosql_assets.models.simclr.trainer import augmentation_config
    from thanosql_assets.models.simclr.transforms import BatchAugment

    # The augmentations SimCLR uses for such images by default: the encoder learned to map them
    # close together, and seeing them spreads each class's few labelled points over its region.
    augment = BatchAugment(augmentation_config(SimCLRConfig().resolved(classifier.geometry, device)))
    views = min(_PROBE_VIEWS, math.ceil(features / len(images)) - 1)
    classifier.to(device)
    encoder = classifier.encoder.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(images), 256):
            batch = images[start : start + 256].to(device).float() / 255
            for view in range(views + 1):
                pixels = augment(batch) if view else batch
                parts.append(encoder(((pixels - classifier.mean) / classifier.std).contiguous(memory_format=torch.channels_last)))
    # parts hold views of each block of 256 images in turn: repeat each block's targets as many times.
    labels = torch.cat([targets[start : start + 256].repeat(views + 1) for start in range(0, len(images), 256)]).to(device)
    inputs = torch.cat(parts)
    head = classifier.head
    optimizer = torch.optim.AdamW(head.parameters(), lr=_PROBE_LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    for _ in range(_PROBE_STEPS):
        loss = F.cross_entropy(head(inputs), labels, label_smoothing=LABEL_SMOOTHING)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    classifier.cpu()
