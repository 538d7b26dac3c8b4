"""COPY of a large CSV, beside DuckDB's own `read_csv` into a table, in the same run.

    .venv/bin/python bench/copy_large_csv.py                     # 1,000,000 rows, 3 runs each
    .venv/bin/python bench/copy_large_csv.py --rows 200000 --runs 5

The CSV has the tutorial's columns (image_path, filename, label) plus a float `score`, about
65 bytes a row. Each run is a fresh process and a fresh workspace (or database file):

- ThanoSQL: `thanosql.connect(home).execute("COPY big FROM 'big.csv'")` on embedded defaults
  (DuckDB table store), which checks every line's structure, infers exact types and records the
  Dagster materialization;
- DuckDB: `CREATE TABLE big AS SELECT * FROM read_csv('big.csv')` on a database file.

Printed: median wall seconds of the statement alone (imports, connection and a first COPY of a
two-line file excluded) and the ratio to DuckDB; the peak resident memory the statement added
above the process's size before it (ru_maxrss), beside the file's size, since a large file must
not need its size in memory twice over.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_THANOSQL = """
import json, resource, sys, time
import thanosql
conn = thanosql.connect(sys.argv[1], progress=False)
conn.execute("COPY warm FROM '" + sys.argv[3] + "'")  # the code a COPY loads is loaded before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
conn.execute("COPY big FROM '" + sys.argv[2] + "'")
seconds = time.perf_counter() - started
rows = int(conn.execute("SELECT count(*) AS n FROM big")["n"].iloc[0])
print(json.dumps({"seconds": seconds, "added_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, "rows": rows}))
"""

_DUCKDB = """
import json, resource, sys, time
import duckdb
con = duckdb.connect(sys.argv[1] + ".duckdb")
con.execute("CREATE TABLE warm AS SELECT * FROM read_csv('" + sys.argv[3] + "')")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
con.execute("CREATE TABLE big AS SELECT * FROM read_csv('" + sys.argv[2] + "')")
seconds = time.perf_counter() - started
rows = con.execute("SELECT count(*) FROM big").fetchone()[0]
print(json.dumps({"seconds": seconds, "added_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, "rows": rows}))
"""


def write_csv(path: Path, rows: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    with path.open("w") as file:
        file.write("image_path,filename,label,score\n")
        for start in range(0, rows, 100_000):
            count = min(100_000, rows - start)
            images, labels, scores = rng.integers(0, 60_000, count), rng.integers(0, 10, count), rng.random(count)
            file.writelines(
                f"thanosql-dataset/mnist_data/train/{i}.jpg,{i}.jpg,{label},{score:.6f}\n" for i, label, score in zip(images, labels, scores)
            )


def run(script: str, workdir: Path, csv_path: Path) -> dict:
    warm = csv_path.with_name("warm.csv")
    warm.write_text("image_path,filename,label,score\na.jpg,a.jpg,1,0.5\n")
    command = [sys.executable, "-c", script, str(workdir), str(csv_path), str(warm)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        csv_path = scratch / "big.csv"
        write_csv(csv_path, args.rows)
        size_mib = csv_path.stat().st_size / 2**20
        results: dict[str, list[dict]] = {"ThanoSQL COPY": [], "DuckDB read_csv": []}
        for index in range(args.runs):  # interleaved, so drift on a noisy machine hits both
            results["ThanoSQL COPY"].append(run(_THANOSQL, scratch / f"workspace{index}", csv_path))
            results["DuckDB read_csv"].append(run(_DUCKDB, scratch / f"duckdb{index}", csv_path))
        baseline = statistics.median(result["seconds"] for result in results["DuckDB read_csv"])
        print(f"COPY of a {args.rows:,}-row CSV ({size_mib:.0f} MiB), {args.runs} runs each, medians")
        print(f"{'':18} {'seconds':>8} {'vs DuckDB':>9} {'peak MiB added':>15} {'x file size':>11} {'rows':>10}")
        for name, runs in results.items():
            seconds = statistics.median(result["seconds"] for result in runs)
            added = statistics.median(result["added_kib"] for result in runs) / 1024
            rows = {result["rows"] for result in runs}
            print(f"{name:18} {seconds:8.2f} {seconds / baseline:8.1f}x {added:15.0f} {added / size_mib:10.2f}x {','.join(map(str, rows)):>10}")


if __name__ == "__main__":
    main()
