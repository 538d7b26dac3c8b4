"""Training and CONVERT throughput per backbone, on the GPU when there is one (else the CPU).

    .venv/bin/python bench/training_throughput.py [--images 20000] [--epochs 3]

Source images/s of SimCLR training (each image is seen as two augmented views per step) for
the small CNN and ResNet-18 on 28x28 MNIST digits, through the same `train_simclr` BUILD MODEL
uses (augmentations on the device, bf16 mixed precision on a GPU), and images/s of embedding
already decoded images. The first epoch includes warm-up (cuDNN autotuning), so the figure
reported is the median of the later epochs. Target on an H100: >= 10,000 source images/s for
ResNet-18 (published SimCLR runs with CPU-side augmentation reach 2-4k/s on A100-class GPUs).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MIRROR = REPO.parent / "shared" / "datasets" / "mnist-train-head18k"


def main() -> None:
    import torch

    from thanosql_assets.defs.mnist import read_idx
    from thanosql_assets.models.images import ImageGeometry
    from thanosql_assets.models.simclr.config import SimCLRConfig
    from thanosql_assets.models.simclr.trainer import train_simclr

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    gpu = torch.cuda.is_available()
    parser.add_argument("--images", type=int, default=18_000 if gpu else 2_000)
    parser.add_argument("--epochs", type=int, default=4 if gpu else 2)
    parser.add_argument("--batch-size", type=int, default=1024 if gpu else 128)
    parser.add_argument("--backbones", nargs="+", default=["small_cnn", "resnet18"])
    args = parser.parse_args()

    images = read_idx(MIRROR / "train-images-idx3-ubyte.gz")[: args.images, None]
    device = torch.cuda.get_device_name() if gpu else "CPU (no GPU here)"
    print(f"device: {device}; {len(images)} images 28x28, {args.epochs} epochs, batch {args.batch_size}")
    for backbone in args.backbones:
        count = len(images) if gpu or backbone == "small_cnn" else min(len(images), 256)
        rates: list[float] = []
        config = SimCLRConfig(backbone=backbone, max_epochs=args.epochs, batch_size=args.batch_size)
        result = train_simclr(
            images[:count], ImageGeometry(1, 28, 28), config, progress=lambda _: None,
            on_epoch=lambda epoch, loss, rate: rates.append(rate),
        )
        steady = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]
        embedder = result.embedder.to("cuda") if gpu else result.embedder
        embedder.embed(images[:512])
        started = time.perf_counter()
        embedder.embed(images[:count], batch_size=1024 if gpu else 256)
        if gpu:
            torch.cuda.synchronize()
        embed_rate = count / (time.perf_counter() - started)
        print(
            f"{backbone:<10} training {steady:10,.0f} source images/s (epochs: {', '.join(f'{r:,.0f}' for r in rates)}); "
            f"embedding {embed_rate:10,.0f} images/s ({count} images)"
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
