"""What production mode adds to a statement: submission to first result, beside embedded mode.

    .venv/bin/python bench/production_latency.py --repeat 5

Starts production mode on this machine as real processes (PostgreSQL databases of its own on the
local server, dagster-webserver, dagster-daemon, mlflow server, thanosql serve; the same helper
as the production tests), sets up the tutorial's tables and model over HTTP, then times the same
statements over HTTP and in an embedded workspace built the same way, in the same run:
- a query (SELECT ... LIMIT 5) and the tutorial's top-4 SEARCH, which the SQL server answers itself;
- light statements (a COPY over a table, a COPY making a new table, whose code location reload
  follows in the background, a CONVERT of 200 images), which the server runs as in-process
  Dagster runs on the PostgreSQL instance;
- a heavy one (GET THANOSQL DATASET, a download), which goes to the daemon's run launcher.
Each statement starts once the server's code location reloads are done, as between a notebook's
cells (a reload runs the code location's server anew: seconds of CPU). Medians (ms), with min
and max, and the ratio production / embedded; then the runs on the Dagster instance, by placement.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("THANOSQL_DATASET_MIRROR", str(REPO.parent / "shared" / "datasets" / "mnist-train-head18k"))

from tests.production_stack import production_stack  # noqa: E402
from tests.seeds import seed_cells  # noqa: E402

SETUP = seed_cells("001")[:6]  # GET, COPY, COPY, SELECT, BUILD, CONVERT
_new_tables = itertools.count()
STATEMENTS = {
    "SELECT ... LIMIT 5": "SELECT * FROM mnist_train LIMIT 5",
    "SEARCH top 4 (PRINT's query)": (
        "SELECT image_path, my_image_search_model_simclr_similarity1 FROM (SEARCH IMAGE "
        "images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM mnist_test) "
        "ORDER BY my_image_search_model_simclr_similarity1 DESC LIMIT 4"
    ),
    "COPY over a table (server run)": 'COPY scratch OPTIONS (overwrite=True) FROM "thanosql-dataset/mnist_data/mnist_test.csv"',
    "COPY a new table (server run)": lambda: f'COPY scratch_{next(_new_tables)} FROM "thanosql-dataset/mnist_data/mnist_test.csv"',
    "CONVERT 200 images (server run)": (
        "CONVERT USING my_image_search_model OPTIONS (table_name='scratch_images') AS SELECT * FROM scratch_images"
    ),
    "GET DATASET (launched run)": "GET THANOSQL DATASET mnist_data OPTIONS (overwrite=True)",
}
PREPARE = ['COPY scratch_images FROM "thanosql-dataset/mnist_data/mnist_test.csv"']
LIGHT = ("COPY", "CONVERT", "GET")


def timings(conn, sql, repeat: int, settled=lambda: None) -> list[float]:
    """Seconds of each of `repeat` runs of `sql` (a statement, or a function making a new one each
    time), after one warm-up; each starts once `settled` returns (the server's reloads are done)."""
    statement = sql if callable(sql) else lambda: sql
    conn.execute(statement())
    times = []
    for _ in range(repeat):
        text = statement()
        settled()
        started = time.perf_counter()
        conn.execute(text)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import thanosql

    root = Path(tempfile.mkdtemp(prefix="production-bench-"))
    embedded = thanosql.connect(root / "embedded", progress=False)
    for cell in SETUP + PREPARE:
        embedded.execute(cell)
    with production_stack(root / "production") as stack:
        remote = thanosql.connect(url=stack.sql_url, api_token=stack.token("bench"), progress=False)
        started = time.perf_counter()
        for cell in SETUP + PREPARE:
            remote.execute(cell)
        print(f"tutorial setup over HTTP (GET, 2 COPY, SELECT, BUILD, CONVERT, COPY): {time.perf_counter() - started:.1f} s")
        rows = []
        for label, sql in STATEMENTS.items():
            repeat = args.repeat if label.startswith(LIGHT) else args.repeat * 10
            local, served = timings(embedded, sql, repeat, stack.settled), timings(remote, sql, repeat, stack.settled)
            rows.append((label, local, served))
        runs = stack.instance().get_runs()
    placed = collections.Counter((run.tags.get("thanosql/placement", "-"), run.job_name) for run in runs)
    print()
    print(f"{'statement':32} | {'embedded p50 (min-max) ms':>28} | {'production p50 (min-max) ms':>30} | {'ratio':>6} | {'added ms':>8}")
    print("-" * 118)
    for label, local, served in rows:
        a, b = statistics.median(local) * 1000, statistics.median(served) * 1000
        print(
            f"{label:32} | {a:>9.1f} ({min(local) * 1000:.1f}-{max(local) * 1000:.1f}) {'':>6}| "
            f"{b:>9.1f} ({min(served) * 1000:.1f}-{max(served) * 1000:.1f}) {'':>6}| {b / a:>5.1f}x | {b - a:>8.1f}"
        )
    print()
    print("runs on the production instance (placement, job): " + ", ".join(f"{tag} {job} {n}" for (tag, job), n in sorted(placed.items())))


if __name__ == "__main__":
    main()
