"""Pictures logged with each model: augmented pairs (what the model learned to match) and the loss curve."""

import numpy as np
import torch

from thanosql_assets.models.simclr.transforms import BatchAugment


def augmented_pairs(images: np.ndarray, augment: BatchAugment, count: int = 8, scale: int = 3) -> np.ndarray:
    """uint8 H x W x 3 grid: originals on the first row, two augmented views below each."""
    spread = np.linspace(0, len(images) - 1, min(count, len(images))).astype(int)  # not just the first rows
    sample = torch.from_numpy(np.array(images[spread])).float() / 255
    with torch.no_grad():
        rows = [sample, augment(sample), augment(sample)]
    channels, height, width = sample.shape[1:]
    gap = 2
    grid = np.full(
        (3 * height + 2 * gap, len(sample) * (width + gap) - gap, 3), 255, dtype=np.uint8
    )
    for row_index, row in enumerate(rows):
        pixels = (row.clamp(0, 1).numpy() * 255).astype(np.uint8)
        for column, image in enumerate(pixels):
            tile = np.repeat(image, 3, axis=0) if channels == 1 else image
            top, left = row_index * (height + gap), column * (width + gap)
            grid[top : top + height, left : left + width] = tile.transpose(1, 2, 0)
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)


def loss_curve(losses: list[float], title: str):
    """A matplotlib figure of the training loss per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot(range(1, len(losses) + 1), losses, marker="o" if len(losses) < 40 else None)
    axes.set_xlabel("epoch")
    axes.set_ylabel("NT-Xent loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure
