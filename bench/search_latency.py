"""SEARCH latency: top-k through `conn.execute`, at 10k, 100k and 1M rows, beside LanceDB.

    pip install -e '.[bench]'                                  # LanceDB, the peer (bench only)
    .venv/bin/python bench/search_latency.py                 # 10k, 100k, 1M rows; 200 queries each
    .venv/bin/python bench/search_latency.py --sizes 10000 100000 --queries 300

Each query is the tutorial's PRINT query shape, end to end through the Python API, including
decoding and embedding the query image:

    SELECT image_path, <sim> FROM (SEARCH IMAGE images='q.jpg' USING m AS SELECT * FROM t)
    ORDER BY <sim> DESC LIMIT 4

Data: a model is trained briefly (the tutorial's BUILD MODEL with max_epochs=5) on the tutorial
dataset. The 10k table is real: the first 10,000 MNIST training images, written as JPEGs,
COPYed and CONVERTed. The 100k and 1M tables are SYNTHETIC: each row is one of those 10,000
real embeddings plus Gaussian noise (cosine ~0.9 to its source), normalized, written straight
into the table store and a Qdrant collection with the layout CONVERT makes. Queries are 200
(or --queries) images of the MNIST test set (../shared/datasets/mnist-t10k), never in a table.

Beside each size, measured in the same run over the same vectors and queries:
- LanceDB, the embedded vector database a user would pick instead: a table of the same keys and
  vectors, its IVF_HNSW_SQ index by cosine, the same queries (the query vector given, so its
  times leave out the embedding that SEARCH's include); both are warmed by the same 100 queries
  before timing, and SEARCH by more where it does not hold the table's rows in memory by then
  (large tables: the warm-up's own figures are printed at the end);
- DuckDB's own `array_cosine_similarity` over the table, every row into a DataFrame, beside the
  exhaustive SEARCH (no ORDER BY/LIMIT), at sizes up to 100k;
- numpy brute force: the exact top 4 by one matrix-vector product and argpartition, the
  answer recall@4 is measured against;
- the query image's embedding alone (part of every SEARCH).
At 100k, also the index build: Qdrant Edge building a collection as CONVERT does, beside
LanceDB creating its table and index. Medians and p99 in milliseconds.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
sys.path.insert(0, str(REPO))

MODEL = "bench_model"
SIMILARITY = f"{MODEL}_simclr_similarity1"
WARM_UP = 100  # queries run before timing, by SEARCH and LanceDB alike
MAX_WARM_UP = 2_000  # SEARCH goes on warming up until it holds the table's rows, up to this many queries
HELD = "rows held in memory"  # the end of conn.last_plan once it does


def read_idx_images(path: Path) -> np.ndarray:
    with gzip.open(path) as handle:
        data = handle.read()
    count, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


def write_jpegs(images: np.ndarray, folder: Path, names: list[str]) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names):
        Image.fromarray(image).save(folder / name, quality=95)
    return [str(folder / name) for name in names]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def load_synthetic(conn, table: str, base_keys: list[str], base: np.ndarray, rows: int, seed: int = 0) -> None:
    """A table of `rows` noisy copies of the base embeddings, with its collection and catalog entry."""
    import pyarrow as pa

    from resources import Generation, build_resources
    from thanosql_assets.defs.embeddings import collection_name
    from thanosql_assets.defs.specs import EmbeddingSpec
    from thanosql_assets.models.vectors import l2_normalize

    resources = build_resources(conn.settings)
    rng = np.random.default_rng(seed)
    source = np.arange(rows) % len(base)
    vectors = l2_normalize(base[source] + rng.normal(0, 0.043, (rows, base.shape[1])).astype(np.float32))
    keys = [f"synthetic/{i}/{Path(base_keys[s]).name}" for i, s in enumerate(source)]
    spec = EmbeddingSpec(table=table, model=MODEL, algorithm="SimCLR", image_col="image_path", query=f"SELECT * FROM {table}", tables=(table,))
    collection = collection_name(spec)
    started = time.perf_counter()
    resources["vector_store"].build_collection(collection, keys, vectors)
    print(f"  {table}: Qdrant collection of {rows:,} vectors built in {time.perf_counter() - started:.1f} s", flush=True)
    data = pa.table(
        {
            "image_path": keys,
            "source": pa.array(source, pa.int32()),
            spec.column: pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
        }
    )
    version = resources["catalog"].get("model", MODEL).state["version"]
    generation = Generation(table, spec.column, collection, str(version), "image_path")
    resources["warehouse"].replace_table(table, data, index_on=["image_path"], generations=[generation])
    resources["catalog"].put(
        "embedding", spec.catalog_name, spec.to_dict(), {"collection": collection, "model_version": version, "vectors": rows}
    )


def measure(conn, table: str, keys: np.ndarray, vectors: np.ndarray, query_paths: list[str], query_vectors: np.ndarray, exhaustive: int):
    sql = "SELECT image_path, {sim} FROM (SEARCH IMAGE images='{q}' USING {m} AS SELECT * FROM {t}) ORDER BY {sim} DESC LIMIT 4"
    # Steady state: model and collection open, the table's rows held in memory. A table's rows are
    # copied once its searches have spent as long reading them by statement as the copy costs
    # (row_snapshots), so a large table needs more than WARM_UP queries to get there.
    warm_up = []
    for number in range(MAX_WARM_UP):
        started = time.perf_counter()
        conn.execute(sql.format(sim=SIMILARITY, q=query_paths[number % WARM_UP], m=MODEL, t=table))
        warm_up.append((time.perf_counter() - started, conn.last_plan))
        if number + 1 >= WARM_UP and conn.last_plan.endswith(HELD):
            break
    # SEARCH and the brute-force scan are timed in separate passes: a scan of 512 MB (1M x 128
    # floats) between searches would evict the caches every search works from.
    search_times, answers = [], []
    for path in query_paths:
        started = time.perf_counter()
        rows = conn.execute(sql.format(sim=SIMILARITY, q=path, m=MODEL, t=table))
        search_times.append(time.perf_counter() - started)
        assert conn.last_plan.startswith("top-k"), conn.last_plan
        answers.append(set(rows["image_path"]))
    brute_times, recalls, exact = [], [], []
    for query, answer in zip(query_vectors, answers):
        started = time.perf_counter()
        scores = vectors @ query
        top = np.argpartition(-scores, 4)[:4]
        top = top[np.argsort(-scores[top])]
        brute_times.append(time.perf_counter() - started)
        exact.append(set(keys[top]))
        recalls.append(len(answer & exact[-1]) / 4)
    exhaustive_times, duckdb_times = [], []
    warehouse = conn._runner.resources["warehouse"]
    peer = f"SELECT *, array_cosine_similarity({MODEL}_simclr, $q::FLOAT[{vectors.shape[1]}]) AS similarity FROM {table}"
    for path, query in zip(query_paths[:exhaustive], query_vectors):
        started = time.perf_counter()
        conn.execute(f"SEARCH IMAGE images='{path}' USING {MODEL} AS SELECT * FROM {table}")
        exhaustive_times.append(time.perf_counter() - started)
        with warehouse.connect() as con:  # the peer: DuckDB itself, every row and its similarity into a DataFrame
            started = time.perf_counter()
            con.execute(peer, {"q": query.tolist()}).df()
            duckdb_times.append(time.perf_counter() - started)
    return search_times, brute_times, recalls, exhaustive_times, duckdb_times, exact, warm_up


def embed_times(conn, query_paths: list[str]) -> tuple[list[float], np.ndarray]:
    from resources import build_resources
    from thanosql_assets.models.images import load_images

    registry = build_resources(conn.settings)["model_registry"]
    version = build_resources(conn.settings)["catalog"].get("model", MODEL).state["version"]
    embedder = registry.load(MODEL, version)
    times, vectors = [], []
    for path in query_paths:
        started = time.perf_counter()
        vector = embedder.embed(load_images([Path(path)], embedder.geometry))[0]
        times.append(time.perf_counter() - started)
        vectors.append(vector / np.linalg.norm(vector))
    return times, np.stack(vectors)


def lancedb_peer(home: Path, keys: np.ndarray, vectors: np.ndarray, query_vectors: np.ndarray, exact: list[set]) -> dict:
    """LanceDB over the same vectors: its table, its IVF_HNSW_SQ index by cosine (build timed) and
    the same queries (the query vector given), warmed like SEARCH."""
    import lancedb
    import pyarrow as pa
    from lancedb.index import IvfHnswSq

    database = lancedb.connect(tempfile.mkdtemp(prefix="lancedb-", dir=home))
    data = pa.table({"image_path": keys, "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])})
    started = time.perf_counter()
    table = database.create_table("bench", data)
    table.create_index("vector", config=IvfHnswSq(distance_type="cosine"))
    build = time.perf_counter() - started
    for query in (list(query_vectors) * WARM_UP)[:WARM_UP]:
        table.search(query).distance_type("cosine").limit(4).to_pandas()
    times, recalls = [], []
    for query, answer in zip(query_vectors, exact):
        started = time.perf_counter()
        rows = table.search(query).distance_type("cosine").limit(4).to_pandas()
        times.append(time.perf_counter() - started)
        recalls.append(len(answer & set(rows["image_path"])) / 4)
    return {"build": build, "times": times, "recall": float(np.mean(recalls))}


def index_build(home: Path, keys: np.ndarray, vectors: np.ndarray) -> float:
    """Seconds for Qdrant Edge to build a collection of `vectors` as CONVERT does (points, then the HNSW index)."""
    from resources.qdrant_edge import QdrantEdgeResource

    store = QdrantEdgeResource(path=tempfile.mkdtemp(prefix="index-bench-", dir=home))
    started = time.perf_counter()
    store.build_collection("bench", [str(key) for key in keys], vectors)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exhaustive", type=int, default=20, help="queries timed with the exhaustive plan (no ORDER BY/LIMIT), at sizes up to 100k")
    parser.add_argument("--home", type=Path, help="workspace to use (default: a temporary directory)")
    args = parser.parse_args()

    os.environ.setdefault("THANOSQL_DATASET_MIRROR", str(DATASETS / "mnist-train-head18k"))
    import pandas as pd

    import thanosql

    home = args.home or Path(tempfile.mkdtemp(prefix="search-bench-")) / "workspace"
    conn = thanosql.connect(home, progress=False)
    print(f"workspace {home}", flush=True)
    if (home / "gallery.csv").exists():
        print("reusing the tables and collections of an earlier run in this workspace", flush=True)
        return report(args, conn, home)
    started = time.perf_counter()
    conn.execute("GET THANOSQL DATASET mnist_data OPTIONS (overwrite=True)")
    conn.execute("COPY mnist_train OPTIONS (overwrite=True) FROM 'thanosql-dataset/mnist_data/mnist_train.csv'")
    conn.execute(f"BUILD MODEL {MODEL} USING SimCLR OPTIONS (max_epochs=5, overwrite=True) AS SELECT * FROM mnist_train")
    print(f"model trained in {time.perf_counter() - started:.1f} s", flush=True)

    gallery = read_idx_images(DATASETS / "mnist-train-head18k" / "train-images-idx3-ubyte.gz")[:10_000]
    gallery_paths = write_jpegs(gallery, home / "gallery", [f"{i}.jpg" for i in range(len(gallery))])
    pd.DataFrame({"image_path": [str(Path(p).relative_to(home)) for p in gallery_paths]}).to_csv(home / "gallery.csv", index=False)
    test_images = read_idx_images(DATASETS / "mnist-t10k" / "t10k-images-idx3-ubyte.gz")[: args.queries]
    write_jpegs(test_images, home / "queries", [f"q{i}.jpg" for i in range(len(test_images))])
    conn.execute("COPY real_10k OPTIONS (overwrite=True) FROM 'gallery.csv'")
    started = time.perf_counter()
    conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='real_10k') AS SELECT * FROM real_10k")
    print(f"real_10k: CONVERT of 10,000 images in {time.perf_counter() - started:.1f} s", flush=True)
    report(args, conn, home)


def report(args, conn, home: Path) -> None:
    query_paths = [str(home / "queries" / f"q{i}.jpg") for i in range(args.queries)]
    real = conn.execute(f"SELECT image_path, {MODEL}_simclr AS v FROM real_10k")
    base_keys, base = real["image_path"].tolist(), np.stack(real["v"].to_numpy()).astype(np.float32)

    embed, query_vectors = embed_times(conn, query_paths)
    table_rows, builds, warm_ups = [], [], []
    for size in args.sizes:
        if size == len(base):
            table, keys, vectors = "real_10k", np.asarray(base_keys), base
        else:
            table = f"synthetic_{size}"
            if conn.execute(f"SELECT count(*) AS n FROM (LIST TABLE) AS t WHERE table_name = '{table}'")["n"].iloc[0] == 0:
                load_synthetic(conn, table, base_keys, base, size)
            stored = conn.execute(f"SELECT image_path, {MODEL}_simclr AS v FROM {table}")
            keys, vectors = np.asarray(stored["image_path"]), np.stack(stored["v"].to_numpy()).astype(np.float32)
        search, brute, recall, exhaustive, peer, exact, warm_up = measure(
            conn, table, keys, vectors, query_paths, query_vectors, args.exhaustive if size <= 100_000 else 0
        )
        print(f"  {table}: {len(search)} queries measured; LanceDB next", flush=True)
        lance = lancedb_peer(home, keys, vectors, query_vectors, exact)
        if size == 100_000:
            builds.append((size, index_build(home, keys, vectors), lance["build"]))
        table_rows.append((size, "real" if table == "real_10k" else "synthetic", search, brute, recall, exhaustive, peer, lance))
        warm_ups.append((size, warm_up))

    print()
    print(f"top 4 by similarity, {args.queries} queries per size, milliseconds")
    print("SEARCH: SELECT image_path, <similarity> FROM (SEARCH ...) ORDER BY <similarity> DESC LIMIT 4 through conn.execute,")
    print(f"  including the query image's decode + embedding (alone: p50 {percentile(embed, 50):.2f}, p99 {percentile(embed, 99):.2f})")
    print("LanceDB: tbl.search(vector).distance_type('cosine').limit(4).to_pandas(), IVF_HNSW_SQ index, the query vector given")
    print()
    header = (
        f"{'rows':>10} {'data':>9} | {'SEARCH p50':>10} {'p99':>6} {'p99/p50':>7} {'recall@4':>8} | "
        f"{'LanceDB p50':>11} {'p99':>6} {'recall@4':>8} | {'SEARCH/LanceDB':>14} | {'numpy brute p50':>15} | "
        f"{'exhaustive p50':>14} {'DuckDB p50':>10} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for size, kind, search, brute, recall, exhaustive, peer, lance in table_rows:
        naive = (
            f"{percentile(exhaustive, 50):>14.1f} {percentile(peer, 50):>10.1f} {statistics.median(exhaustive) / statistics.median(peer):>5.2f}x"
            if exhaustive else f"{'-':>14} {'-':>10} {'-':>6}"
        )
        print(
            f"{size:>10,} {kind:>9} | {percentile(search, 50):>10.2f} {percentile(search, 99):>6.2f} "
            f"{percentile(search, 99) / percentile(search, 50):>6.2f}x {np.mean(recall):>8.4f} | "
            f"{percentile(lance['times'], 50):>11.2f} {percentile(lance['times'], 99):>6.2f} {lance['recall']:>8.4f} | "
            f"{statistics.median(search) / statistics.median(lance['times']):>13.2f}x | {percentile(brute, 50):>15.2f} | {naive}"
        )
    print()
    print("recall@4: against the exact top 4 (numpy brute force over the same vectors, the query embedding given)")
    print("exhaustive: SEARCH without ORDER BY/LIMIT, every row and its similarity; DuckDB: SELECT *, array_cosine_similarity(...)")
    print("over the same table into a DataFrame (the query vector given); ratio: exhaustive p50 / DuckDB p50")
    print()
    print("warm-up: SEARCH reads the candidates' rows by statement until its searches of a table have spent as long as copying")
    print("the table's rows into memory costs; one search then copies them, and the timed searches above read the copy")
    for size, warm_up in warm_ups:
        by_statement = [seconds for seconds, plan in warm_up[1:] if not plan.endswith(HELD)]
        copying = [seconds for (seconds, plan), (_, before) in zip(warm_up[1:], warm_up) if plan.endswith(HELD) and not before.endswith(HELD)]
        held = "rows held" if warm_up[-1][1].endswith(HELD) else f"rows NOT held after {len(warm_up)} queries"
        print(
            f"  {size:>10,} rows: {len(warm_up)} warm-up queries ({held}); by statement p50 "
            f"{percentile(by_statement, 50) if by_statement else float('nan'):.2f} ms over {len(by_statement)}; "
            f"the search that copied the rows {copying[0] if copying else float('nan'):.2f} s"
        )
    for size, edge, lance_build in builds:
        print(
            f"index build, {size:,} x {base.shape[1]} vectors: Qdrant Edge (points + HNSW m=16, ef_construct=64) {edge:.1f} s; "
            f"LanceDB (create_table + IVF_HNSW_SQ create_index) {lance_build:.1f} s; ratio {edge / lance_build:.2f}x"
        )


if __name__ == "__main__":
    main()
