"""CONVERT of 60,000 images as one run, and as 2 partition runs on 1 or 2 run workers.

    THANOSQL_DATASET_MIRROR=../shared/datasets/mnist-train-head18k .venv/bin/python bench/partitioned_convert.py --repeat 3

Sets up the tutorial's model (seed 001's GET, COPY and BUILD MODEL) in a fresh embedded
workspace, writes `--images` JPEG files (MNIST digits, quality 95, as GET writes them) and
copies their paths into table `big`. Then, per repetition, in the same run:
- one run: `CONVERT USING ... AS SELECT * FROM big` (partitions=1), in process;
- 2 partitions: the statement's three steps as production runs them: the generation begun in
  process, each partition run in a fresh Python process (as a run launcher starts a run: imports,
  the code location's definitions, one Dagster run), one after the other (1 worker) or at once
  (2 workers), then the switch run in process. Each worker gets cores / workers torch threads, as
  a launcher sizes a run's CPU request.
Printed: medians (with min and max) of the wall time of each, the speed-up over one run, and per
partition run: process start (imports and definitions), the run's time, the embedding time its
metadata reports, and the overhead (all but the embedding); and the partitioned CONVERT's steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("THANOSQL_DATASET_MIRROR", str(REPO.parent / "shared" / "datasets" / "mnist-train-head18k"))

from bench.classifier_training import DATA  # noqa: E402
from bench.search_latency import write_jpegs  # noqa: E402
from tests.seeds import seed_cells  # noqa: E402

MODEL = "my_image_search_model"
CORES = os.cpu_count() or 1


def partition_run(home: str, spec_json: str, partition: str) -> None:
    """One partition run in this fresh process, as a run worker would start it; prints its timings."""
    started = time.perf_counter()
    import dagster as dg

    from resources import Settings, build_resources
    from thanosql_assets.defs.generations import pending_generation
    from thanosql_assets.defs.materialize import run_partition
    from thanosql_assets.defs.objects import build_definitions, catalog_specs
    from thanosql_assets.defs.specs import EmbeddingSpec

    settings = Settings.from_env(home)
    resources = build_resources(settings)
    spec = EmbeddingSpec.from_dict(json.loads(spec_json))
    others = [other for other in catalog_specs(resources["catalog"]) if (other.kind, other.catalog_name) != (spec.kind, spec.catalog_name)]
    definitions = build_definitions([*others, spec], resources)
    instance = settings.dagster_instance()
    ready = time.perf_counter()
    run_partition(definitions, spec, partition, pending_generation(settings.home, spec), instance, {}, resources)
    done = time.perf_counter()
    records = instance.fetch_materializations(dg.AssetKey(list(spec.asset_key.path)), limit=50).records
    embed = next(record for record in records if record.partition_key == partition).asset_materialization.metadata
    images = embed["embedded_images"].value
    print(json.dumps({"start": ready - started, "run": done - ready, "embed": images / embed["images_per_second"].value, "images": images}))


def set_up(home: Path, images: int):
    import pandas as pd

    import thanosql
    from thanosql_assets.defs.mnist import read_idx

    conn = thanosql.connect(home, progress=False)
    for cell in seed_cells("001")[:5]:  # GET, COPY, COPY, SELECT, BUILD MODEL
        conn.execute(cell)
    pixels = read_idx(DATA / "mnist-train-head18k" / "train-images-idx3-ubyte.gz")
    names = [f"{index:05d}.jpg" for index in range(images)]
    paths = write_jpegs(pixels[[index % len(pixels) for index in range(images)]], home / "big", names)
    pd.DataFrame({"image_path": [str(Path(path).relative_to(home)) for path in paths]}).to_csv(home / "big.csv", index=False)
    conn.execute("COPY big FROM 'big.csv'")
    return conn


def one_run(conn) -> float:
    started = time.perf_counter()
    conn.execute(f"CONVERT USING {MODEL} OPTIONS (partitions=1) AS SELECT * FROM big")
    return time.perf_counter() - started


def partitioned(conn, workers: int) -> tuple[dict[str, float], list[dict]]:
    from thanosql_assets.defs.materialize import MaterializationRequest, begin_partitioned, materialize
    from thanosql_assets.defs.specs import EmbeddingSpec

    resources, instance = conn._runner.resources, conn._runner.instance
    entry = resources["catalog"].get("embedding", f"big/{MODEL}")
    spec = EmbeddingSpec.from_dict({**entry.spec, "partitions": 2})
    started = time.perf_counter()
    generation = begin_partitioned(spec, resources, rebuild=True)
    begun = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, CORES // workers))}
    command = [sys.executable, __file__, "--partition-run", str(conn.settings.home), json.dumps(spec.to_dict())]
    names = generation.unfinished(conn.settings.home, spec)
    outputs = []
    for batch in [names[index : index + workers] for index in range(0, len(names), workers)]:
        processes = [subprocess.Popen([*command, name], env=env, stdout=subprocess.PIPE, text=True) for name in batch]
        outputs += [json.loads(process.communicate()[0].strip().splitlines()[-1]) for process in processes]
    embedded = time.perf_counter()
    materialize(MaterializationRequest((spec,), (spec.collection_key,)), resources, instance, "switch")
    done = time.perf_counter()
    return {"total": done - started, "begin": begun - started, "partition runs": embedded - begun, "switch": done - embedded}, outputs


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partition-run", nargs=3, metavar=("HOME", "SPEC", "PARTITION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.partition_run:
        partition_run(*args.partition_run)
        return
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        conn = set_up(Path(root) / "workspace", args.images)
        print(f"set up: tutorial model, {args.images:,} JPEG files in table big ({time.perf_counter() - started:.0f} s); {CORES} cores")
        one_run(conn)  # warm-up: the model loaded, the first collection built
        names = {1: "2 partitions, 1 worker", 2: "2 partitions, 2 workers"}
        times: dict[str, list[float]] = {"one run": [], **{name: [] for name in names.values()}}
        steps: dict[str, list[dict]] = {name: [] for name in names.values()}
        runs: dict[str, list[dict]] = {name: [] for name in names.values()}
        for _ in range(args.repeat):  # interleaved: the machine's noise falls on each alike
            times["one run"].append(one_run(conn))
            for workers, name in names.items():
                seconds, outputs = partitioned(conn, workers)
                times[name].append(seconds["total"])
                steps[name].append(seconds)
                runs[name] += outputs
        base = statistics.median(times["one run"])
        print(f"\nCONVERT of {args.images:,} images, medians of {args.repeat}:")
        for name, values in times.items():
            print(f"  {name:26s} {summary(values)}   speed-up {base / statistics.median(values):.2f}x")
        print("\nthe steps of a partitioned CONVERT (medians): begin (in process) | partition runs | switch run (in process)")
        for name, values in steps.items():
            print(f"  {name:26s} " + " | ".join(f"{statistics.median(value[step] for value in values):5.2f} s" for step in ("begin", "partition runs", "switch")))
        print("\nper partition run (medians): process start | run | embedding | overhead (start + run - embedding)")
        for name, outputs in runs.items():
            start, run, embed = (statistics.median(output[field] for output in outputs) for field in ("start", "run", "embed"))
            print(f"  {name:26s} {start:5.2f} s | {run:5.2f} s | {embed:5.2f} s | {start + run - embed:5.2f} s")


if __name__ == "__main__":
    main()
