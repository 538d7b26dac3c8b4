"""Training and CONVERT throughput per backbone, on the GPU when there is one (else the CPU).

    .venv/bin/python bench/training_throughput.py [--images 18000] [--epochs 4] [--data DIR]

Source images/s of SimCLR training (each image is seen as two augmented views per step) for
the small CNN and ResNet-18 on 28x28 MNIST digits, through the same `train_simclr` BUILD MODEL
uses (augmentations on the device, bf16 mixed precision on a GPU). The first epoch includes
warm-up (cuDNN autotuning), so the figure reported is the median of the later epochs. Target
on an H100: >= 10,000 source images/s for ResNet-18 (published SimCLR runs with CPU-side
augmentation reach 2-4k/s on A100-class GPUs).

Then CONVERT's embedding step on the trained model: the images written as JPEG files at quality
95 (as GET THANOSQL DATASET writes the tutorial's), decoded and embedded by `ImageEmbedder.embed_files` as CONVERT
does, and its stages apart, each beside the bare forward pass (the plain module on decoded
images, float32, no folding), medians of interleaved repetitions. Needs only the ML library
(no Dagster, no SQL), so it runs on a machine that has torch alone; `--data` points at a copy
of the shared datasets there.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.classifier_training import DATA  # noqa: E402 - after the path, to run as a script
from bench.search_latency import write_jpegs  # noqa: E402


def convert_rates(embedder, images: np.ndarray, batch_size: int, repeat: int) -> dict[str, float]:
    """images/s of CONVERT's embedding step on `images` (N x 1 x 28 x 28 uint8) written as JPEG
    files, of its stages, and of the bare forward pass; medians of `repeat` interleaved runs."""
    import torch

    from thanosql_assets.models.images import load_images

    device = embedder.mean.device

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory() as folder:
        paths = list(map(Path, write_jpegs(images[:, 0], Path(folder), [f"{index}.jpg" for index in range(len(images))])))
        decoded = load_images(paths, embedder.geometry)

        def bare_forward() -> None:
            with torch.inference_mode():
                for start in range(0, len(decoded), batch_size):
                    embedder(torch.from_numpy(decoded[start : start + batch_size]).to(device))

        stages = {
            "decode + embed (CONVERT's embed_files)": lambda: embedder.embed_files(paths, batch_size),
            "embed decoded images (folded, bf16 on GPU)": lambda: embedder.embed(decoded, batch_size),
            "decode only (CPU)": lambda: load_images(paths, embedder.geometry),
            "bare forward (plain module, float32)": bare_forward,
        }
        for run in stages.values():  # warm-up: cuDNN autotuning, the folded copy, the file cache
            run()
        seconds: dict[str, list[float]] = {name: [] for name in stages}
        for _ in range(repeat):
            for name, run in stages.items():
                synchronize()
                started = time.perf_counter()
                run()
                synchronize()
                seconds[name].append(time.perf_counter() - started)
    return {name: len(images) / statistics.median(values) for name, values in seconds.items()}


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
    parser.add_argument("--convert-images", type=int, default=10_000, help="images CONVERT embeds from files")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repetitions of the CONVERT stages")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding mnist-train-head18k")
    args = parser.parse_args()

    images = read_idx(args.data / "mnist-train-head18k" / "train-images-idx3-ubyte.gz")[: args.images, None]
    device = torch.cuda.get_device_name() if gpu else "CPU (no GPU here)"
    print(f"device: {device}; torch {torch.__version__}; {len(images)} images 28x28, {args.epochs} epochs, batch {args.batch_size}")
    for backbone in args.backbones:
        count = len(images) if gpu or backbone == "small_cnn" else min(len(images), 256)
        rates: list[float] = []
        config = SimCLRConfig(backbone=backbone, max_epochs=args.epochs, batch_size=args.batch_size)
        result = train_simclr(
            images[:count], ImageGeometry(1, 28, 28), config, progress=lambda _: None,
            on_epoch=lambda epoch, loss, rate: rates.append(rate),
        )
        steady = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]
        print(f"{backbone}: SimCLR training {steady:,.0f} source images/s (epochs: {', '.join(f'{r:,.0f}' for r in rates)})")
        embedder = (result.embedder.to("cuda") if gpu else result.embedder).eval()
        converted = images[: args.convert_images if gpu or backbone == "small_cnn" else 1_000]
        batch_size = 1024 if gpu else 256
        speed = convert_rates(embedder, converted, batch_size, args.repeat)
        bare = speed["bare forward (plain module, float32)"]
        print(f"  CONVERT's embedding step on {len(converted):,} JPEG files, batch {batch_size}, medians of {args.repeat}:")
        for name, value in speed.items():
            print(f"    {name:<44} {value:10,.0f} images/s  {value / bare:5.2f}x bare forward")

if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
