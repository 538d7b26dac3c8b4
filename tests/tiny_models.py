"""Tiny image classifiers the tests make and save as users would (nothing is downloaded): the
colour-naming Hugging Face ViT of examples/make_tiny_classifier.py, and a tiny CLIP model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from examples.make_tiny_classifier import LABELS as COLOURS
from examples.make_tiny_classifier import SIZE, colour_images, save_colour_vit, tiny_vit_config

__all__ = ["COLOURS", "SIZE", "colour_images", "save_colour_vit", "save_tiny_clip", "tiny_vit_config", "write_image"]


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
