"""Pretrained image classifiers from outside the project: Hugging Face `transformers` models and torchvision weights."""
