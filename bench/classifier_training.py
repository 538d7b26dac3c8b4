"""Classifier training and inference through the ML library alone, on the GPU when there is one
(else the CPU): what BUILD MODEL ... USING <classifier> and PREDICT do, without the SQL, Dagster
and MLflow around them, so it runs where only torch is installed (the device machine).

    python bench/classifier_training.py [--data DIR] [--algorithms ConvNeXt_Tiny ResNet18] [--seeds 0 1 2] [--skip-few-labels]

The tutorial's 1,000 labelled mnist_train digits (JPEG round trip at quality 95, as GET THANOSQL
DATASET writes them) train with the default options; 2,000 t10k digits, never trained on, test.
Printed per algorithm and seed: accuracy, training seconds and images/s, and inference images/s
of `predict_files_checked` (JPEG decoding included) and `predict_proba` (decoded images) beside
the bare forward pass of the same network (eval, inference mode), batch 256, medians of 5; then
the median accuracy over the seeds. Then few labels, per seed: SimCLR (default options) on the
1,000 images without labels, fine-tuned as `base_model=` does with the first 10 images of each
digit, with self-training on the SimCLR model's other 900 images (the default) and without it,
beside raw-pixel 1-NN on those 100.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "datasets"
BATCH = 256


def tutorial_split(data: Path, folder: Path) -> tuple[list[Path], np.ndarray, list[Path], np.ndarray]:
    """JPEG files and labels of mnist_train (1,000) and of 2,000 t10k digits."""
    from PIL import Image

    from thanosql_assets.defs.mnist import read_idx, select_indices

    images = read_idx(data / "mnist-train-head18k" / "train-images-idx3-ubyte.gz")
    labels = read_idx(data / "mnist-train-head18k" / "train-labels-idx1-ubyte.gz")
    train, _test = select_indices(labels)
    test_images = read_idx(data / "mnist-t10k" / "t10k-images-idx3-ubyte.gz")[:2000]
    test_labels = read_idx(data / "mnist-t10k" / "t10k-labels-idx1-ubyte.gz")[:2000]

    def write(name: str, pixels: np.ndarray) -> Path:
        path = folder / f"{name}.jpg"
        buffer = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=95)
        path.write_bytes(buffer.getvalue())
        return path

    train_paths = [write(f"train{i}", images[i]) for i in train]
    test_paths = [write(f"t10k{i}", pixels) for i, pixels in enumerate(test_images)]
    return train_paths, labels[train].astype(np.int64), test_paths, test_labels.astype(np.int64)


def median_rate(count: int, run, repeat: int = 5) -> float:
    run()  # warm-up (cuDNN autotuning, the folded inference copy)
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return count / statistics.median(seconds)


def main() -> None:
    import torch

    from thanosql_assets.models.algorithms import ALGORITHMS
    from thanosql_assets.models.classifiers.config import ClassifierConfig
    from thanosql_assets.models.classifiers.trainer import train_classifier
    from thanosql_assets.models.images import decode_images, infer_geometry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding mnist-train-head18k/ and mnist-t10k/")
    parser.add_argument("--algorithms", nargs="+", default=["ConvNeXt_Tiny", "ResNet18"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (the `seed` option)")
    parser.add_argument("--skip-few-labels", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as root:
        train_paths, train_labels, test_paths, test_labels = tutorial_split(args.data, Path(root))
        geometry = infer_geometry(train_paths)
        train_images = decode_images(train_paths, geometry).images
        test_images = decode_images(test_paths, geometry).images
        device = "cuda" if torch.cuda.is_available() else "cpu"
        accuracies: dict[str, list[float]] = {}
        print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; torch {torch.__version__}")
        print(f"{'algorithm':<14} {'seed':>4} {'accuracy':>8} {'train s':>8} {'train img/s':>11} | {'predict files':>13} {'predict decoded':>15} {'bare forward':>12} {'ratio':>6}")
        for name, seed in ((name, seed) for name in args.algorithms for seed in args.seeds):
            algorithm = ALGORITHMS[name.lower()]
            result = train_classifier(
                train_images, train_labels, list(range(10)), geometry, ClassifierConfig(seed=seed), algorithm.network, progress=lambda _: None
            )
            classifier = result.classifier.to(device).eval()
            accuracy = float((classifier.predict_proba(test_images).argmax(axis=1) == test_labels).mean())

            def bare_forward():
                with torch.inference_mode():
                    for start in range(0, len(test_images), BATCH):
                        classifier(torch.from_numpy(test_images[start : start + BATCH]).to(device))
                if device == "cuda":
                    torch.cuda.synchronize()

            files = median_rate(len(test_paths), lambda: classifier.predict_files_checked(test_paths, BATCH))
            decoded = median_rate(len(test_images), lambda: classifier.predict_proba(test_images, BATCH))
            bare = median_rate(len(test_images), bare_forward)
            accuracies.setdefault(name, []).append(accuracy)
            print(
                f"{name:<14} {seed:4d} {accuracy:8.4f} {result.seconds:8.1f} {result.images_per_second:11.0f} | "
                f"{files:13.0f} {decoded:15.0f} {bare:12.0f} {files / bare:6.2f}"
            )
        for name, values in accuracies.items():
            print(f"{name}: median accuracy {statistics.median(values):.4f} over seeds {args.seeds}")
        if not args.skip_few_labels:
            for seed in args.seeds:
                few_labels(train_images, train_labels, test_images, test_labels, geometry, seed)


def few_labels(train_images, train_labels, test_images, test_labels, geometry, seed: int) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    from thanosql_assets.models.classifiers.config import ClassifierConfig
    from thanosql_assets.models.classifiers.trainer import train_classifier
    from thanosql_assets.models.simclr.config import SimCLRConfig
    from thanosql_assets.models.simclr.trainer import train_simclr

    simclr = train_simclr(train_images, geometry, SimCLRConfig(seed=seed), progress=lambda _: None)
    chosen = np.concatenate([np.flatnonzero(train_labels == digit)[:10] for digit in range(10)])
    unlabelled = np.delete(train_images, chosen, axis=0)  # what BUILD reads: the SimCLR model's rows the query does not label

    def fine_tune(**options):
        tuned = train_classifier(
            train_images[chosen], train_labels[chosen], list(range(10)), geometry, ClassifierConfig(seed=seed), "resnet18",
            progress=lambda _: None, start=simclr.embedder, **options,
        )
        return float((tuned.classifier.predict_proba(test_images).argmax(axis=1) == test_labels).mean()), tuned.seconds

    (accuracy, seconds), (labelled_only, _) = fine_tune(unlabelled=unlabelled), fine_tune()
    flat = lambda images: images.reshape(len(images), -1) / 255.0  # noqa: E731
    nearest = KNeighborsClassifier(1).fit(flat(train_images[chosen]), train_labels[chosen]).score(flat(test_images), test_labels)
    print(
        f"few labels (10 per digit), seed {seed}: SimCLR + self-training + fine-tune accuracy {accuracy:.4f} (SimCLR {simclr.seconds:.0f} s, "
        f"fine-tune {seconds:.1f} s); without self-training {labelled_only:.4f}; raw-pixel 1-NN with the same 100 labels {nearest:.4f}"
    )


if __name__ == "__main__":
    main()
