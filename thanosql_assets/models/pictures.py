"""Pictures logged with each model: augmented pairs (what the model learned to match), the loss curve,
and a classifier's confusion matrix."""

from collections.abc import Sequence
from functools import lru_cache

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


def loss_curve(losses: list[float], title: str, ylabel: str = "NT-Xent loss"):
    """A matplotlib figure of the training loss per epoch."""
    figure, axes = _figure(6, 3.5)
    axes.plot(range(1, len(losses) + 1), losses, marker="o" if len(losses) < 40 else None)
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    _fonts_for_its_text(figure)
    figure.tight_layout()
    return figure


def confusion_matrix_figure(targets, predictions, classes: list, title: str):
    """A matplotlib figure of the confusion matrix, counts in the cells: rows are the true
    classes, columns the predicted ones, both indices into `classes` (whose values label them)."""
    size = len(classes)
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (np.asarray(targets, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    side = min(12.0, 2.5 + 0.45 * size)
    figure, axes = _figure(side, side)
    axes.imshow(counts, cmap="Blues")
    names = [str(label) for label in classes]
    axes.set_xticks(range(size), names, rotation=90 if max(map(len, names), default=0) > 3 else 0)
    axes.set_yticks(range(size), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    if size <= 30:  # beyond that the numbers would not fit their cells
        threshold = counts.max() / 2
        for row in range(size):
            for column in range(size):
                colour = "white" if counts[row, column] > threshold else "black"
                axes.text(column, row, str(counts[row, column]), ha="center", va="center", color=colour, fontsize=8)
    _fonts_for_its_text(figure)
    figure.tight_layout()
    return figure


def _fonts_for_its_text(figure) -> None:
    """Every text of `figure` (titles naming models, labels the user's data) in fonts that draw
    its characters (`label_fonts`), rather than boxes and a matplotlib warning per character."""
    from matplotlib.text import Text

    texts = figure.findobj(Text)
    fonts = label_fonts([text.get_text() for text in texts])
    if len(fonts) > 1:
        for text in texts:
            text.set_fontfamily(fonts)


def label_fonts(texts: Sequence[str]) -> list[str]:
    """Font families to draw `texts` in: matplotlib's default, then installed fonts that have the
    characters it lacks (Hangul, kana, Han, ...), which matplotlib falls back to glyph by glyph."""
    family, characters = _default_font()
    missing = {ord(character) for text in texts for character in text} - characters
    families = [family]
    for family, characters in _installed_fonts() if missing else ():
        if missing & characters and family not in families:
            families.append(family)
            missing -= characters
    return families


def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


@lru_cache(maxsize=1)
def _default_font() -> tuple[str, frozenset[int]]:
    """(family, code points it draws) of matplotlib's default font."""
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties())
    return font_manager.get_font(path).family_name, _charmap(path)


@lru_cache(maxsize=1)
def _installed_fonts() -> list[tuple[str, frozenset[int]]]:
    """(family, code points it draws) of every font matplotlib knows; Last Resort (a box for any
    character, naming its script) after the fonts that draw characters."""
    from matplotlib import font_manager

    fonts = [(entry.name, _charmap(entry.fname)) for entry in font_manager.fontManager.ttflist]
    return sorted(fonts, key=lambda font: font[0].startswith("Last Resort"))


def _figure(width: float, height: float):
    """A figure outside pyplot: nothing global to close, and a notebook's backend stays as it was."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    return figure, figure.subplots()
