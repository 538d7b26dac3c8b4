"""SimCLR quality and speed: BUILD MODEL with default options, then retrieval quality and CONVERT throughput.

    .venv/bin/python bench/simclr_quality.py [--seeds 0 1 2]

Quality: BUILD MODEL (default options, through the product) on 1,000 unlabelled MNIST images,
then mean precision@4 / @10 of cosine neighbours in a gallery of 1,000 for 200 other images, on
three splits: "head" (training images 0-999 as gallery, queries 1000-1199: the split of
../shared/datasets/README.md), "t10k" (the head model on digits it never saw: the MNIST test
set's images 0-999 as gallery, 1000-1199 as queries; "t10k-4k" the same gallery with queries
1000-4999, a steadier figure for comparing variants) and "tutorial" (mnist_data's train and
test). Beside it, measured in the same run: raw pixels on the same split (what any model must
beat) and a supervised bound (the same encoder trained with the labels for as long as BUILD trained).

Speed: BUILD wall time in a warm process and in a cold `thanosql` process; CONVERT of a
10,000-image table, beside the bare encoder's forward pass (plain module, batch 256, inference
mode) on the same, already decoded images.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MIRROR = REPO.parent / "shared" / "datasets" / "mnist-train-head18k"
T10K = REPO.parent / "shared" / "datasets" / "mnist-t10k"


def write_table(home: Path, name: str, images: np.ndarray, indices, with_labels: np.ndarray | None = None) -> None:
    from PIL import Image

    folder = home / "bench-images"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["image_path" + (",label" if with_labels is not None else "")]
    for index in indices:
        path = folder / f"{index}.jpg"
        if not path.exists():
            Image.fromarray(images[index]).save(path, quality=95)
        lines.append(f"bench-images/{index}.jpg" + (f",{with_labels[index]}" if with_labels is not None else ""))
    (home / f"{name}.csv").write_text("\n".join(lines) + "\n")


def supervised_bound(images: np.ndarray, labels: np.ndarray, seconds: float, seed: int):
    """The same encoder, trained with labels (cross-entropy, same augmentations) for `seconds`."""
    import torch

    from thanosql_assets.models.embedder import ImageEmbedder
    from thanosql_assets.models.images import ImageGeometry
    from thanosql_assets.models.simclr.backbones import build_backbone
    from thanosql_assets.models.simclr.transforms import AugmentationConfig, BatchAugment

    torch.manual_seed(seed)
    data = torch.from_numpy(np.array(images[:, None])).float() / 255
    mean, std = data.mean(), data.std()
    backbone = build_backbone("small_cnn", 1).to(memory_format=torch.channels_last)
    classifier = torch.nn.Linear(backbone.output_dim, 10)
    augment = BatchAugment(AugmentationConfig())
    optimizer = torch.optim.Adam([*backbone.parameters(), *classifier.parameters()], lr=2e-3)
    target = torch.from_numpy(labels.astype(np.int64))
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for batch in torch.randperm(len(data)).split(128):
            views = ((augment(data[batch]) - mean) / std).contiguous(memory_format=torch.channels_last)
            loss = torch.nn.functional.cross_entropy(classifier(backbone(views)), target[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return ImageEmbedder(backbone, ImageGeometry(1, 28, 28), mean.view(1), std.view(1)).eval()


def quality_rows(conn, images, labels, unseen, seed: int) -> list[tuple]:
    """One row per split: the model BUILD trained on its 1,000 images, scored on its gallery and
    queries. "t10k" scores the "head" model on digits it never saw (`unseen`: the t10k set)."""
    from resources import build_resources
    from thanosql_assets.models.evaluation import precision_at_k

    home = Path(conn.home)
    rows = []
    registry = build_resources(conn.settings)["model_registry"]
    t10k_images, t10k_labels = unseen
    for split, train, queries in (
        ("head", range(0, 1000), range(1000, 1200)),
        ("tutorial", *mnist_data_split(labels)),
    ):
        train, queries = list(train), list(queries)
        write_table(home, f"{split}_train", images, train)  # no label column: all 1,000 images train
        conn.execute(f"COPY {split}_train OPTIONS (overwrite=True) FROM '{split}_train.csv'")
        sql = f"BUILD MODEL {split}_model USING SimCLR OPTIONS (seed={seed}, overwrite=True) AS SELECT * FROM {split}_train"
        started = time.perf_counter()
        conn.execute(sql)
        build_seconds = time.perf_counter() - started
        state = build_resources(conn.settings)["catalog"].get("model", f"{split}_model").state
        embedder = registry.load(f"{split}_model", state["version"])
        run = registry.client().get_run(state["run_id"])
        train_seconds = run.data.metrics["training_seconds"]
        bound_model = supervised_bound(images[train], labels[train], train_seconds, seed)
        evaluations = [(split, images[train], labels[train], images[queries], labels[queries])]
        if split == "head":
            evaluations.append(("t10k", t10k_images[:1000], t10k_labels[:1000], t10k_images[1000:1200], t10k_labels[1000:1200]))
            # The same gallery with 4,000 queries: P@4 of 200 queries varies more between seeds than most changes worth measuring.
            evaluations.append(("t10k-4k", t10k_images[:1000], t10k_labels[:1000], t10k_images[1000:5000], t10k_labels[1000:5000]))
        for name, gallery, gallery_labels, query, query_labels in evaluations:
            learned = precision_at_k(embedder.embed(gallery[:, None]), gallery_labels, embedder.embed(query[:, None]), query_labels)
            raw = precision_at_k(gallery, gallery_labels, query, query_labels)
            bound = precision_at_k(bound_model.embed(gallery[:, None]), gallery_labels, bound_model.embed(query[:, None]), query_labels)
            rows.append((name, seed, learned[4], learned[10], raw[4], raw[10], bound[4], build_seconds, train_seconds,
                         run.data.metrics["images_per_second"]))
    return rows


def mnist_data_split(labels):
    from thanosql_assets.defs.mnist import select_indices

    return select_indices(labels)


def convert_speed(conn, images, labels, repeat: int) -> dict[str, float]:
    """images/s of CONVERT on 10,000 images and of its stages, beside the bare forward pass;
    each measured `repeat` times, interleaved, medians."""
    import torch

    from resources import build_resources
    from thanosql_assets.models.images import load_images

    home = Path(conn.home)
    count = 10_000
    write_table(home, "big", images, range(count))
    conn.execute("COPY big OPTIONS (overwrite=True) FROM 'big.csv'")
    resources = build_resources(conn.settings)
    state = resources["catalog"].get("model", "head_model").state
    embedder = resources["model_registry"].load("head_model", state["version"])
    paths = [home / f"bench-images/{i}.jpg" for i in range(count)]
    decoded = load_images(paths, embedder.geometry)

    def bare_forward():
        with torch.inference_mode():
            for start in range(0, count, 256):
                embedder(torch.from_numpy(decoded[start : start + 256]))

    stages = {
        "CONVERT statement (all of it)": lambda: conn.execute(
            "CONVERT USING head_model OPTIONS (table_name='big') AS SELECT * FROM big"
        ),
        "decode + embed (CONVERT's embedding step)": lambda: embedder.embed_files(paths),
        "embed decoded images (folded, channels-last)": lambda: embedder.embed(decoded),
        "decode only": lambda: load_images(paths, embedder.geometry),
        "bare forward (plain module, batch 256)": bare_forward,
    }
    seconds: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(repeat):
        for name, run in stages.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    return {name: count / statistics.median(values) for name, values in seconds.items()}


def cold_build_seconds(home: Path) -> float:
    sql = "BUILD MODEL cold_model USING SimCLR OPTIONS (overwrite=True) AS SELECT * FROM head_train"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sql_frontend.interfaces.cli", "--home", str(home), "query", sql], check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repetitions of the CONVERT measurements")
    parser.add_argument("--convert-only", action="store_true", help="train one model briefly and measure CONVERT only")
    args = parser.parse_args()
    os.environ.pop("DAGSTER_HOME", None)
    import thanosql
    from thanosql_assets.defs.mnist import read_idx

    images = read_idx(MIRROR / "train-images-idx3-ubyte.gz")
    labels = read_idx(MIRROR / "train-labels-idx1-ubyte.gz")
    unseen = read_idx(T10K / "t10k-images-idx3-ubyte.gz"), read_idx(T10K / "t10k-labels-idx1-ubyte.gz")
    with tempfile.TemporaryDirectory() as root:
        conn = thanosql.connect(Path(root) / "ws", progress=False)
        rows = []
        if args.convert_only:
            write_table(Path(conn.home), "head_train", images, range(1000))
            conn.execute("COPY head_train FROM 'head_train.csv'")
            conn.execute("BUILD MODEL head_model USING SimCLR OPTIONS (max_epochs=2) AS SELECT * FROM head_train")
        for seed in [] if args.convert_only else args.seeds:
            rows += quality_rows(conn, images, labels, unseen, seed)
            print(f"seed {seed} done", file=sys.stderr)
        speed = convert_speed(conn, images, labels, args.repeat)
        cold = None if args.convert_only else cold_build_seconds(Path(conn.home))

    if rows:
        print_quality(rows, cold)
    print("\nCONVERT of 10,000 MNIST images, medians of interleaved runs, beside the bare encoder's forward pass")
    bare = speed["bare forward (plain module, batch 256)"]
    for name, value in speed.items():
        print(f"  {name:<46} {value:8.0f} images/s  {value / bare:5.2f}x bare forward")


def print_quality(rows, cold: float) -> None:
    print("\nRetrieval quality: 1,000 unlabelled training images, 200 query images (t10k-4k: 4,000), cosine neighbours of the embeddings")
    header = f"{'split':<9} {'seed':>4} {'P@4':>6} {'P@10':>6} | {'raw P@4':>7} {'raw P@10':>8} | {'supervised P@4':>14} | {'BUILD s':>7} {'train s':>7} {'train img/s':>11}"
    print(header)
    for split, seed, p4, p10, r4, r10, s4, build, train, rate in rows:
        print(f"{split:<9} {seed:>4} {p4:6.3f} {p10:6.3f} | {r4:7.3f} {r10:8.3f} | {s4:14.3f} | {build:7.1f} {train:7.1f} {rate:11.0f}")
    for split in ("head", "t10k", "t10k-4k", "tutorial"):
        chosen = [r for r in rows if r[0] == split]
        print(
            f"{split:<9} {'med':>4} {statistics.median(r[2] for r in chosen):6.3f} {statistics.median(r[3] for r in chosen):6.3f} | "
            f"{statistics.median(r[4] for r in chosen):7.3f} {statistics.median(r[5] for r in chosen):8.3f} | "
            f"{statistics.median(r[6] for r in chosen):14.3f} | {statistics.median(r[7] for r in chosen):7.1f} "
            f"{statistics.median(r[8] for r in chosen):7.1f} {statistics.median(r[9] for r in chosen):11.0f}"
        )
    print(f"\nBUILD MODEL (defaults) in a cold `thanosql query` process, imports included: {cold:.1f} s")


if __name__ == "__main__":
    main()
