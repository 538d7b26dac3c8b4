"""Classifier quality and speed: BUILD MODEL ... USING <classifier> with default options, PREDICT
accuracy on unseen digits, few-label fine-tuning from SimCLR, and PREDICT throughput.

    .venv/bin/python bench/classifier_quality.py [--algorithms ConvNeXt_Tiny ResNet18] [--seeds 0]

Data: the tutorial's 1,000 labelled `mnist_train` digits (GET THANOSQL DATASET from the mirror
in ../shared/datasets) train; 2,000 MNIST t10k digits, never trained on, are the test set, as
JPEG files in a table like the tutorial's. Everything runs through the product's statements.

- Default BUILD of each algorithm: accuracy of PREDICT on the test table and BUILD wall time,
  beside scikit-learn baselines on raw pixels (logistic regression, k-NN) on the same split.
- Few labels: SimCLR (default BUILD on the 1,000 train images, labels unused) fine-tuned with
  `base_model=` on 10 labelled images per digit, beside raw-pixel 1-NN with the same 100 labels.
- PREDICT throughput on the 2,000 test images (decoding included) beside the bare forward
  pass of the same network (eval, inference mode) on decoded images, same batch size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATASETS = REPO.parent / "shared" / "datasets"
TEST_IMAGES = 2000
BATCH = 256  # PREDICT's default batch_size


def write_test_table(home: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first 2,000 t10k digits as JPEGs (as the tutorial stores its images) and `t10k.csv`."""
    from PIL import Image

    from thanosql_assets.defs.mnist import read_idx

    images = read_idx(DATASETS / "mnist-t10k" / "t10k-images-idx3-ubyte.gz")[:TEST_IMAGES]
    labels = read_idx(DATASETS / "mnist-t10k" / "t10k-labels-idx1-ubyte.gz")[:TEST_IMAGES]
    folder = home / "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["image_path,label"]
    for index, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(folder / f"{index}.jpg", quality=95)
        lines.append(f"t10k/{index}.jpg,{label}")
    (home / "t10k.csv").write_text("\n".join(lines) + "\n")
    return images, labels


