"""Makes what examples/classify_folder.sql classifies, without downloading anything: a tiny
Hugging Face ViT that names an image's dominant colour (trained here for a few seconds, saved
with save_pretrained as any Hub model is) and a folder of coloured photos.

    python examples/make_tiny_classifier.py ./thanosql-workspace
    thanosql --home ./thanosql-workspace run examples/classify_folder.sql

With a real model instead, save it into <workspace>/models/vit (or use GET THANOSQL MODEL) and
put your photos in <workspace>/photos.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

LABELS = ["red", "green", "blue"]  # class i: images whose channel i is bright
SIZE = 32


def colour_images(count: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """uint8 count x 3 x size x size noisy images, each mostly one colour, and their classes."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, count)
    images = rng.integers(0, 90, (count, 3, size, size))
    images[np.arange(count), classes] += 150
    return images.astype(np.uint8), classes


def tiny_vit_config(**overrides):
    from transformers import ViTConfig

    settings = dict(image_size=SIZE, patch_size=8, num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64)
    return ViTConfig(**settings | overrides)


def save_colour_vit(directory: Path, labels: list[str] = LABELS) -> Path:
    """A tiny ViTForImageClassification that names red, green and blue images `labels`, trained
    for 40 steps and saved with its ViTImageProcessor by save_pretrained in `directory`."""
    import torch
    from transformers import ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = tiny_vit_config(num_labels=3, id2label=dict(enumerate(labels)), label2id={label: index for index, label in enumerate(labels)})
    model = ViTForImageClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(40):
        images, classes = colour_images(32, seed=step)
        pixels = (torch.from_numpy(images).float() / 255 - 0.5) / 0.5  # as ViTImageProcessor normalizes
        loss = torch.nn.functional.cross_entropy(model(pixel_values=pixels).logits, torch.from_numpy(classes))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    ViTImageProcessor(size={"height": SIZE, "width": SIZE}).save_pretrained(directory)
    return directory


def main(workspace: Path) -> None:
    from PIL import Image

    save_colour_vit(workspace / "models" / "vit")
    images, classes = colour_images(10, seed=1000)
    for index, (pixels, target) in enumerate(zip(images, classes)):
        folder = workspace / "photos" / ("more" if index >= 6 else "")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.transpose(1, 2, 0)).resize((96, 64)).save(folder / f"{LABELS[target]}_{index}.jpg", quality=95)
    print(f"a colour-naming ViT in {workspace / 'models' / 'vit'}, 10 photos in {workspace / 'photos'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "thanosql-workspace"))
