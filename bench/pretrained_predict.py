"""Hugging Face image classifier inference through the ML library against `transformers.pipeline`,
on the GPU when there is one (else the CPU): what PREDICT does with an uploaded Hugging Face
model, without the SQL, Dagster and MLflow around it.

    python bench/pretrained_predict.py [--images 256] [--batch 64] [--repeat 5]

A ViT-Base-sized classifier (ViTConfig defaults: 224 px, 16 px patches, 12 layers, 1000
labels) with random weights is saved with save_pretrained beside its ViTImageProcessor, and N
3-channel JPEGs of smooth noise are written at 224 px and other sizes. Printed: images/s of
`HuggingFaceImageClassifier.predict_files_checked` and of `pipeline("image-classification")`
on the same files and batch size (JPEG decoding and resizing included in both), medians of R
repeats after a warm-up, their ratio, and the fraction of files whose top-1 label is the same.
Random weights give near-uniform probabilities, so top-1 labels can differ where the
preprocessing differs slightly (resizing: torchvision's antialiased bilinear here, the
processor's own there); at 224 px the pixels are the same.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.classifier_training import median_rate  # noqa: E402 - after the path, to run as a script

SIZES = [(224, 224), (224, 224), (320, 240), (180, 260)]  # (height, width): half at the model's size


def write_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` JPEGs of smooth colour noise (upscaled 8 x 8 noise), of the sizes in SIZES in turn."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        height, width = SIZES[index % len(SIZES)]
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        path = folder / f"{index}.jpg"
        coarse.resize((width, height), Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, pipeline

    from thanosql_assets.models.pretrained.huggingface import load_huggingface_classifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="number of JPEG files")
    parser.add_argument("--batch", type=int, default=64, help="batch size of both")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs after the warm-up; the median is printed")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as root:
        model_dir, image_dir = Path(root) / "model", Path(root) / "images"
        image_dir.mkdir()
        torch.manual_seed(0)
        config = ViTConfig(num_labels=1000, id2label={index: f"class_{index}" for index in range(1000)})
        ViTForImageClassification(config).save_pretrained(model_dir)
        ViTImageProcessor().save_pretrained(model_dir)  # 224 x 224, mean and std 0.5
        paths = write_images(image_dir, args.images)

        classifier = load_huggingface_classifier(model_dir, source="random ViT-Base").to(device)
        classify = pipeline("image-classification", model=str(model_dir), device=device)
        names = [str(path) for path in paths]
        ours: list[str] = []
        theirs: list[str] = []

        def run_ours():
            probabilities = classifier.predict_files_checked(paths, args.batch).probabilities
            ours[:] = [classifier.classes[index] for index in probabilities.argmax(axis=1)]

        def run_pipeline():
            results = classify(names, batch_size=args.batch, top_k=1)
            theirs[:] = [(result[0] if isinstance(result, list) else result)["label"] for result in results]

        ours_rate = median_rate(len(paths), run_ours, args.repeat)
        pipeline_rate = median_rate(len(paths), run_pipeline, args.repeat)
        same = np.mean([a == b for a, b in zip(ours, theirs, strict=True)])
        print(f"{classifier.network}; {len(paths)} JPEGs, batch {args.batch}, median of {args.repeat}")
        print(f"predict_files_checked: {ours_rate:8.1f} images/s")
        print(f"transformers pipeline: {pipeline_rate:8.1f} images/s")
        print(f"ratio: {ours_rate / pipeline_rate:.2f}x; same top-1 label: {same:.3f}")


if __name__ == "__main__":
    main()
