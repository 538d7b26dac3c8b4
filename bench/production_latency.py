"""What production mode adds to a statement: submission to first result, beside embedded mode.

    .venv/bin/python bench/production_latency.py --repeat 5

Starts production mode on this machine as real processes (PostgreSQL databases of its own on the
local server, dagster-webserver, dagster-daemon, mlflow server, thanosql serve; the same helper
as the production tests), sets up the tutorial's tables and model over HTTP, then times the same
statements over HTTP and in an embedded workspace built the same way, in the same run:
- a query (SELECT ... LIMIT 5) and the tutorial's top-4 SEARCH, which the SQL server answers itself;
- a COPY, which production mode runs as a Dagster run the daemon launches.
Medians (ms), with min and max, and the ratio production / embedded.
"""

from __future__ import annotations

import argparse
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
STATEMENTS = {
    "SELECT ... LIMIT 5": "SELECT * FROM mnist_train LIMIT 5",
    "SEARCH top 4 (PRINT's query)": (
        "SELECT image_path, my_image_search_model_simclr_similarity1 FROM (SEARCH IMAGE "
        "images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM mnist_test) "
        "ORDER BY my_image_search_model_simclr_similarity1 DESC LIMIT 4"
    ),
    "COPY (a Dagster run)": 'COPY scratch OPTIONS (overwrite=True) FROM "thanosql-dataset/mnist_data/mnist_test.csv"',
}


def timings(conn, sql: str, repeat: int) -> list[float]:
    conn.execute(sql)  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn.execute(sql)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import thanosql

    root = Path(tempfile.mkdtemp(prefix="production-bench-"))
    embedded = thanosql.connect(root / "embedded", progress=False)
    for cell in SETUP:
        embedded.execute(cell)
    with production_stack(root / "production") as stack:
        remote = thanosql.connect(url=stack.sql_url, api_token=stack.token("bench"), progress=False)
        started = time.perf_counter()
        for cell in SETUP:
            remote.execute(cell)
        print(f"tutorial setup over HTTP (GET, 2 COPY, SELECT, BUILD, CONVERT): {time.perf_counter() - started:.1f} s")
        rows = []
        for label, sql in STATEMENTS.items():
            repeat = args.repeat if "COPY" in label else args.repeat * 10
            local, served = timings(embedded, sql, repeat), timings(remote, sql, repeat)
            rows.append((label, local, served))
    print()
    print(f"{'statement':32} | {'embedded p50 (min-max) ms':>28} | {'production p50 (min-max) ms':>30} | {'ratio':>6} | {'added ms':>8}")
    print("-" * 118)
    for label, local, served in rows:
        a, b = statistics.median(local) * 1000, statistics.median(served) * 1000
        print(
            f"{label:32} | {a:>9.1f} ({min(local) * 1000:.1f}-{max(local) * 1000:.1f}) {'':>6}| "
            f"{b:>9.1f} ({min(served) * 1000:.1f}-{max(served) * 1000:.1f}) {'':>6}| {b / a:>5.1f}x | {b - a:>8.1f}"
        )


if __name__ == "__main__":
    main()
