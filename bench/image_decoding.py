"""Where CONVERT's decoding time goes: its stages on 28x28 JPEG files, beside the whole.

    .venv/bin/python bench/image_decoding.py [--images 10000] [--repeat 5] [--data DIR]

CONVERT decodes a table's image files on the CPU (`decode_images`) before the network sees
them. On MNIST digits written as JPEG files at quality 95 (as GET THANOSQL DATASET writes the
tutorial's), this prints images/s of that whole step and of what it is made of (reading the
files, Pillow's header parse, which guards the pixel limit before decoding, and torchvision's
batch JPEG decode), then the whole step run on slices in several threads, and torchvision's GPU
decoder (nvJPEG) when there is a GPU. Medians of `repeat` runs after one warm-up. Needs only the
ML library and torch, so it runs on a GPU machine that has no Dagster.
"""

import argparse
import io
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.classifier_training import DATA, median_rate  # noqa: E402 - after the path, to run as a script
from bench.search_latency import write_jpegs  # noqa: E402


def main() -> None:
    import torch
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_jpeg

    from thanosql_assets.defs.mnist import read_idx
    from thanosql_assets.models.images import ImageGeometry, decode_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding mnist-train-head18k")
    args = parser.parse_args()

    images = read_idx(args.data / "mnist-train-head18k" / "train-images-idx3-ubyte.gz")[: args.images]
    geometry = ImageGeometry(1, 28, 28)
    gpu = torch.cuda.is_available()
    print(f"{len(images):,} JPEG files 28x28; {os.cpu_count()} CPU cores; GPU: {torch.cuda.get_device_name() if gpu else 'none'}")

    with tempfile.TemporaryDirectory() as folder:
        paths = list(map(Path, write_jpegs(images, Path(folder), [f"{index}.jpg" for index in range(len(images))])))
        datas = [path.read_bytes() for path in paths]
        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]

        def header(data: bytes) -> None:
            with Image.open(io.BytesIO(data)) as opened:
                opened.size

        def threaded(threads: int) -> None:
            step = -(-len(paths) // threads)
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda start: decode_images(paths[start : start + step], geometry), range(0, len(paths), step)))

        stages = {
            "decode_images (CONVERT's decoding, whole)": lambda: decode_images(paths, geometry),
            "  reading the files": lambda: [path.read_bytes() for path in paths],
            "  Pillow header parse (pixel-limit guard)": lambda: [header(data) for data in datas],
            "  torchvision decode_jpeg, one batch, CPU": lambda: decode_jpeg(tensors, mode=ImageReadMode.GRAY),
        }
        for threads in (2, 4, 8, 16):
            if threads <= 2 * (os.cpu_count() or 1):
                stages[f"decode_images on {threads} threads"] = lambda threads=threads: threaded(threads)
        if gpu:

            def decode_on_gpu() -> None:
                decode_jpeg(tensors, mode=ImageReadMode.GRAY, device="cuda")
                torch.cuda.synchronize()

            stages["torchvision decode_jpeg, one batch, GPU"] = decode_on_gpu

        whole = None
        for name, run in stages.items():
            rate = median_rate(len(paths), run, args.repeat)
            whole = whole or rate
            print(f"{name:<44} {rate:10,.0f} images/s  {rate / whole:5.2f}x the whole   {1e6 / rate:6.1f} µs/image")


if __name__ == "__main__":
    main()