def train_pixels(conn, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Raw pixels and labels of mnist_train's rows (decoded from their JPEGs, as models see them)."""
    from thanosql_assets.models.images import ImageGeometry, load_images

    rows = conn.execute(f"SELECT image_path, label FROM mnist_train {where} ORDER BY image_path")
    paths = [Path(conn.home) / path for path in rows["image_path"]]
    return load_images(paths, ImageGeometry(1, 28, 28)).reshape(len(paths), -1) / 255.0, rows["label"].to_numpy()


def baselines(conn, test_pixels: np.ndarray, test_labels: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    pixels, labels = train_pixels(conn)
    few_pixels, few_labels = train_pixels(conn, few_label_filter(conn))
    return {
        "logistic regression, raw pixels (1,000 labels)": LogisticRegression(max_iter=2000).fit(pixels, labels).score(test_pixels, test_labels),
        "k-NN (k=3), raw pixels (1,000 labels)": KNeighborsClassifier(3).fit(pixels, labels).score(test_pixels, test_labels),
        "1-NN, raw pixels (1,000 labels)": KNeighborsClassifier(1).fit(pixels, labels).score(test_pixels, test_labels),
        "1-NN, raw pixels (100 labels)": KNeighborsClassifier(1).fit(few_pixels, few_labels).score(test_pixels, test_labels),
    }


def few_label_filter(conn) -> str:
    """The first 10 rows of each digit in mnist_train (the table's order)."""
    return "WHERE image_path IN (SELECT image_path FROM (SELECT image_path, row_number() OVER (PARTITION BY label ORDER BY image_path) AS n FROM mnist_train) AS ranked WHERE n <= 10)"


def accuracy(conn, model: str) -> float:
    rows = conn.execute(f"EVALUATE USING {model} AS SELECT * FROM t10k")
    return float(rows["value"].iloc[0])


def timed(conn, sql: str) -> float:
    started = time.perf_counter()
    conn.execute(sql)
    return time.perf_counter() - started


def predict_speed(conn, model: str, test_images: np.ndarray, repeat: int) -> tuple[float, float]:
    """(PREDICT images/s, bare forward images/s): medians of interleaved runs."""
    import torch

    from resources import build_resources

    resources = build_resources(conn.settings)
    classifier = resources["model_registry"].load(model, resources["catalog"].get("model", model).state["version"])
    decoded = np.ascontiguousarray(test_images[:, None])

    def bare_forward():
        with torch.inference_mode():
            for start in range(0, len(decoded), BATCH):
                classifier(torch.from_numpy(decoded[start : start + BATCH]))

    predict, bare = [], []
    for _ in range(repeat):
        predict.append(timed(conn, f"PREDICT USING {model} OPTIONS (batch_size={BATCH}) AS SELECT * FROM t10k"))
        started = time.perf_counter()
        bare_forward()
        bare.append(time.perf_counter() - started)
    return len(decoded) / statistics.median(predict), len(decoded) / statistics.median(bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", default=["ConvNeXt_Tiny", "ResNet18"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions of the throughput measurements")
    args = parser.parse_args()
    os.environ.pop("DAGSTER_HOME", None)
    os.environ.setdefault("THANOSQL_DATASET_MIRROR", str(DATASETS / "mnist-train-head18k"))
    import thanosql

    with tempfile.TemporaryDirectory() as root:
        conn = thanosql.connect(Path(root) / "ws", progress=False)
        conn.execute("GET THANOSQL DATASET mnist_data")
        conn.execute('COPY mnist_train FROM "thanosql-dataset/mnist_data/mnist_train.csv"')
        test_images, test_labels = write_test_table(Path(conn.home))
        conn.execute('COPY t10k FROM "t10k.csv"')
        reference = baselines(conn, test_images.reshape(len(test_images), -1) / 255.0, test_labels)

        built = []  # (algorithm, seed, accuracy, BUILD seconds)
        for algorithm in args.algorithms:
            for seed in args.seeds:
                name = f"{algorithm.lower()}_{seed}"
                seconds = timed(conn, f"BUILD MODEL {name} USING {algorithm} OPTIONS (seed={seed}) AS SELECT * FROM mnist_train")
                built.append((algorithm, seed, accuracy(conn, name), seconds))
                print(f"{algorithm} seed {seed}: accuracy {built[-1][2]:.4f}, BUILD {seconds:.0f} s", file=sys.stderr)

        few = []  # (seed, accuracy, SimCLR BUILD s, fine-tune BUILD s)
        for seed in args.seeds:
            simclr = timed(conn, f"BUILD MODEL search_{seed} USING SimCLR OPTIONS (seed={seed}) AS SELECT image_path FROM mnist_train")
            tune = timed(
                conn,
                f"BUILD MODEL few_{seed} USING ResNet18 OPTIONS (base_model='search_{seed}', seed={seed}, holdout=0) "
                f"AS SELECT * FROM mnist_train {few_label_filter(conn)}",
            )
            few.append((seed, accuracy(conn, f"few_{seed}"), simclr, tune))
            print(f"few labels seed {seed}: accuracy {few[-1][1]:.4f}", file=sys.stderr)

        speeds = {algorithm: predict_speed(conn, f"{algorithm.lower()}_{args.seeds[0]}", test_images, args.repeat) for algorithm in args.algorithms}

    print(f"\nDefault BUILD on the tutorial's 1,000 labelled mnist_train digits; accuracy on {TEST_IMAGES:,} unseen t10k digits")
    print(f"{'model':<48} {'accuracy':>8} {'BUILD s':>8}")
    for algorithm in args.algorithms:
        chosen = [row for row in built if row[0] == algorithm]
        acc = statistics.median(row[2] for row in chosen)
        seconds = statistics.median(row[3] for row in chosen)
        print(f"{algorithm + ' (default options, median of ' + str(len(chosen)) + ')':<48} {acc:8.4f} {seconds:8.0f}")
    for name, value in reference.items():
        print(f"{name:<48} {value:8.4f}")
    print("\nFew labels: SimCLR on the 1,000 unlabelled images, fine-tuned (base_model=) with 10 labels per digit")
    for seed, acc, simclr, tune in few:
        print(f"  seed {seed}: accuracy {acc:.4f} (SimCLR BUILD {simclr:.0f} s, fine-tune BUILD {tune:.0f} s); "
              f"raw-pixel 1-NN with the same 100 labels {reference['1-NN, raw pixels (100 labels)']:.4f}")
    print(f"\nPREDICT of {TEST_IMAGES:,} images (decoding and SQL included) vs the bare forward pass, batch {BATCH}, medians of {args.repeat}")
    for algorithm, (predict, bare) in speeds.items():
        print(f"  {algorithm:<14} PREDICT {predict:8.0f} images/s   bare forward {bare:8.0f} images/s   ratio {predict / bare:5.2f}x")


if __name__ == "__main__":
    main()
