"""Wall time of the seed 001 tutorial, per statement and in all, on embedded defaults.

    THANOSQL_DATASET_MIRROR=../shared/datasets/mnist-train-head18k .venv/bin/python bench/tutorial_timing.py --repeat 3

Each repetition runs the eight statements verbatim in a fresh workspace, in one warm Python
process (the way a notebook runs them), and separately as one cold `thanosql run` process
(the way the README's first command runs them), followed by one SEARCH in a cold `thanosql query`
process. Baselines measured in the same run, to read the
figures against: the per-statement floor (`SELECT 1` through the same API), a no-op asset
materialized in process on the same Dagster instance (orchestration overhead), and a bare
Python start that imports the package. Medians, with min and max.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.seeds import seed_cells  # noqa: E402

COLD_SEARCH = (
    "SELECT image_path, my_image_search_model_simclr_similarity1 AS similarity FROM (SEARCH IMAGE "
    "images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM mnist_test) "
    "ORDER BY similarity DESC LIMIT 4"
)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_once(root: Path) -> dict[str, float]:
    import dagster as dg

    import thanosql

    conn = thanosql.connect(root / "warm", progress=False)
    times = {}
    for cell in seed_cells("001"):
        label = " ".join(cell.split()[:3])
        times[label] = timed(lambda: conn.execute(cell))
    times["(baseline) SELECT 1"] = timed(lambda: conn.execute("SELECT 1"))

    @dg.asset
    def noop() -> None:
        return None

    instance = conn.settings.dagster_instance()
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    dg.materialize([noop], instance=instance, run_config=quiet)  # warm
    times["(baseline) no-op Dagster asset"] = timed(lambda: dg.materialize([noop], instance=instance, run_config=quiet))

    script = REPO / "examples" / "search_image_by_image.sql"
    cli = [sys.executable, "-m", "sql_frontend.interfaces.cli", "--home", str(root / "cold"), "run", str(script)]
    times["whole tutorial, cold `thanosql run` process"] = timed(
        lambda: subprocess.run(cli, check=True, capture_output=True, cwd=REPO)
    )
    # One SEARCH as a fresh CLI process runs it (imports, the model's load), against SELECT 1 the same way.
    query = [sys.executable, "-m", "sql_frontend.interfaces.cli", "--home", str(root / "cold"), "query"]
    times["cold `thanosql query` process: top-4 SEARCH"] = timed(
        lambda: subprocess.run([*query, COLD_SEARCH], check=True, capture_output=True, cwd=REPO)
    )
    times["(baseline) cold `thanosql query` process: SELECT 1"] = timed(
        lambda: subprocess.run([*query, "SELECT 1"], check=True, capture_output=True, cwd=REPO)
    )
    times["(baseline) python -c 'import thanosql'"] = timed(
        lambda: subprocess.run([sys.executable, "-c", "import thanosql"], check=True, cwd=REPO)
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("THANOSQL_DATASET_MIRROR"):
        os.environ["THANOSQL_DATASET_MIRROR"] = str(REPO.parent / "shared" / "datasets" / "mnist-train-head18k")
    os.environ.pop("DAGSTER_HOME", None)

    samples: dict[str, list[float]] = {}
    for repetition in range(args.repeat):
        with tempfile.TemporaryDirectory() as root:
            for label, seconds in run_once(Path(root)).items():
                samples.setdefault(label, []).append(seconds)
        print(f"repetition {repetition + 1}/{args.repeat} done", file=sys.stderr)

    statements = [label for label in samples if not label.startswith("(") and not label.startswith("whole")]
    samples["whole tutorial, warm process (sum of statements)"] = [
        sum(samples[label][i] for label in statements) for i in range(args.repeat)
    ]
    width = max(len(label) for label in samples)
    print(f"\nSeed 001 tutorial on embedded defaults, {args.repeat} repetitions, seconds (median [min, max])\n")
    print(f"{'statement':<{width}}  {'median':>8}  {'min':>8}  {'max':>8}")
    for label, values in samples.items():
        print(f"{label:<{width}}  {statistics.median(values):8.3f}  {min(values):8.3f}  {max(values):8.3f}")


if __name__ == "__main__":
    main()
