"""Tiny image classifiers the tests make and save as users would (nothing is downloaded): a
Hugging Face ViT trained for a few dozen steps to name an image's dominant colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = ["red", "green", "blue"]  # class i: images whose channel i is bright
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


def save_colour_vit(directory: Path, labels: list[str] = COLOURS) -> Path:
    """A tiny ViTForImageClassification that names red, green and blue images `labels`, saved
    with its ViTImageProcessor by save_pretrained in `directory`."""
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


def write_image(path: Path, pixels: np.ndarray, **options) -> Path:
    """Saves uint8 C x H x W (C 1 or 3) as an image file; the format follows the suffix."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[0] if len(pixels) == 1 else pixels.transpose(1, 2, 0)).save(path, **options)
    return path


def save_tiny_clip(directory: Path) -> Path:
    """An untrained tiny CLIPModel (32 px images) with a character-level CLIPTokenizer and its
    image processor, saved by save_pretrained in `directory`: a real zero-shot model, if not a wise one."""
    import json
    import string

    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    characters = list(string.ascii_lowercase + string.digits + ".")
    tokens = ["<|startoftext|>", "<|endoftext|>"] + characters + [character + "</w>" for character in characters]
    vocabulary = {token: index for index, token in enumerate(tokens)}
    (directory / "vocab.json").write_text(json.dumps(vocabulary))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer.from_pretrained(directory)
    end = vocabulary["<|endoftext|>"]
    text = dict(vocab_size=len(vocabulary), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=32, bos_token_id=vocabulary["<|startoftext|>"], eos_token_id=end, pad_token_id=end)
    vision = dict(image_size=SIZE, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}).save_pretrained(directory)
    return directory
