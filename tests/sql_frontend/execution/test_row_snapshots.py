"""The top-k plan served from this process's snapshot of the table's rows, against the plan that
reads the candidates' rows by statement and against the exhaustive plan."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from resources.duckdb_warehouse import release
from sql_frontend.execution import row_snapshots
from tests.conftest import REPO

QUERY = "thanosql-dataset/mnist_data/test/923.jpg"
OTHER = "thanosql-dataset/mnist_data/test/5099.jpg"
SIMILARITY = "my_image_search_model_simclr_similarity1"
SECOND = "my_image_search_model_simclr_similarity2"


def search(images: str = repr(QUERY), query: str = "SELECT * FROM mnist_test") -> str:
    return f"SEARCH IMAGE images={images} USING my_image_search_model AS {query}"


def held_snapshots(conn) -> list[tuple[str, str, str]]:
    location = conn._runner.resources["warehouse"].location
    return [key for key in row_snapshots._held.snapshots if key[0] == location]


def held_key(conn) -> tuple[str, str, str]:
    return (conn._runner.resources["warehouse"].location, "mnist_test", "my_image_search_model_simclr")


def run(conn, sql: str, monkeypatch, *, in_memory: bool) -> pd.DataFrame:
    """`sql` by one top-k plan or the other: snapshots from the first search, or never."""
    monkeypatch.setattr(row_snapshots, "BUILD_SECONDS_PER_ROW", 0.0 if in_memory else 10.0**9)
    monkeypatch.setattr(row_snapshots._held, "snapshots", {})
    rows = conn.execute(sql)
    assert conn.last_plan.startswith("top-k"), conn.last_plan
    assert bool(held_snapshots(conn)) == in_memory
    return rows


def assert_same_rows(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert list(left.columns) == list(right.columns)
    assert list(left.dtypes) == list(right.dtypes)
    pd.testing.assert_frame_equal(left, right, check_exact=False, atol=1e-6)


@pytest.mark.parametrize(
    "sql",
    [
        # The tutorial's PRINT query.
        f"SELECT image_path, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 4",
        f"SELECT filename, label, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 10 OFFSET 5",
        f"SELECT s.image_path AS path, s.{SIMILARITY} AS score, s.label FROM ({search()}) AS s ORDER BY s.{SIMILARITY} DESC LIMIT 3",
        f"SELECT * FROM ({search(query='SELECT image_path, label AS digit FROM mnist_test')}) ORDER BY {SIMILARITY} DESC LIMIT 5",
        f"SELECT LABEL, Image_Path, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 2",
        # Ranked by the second query image, carrying the first one's similarities.
        f"SELECT filename, {SIMILARITY}, {SECOND} FROM ({search(repr([QUERY, OTHER]))}) ORDER BY {SECOND} DESC LIMIT 4",
        # More rows than the table has, and an offset past them.
        f"SELECT image_path, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 500",
        f"SELECT image_path, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 4 OFFSET 1000",
    ],
)
def test_the_in_memory_plan_gives_the_statement_plans_rows(tutorial_conn, monkeypatch, sql):
    from_store = run(tutorial_conn, sql, monkeypatch, in_memory=False)
    in_memory = run(tutorial_conn, sql, monkeypatch, in_memory=True)
    assert_same_rows(in_memory, from_store)


def test_the_in_memory_plan_gives_the_exhaustive_plans_ranking(tutorial_conn, monkeypatch):
    ranked = tutorial_conn.execute(search()).sort_values(SIMILARITY, ascending=False, kind="stable")
    rows = run(tutorial_conn, f"SELECT filename, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 7", monkeypatch, in_memory=True)
    assert rows["filename"].tolist() == ranked["filename"].head(7).tolist()
    np.testing.assert_allclose(rows[SIMILARITY], ranked[SIMILARITY].head(7), atol=1e-5)


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT image_path, {SIMILARITY} FROM ({search()}) WHERE label = 3 ORDER BY {SIMILARITY} DESC LIMIT 4",
        f"SELECT image_path, {SIMILARITY} FROM ({search(query='SELECT * FROM mnist_test WHERE label <> 8')}) ORDER BY {SIMILARITY} DESC LIMIT 4",
        f"SELECT upper(filename) AS name, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 4",
        f"SELECT my_image_search_model_simclr, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 4",
        f"SELECT filename, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC, filename LIMIT 4",
        f"SELECT * EXCLUDE (label) FROM ({search(query='SELECT image_path, label FROM mnist_test')}) ORDER BY {SIMILARITY} DESC LIMIT 4",
        f"SELECT * FROM ({search(query='SELECT * EXCLUDE (my_image_search_model_simclr) REPLACE (label * 10 AS label) FROM mnist_test')}) "
        f"ORDER BY {SIMILARITY} DESC LIMIT 4",
        f"SELECT image_path, {SIMILARITY} FROM ({search(query='SELECT * FROM mnist_test USING SAMPLE 50 PERCENT (bernoulli, 1)')}) "
        f"ORDER BY {SIMILARITY} DESC LIMIT 4",
    ],
)
def test_other_shapes_read_the_candidates_by_statement(tutorial_conn, monkeypatch, sql):
    monkeypatch.setattr(row_snapshots, "BUILD_SECONDS_PER_ROW", 0.0)
    served = []
    original = row_snapshots.rank
    monkeypatch.setattr(row_snapshots, "rank", lambda *args, **kwargs: served.append(1) or original(*args, **kwargs))
    tutorial_conn.execute(sql)
    assert tutorial_conn.last_plan.startswith("top-k")
    assert not served


def test_a_table_is_held_once_its_searches_have_spent_what_copying_it_costs(tutorial_conn, monkeypatch):
    monkeypatch.setattr(row_snapshots._held, "snapshots", {})
    monkeypatch.setattr(row_snapshots._held, "spent", {})
    sql = f"SELECT image_path, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 4"
    warehouse = tutorial_conn._runner.resources["warehouse"]

    def spent() -> float:
        return row_snapshots._held.spent[held_key(tutorial_conn)][1]

    def copying_costs(seconds: float) -> None:  # for the tutorial table's 200 rows
        monkeypatch.setattr(row_snapshots, "BUILD_SECONDS_PER_ROW", seconds / 200)

    with warehouse.held():  # one epoch for all the searches, however long the tests between take
        copying_costs(1e-9)
        first = tutorial_conn.execute(sql)  # by statement: nothing spent yet
        assert not held_snapshots(tutorial_conn) and spent() > 0
        tutorial_conn.execute(f"SELECT filename, {SIMILARITY} FROM ({search()}) WHERE label = 1 ORDER BY {SIMILARITY} DESC LIMIT 4")
        assert not held_snapshots(tutorial_conn)  # a shape no snapshot serves neither counts nor copies
        copying_costs(spent() * 1.01)
        tutorial_conn.execute(sql)
        assert not held_snapshots(tutorial_conn)
        copying_costs(spent() * (1 - 1e-9))  # what was spent, less float rounding: rows * (spent / rows) can exceed spent by an ulp
        second = tutorial_conn.execute(sql)
        assert held_snapshots(tutorial_conn)
    assert_same_rows(first, second)


@pytest.mark.parametrize("in_memory", [False, True])
def test_rows_without_an_embedding_rank_first_as_in_the_exhaustive_plan(scratch_conn, monkeypatch, in_memory):
    # Two rows the embedding asset has not seen yet: a new image, and a second row of an embedded
    # image. Their similarity is NULL (their own embedding column is), and DESC ranks NULLs first.
    scratch_conn.execute(
        f"INSERT INTO mnist_test (image_path, filename, label) VALUES ('{OTHER}', 'again.jpg', 1), ('{QUERY}', 'copy.jpg', 7)"
    )
    exhaustive = scratch_conn.execute(search())
    assert exhaustive.loc[exhaustive["filename"].isin(["again.jpg", "copy.jpg"]), SIMILARITY].isna().all()
    top = run(scratch_conn, f"SELECT filename, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 4", monkeypatch, in_memory=in_memory)
    assert sorted(top["filename"].head(2)) == ["again.jpg", "copy.jpg"]
    assert top[SIMILARITY].head(2).isna().all()
    assert top["filename"].iloc[2] == "923.jpg"
    last = run(
        scratch_conn, f"SELECT filename, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC NULLS LAST LIMIT 3", monkeypatch, in_memory=in_memory
    )
    assert last["filename"].iloc[0] == "923.jpg" and last[SIMILARITY].notna().all()


def test_a_snapshot_is_not_used_after_this_process_changes_the_table(scratch_conn, monkeypatch):
    monkeypatch.setattr(row_snapshots, "BUILD_SECONDS_PER_ROW", 0.0)
    sql = f"SELECT filename, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 3"
    assert scratch_conn.execute(sql)["filename"].iloc[0] == "923.jpg"
    scratch_conn.execute("UPDATE mnist_test SET filename = 'renamed.jpg' WHERE filename = '923.jpg'")
    assert scratch_conn.execute(sql)["filename"].iloc[0] == "renamed.jpg"


def test_a_snapshot_is_not_used_after_another_process_changes_the_table(scratch_conn, monkeypatch):
    monkeypatch.setattr(row_snapshots, "BUILD_SECONDS_PER_ROW", 0.0)
    sql = f"SELECT filename, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 3"
    assert scratch_conn.execute(sql)["filename"].iloc[0] == "923.jpg"
    assert held_snapshots(scratch_conn)
    release(scratch_conn.settings.home / "warehouse.duckdb")  # as after an idle second: other processes may write
    change = "UPDATE mnist_test SET filename = 'elsewhere.jpg' WHERE filename = '923.jpg'"
    code = f"import thanosql; thanosql.connect({str(scratch_conn.settings.home)!r}, progress=False).execute({change!r})"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
    assert scratch_conn.execute(sql)["filename"].iloc[0] == "elsewhere.jpg"


def test_rank_stops_only_when_no_candidate_left_out_could_make_the_top_rows():
    rows = pd.DataFrame({"image_path": ["a", "b", "c", "d"]})
    snapshot = row_snapshots.RowSnapshot.of(1, {}, rows, rows["image_path"], np.array([True, True, True, False]))
    ranked = row_snapshots.rank(snapshot, ["a", "b", "c"], [0.9, 0.8, 0.7], needed=2, nulls_first=True, exhausted=False)
    assert ranked.positions == [3, 0] and ranked.complete  # the row without an embedding first, then a (0.9 > 0.7)
    tie = row_snapshots.rank(snapshot, ["a", "b"], [0.9, 0.9], needed=2, nulls_first=False, exhausted=False)
    assert tie.positions == [0, 1] and not tie.complete  # an image left out could also score 0.9
    nulls = row_snapshots.rank(snapshot, ["a"], [0.9], needed=1, nulls_first=True, exhausted=False)
    assert nulls.positions == [3] and nulls.complete
    short = row_snapshots.rank(snapshot, ["a"], [0.9], needed=3, nulls_first=False, exhausted=False)
    assert short.positions == [0, 3] and not short.complete
    assert row_snapshots.rank(snapshot, ["a"], [0.9], needed=3, nulls_first=False, exhausted=True).complete


def test_a_snapshot_finds_every_row_of_a_key():
    rows = pd.DataFrame({"image_path": ["a", "b", "a", None, "c", "a"]})
    snapshot = row_snapshots.RowSnapshot.of(1, {}, rows, rows["image_path"], np.array([True, True, True, False, True, False]))
    assert [found.tolist() for found in snapshot.positions(["a", "c", "gone", "b"])] == [[0, 2], [4], [], [1]]
    assert snapshot.unembedded.tolist() == [3, 5]


def test_an_output_named_like_the_similarity_ranks_by_what_it_names(tutorial_conn):
    rows = tutorial_conn.execute(f"SELECT label AS {SIMILARITY}, filename FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 3")
    assert tutorial_conn.last_plan == "exhaustive"  # the label column, not a similarity: no top-k plan
    assert rows[SIMILARITY].tolist() == sorted(tutorial_conn.execute("SELECT label FROM mnist_test")["label"], reverse=True)[:3]


def test_a_union_of_one_tables_rows_is_searched_in_each_branch(tutorial_conn):
    union = "SELECT * FROM mnist_test WHERE label = 1 UNION ALL SELECT * FROM mnist_test WHERE label = 2"
    ranked = tutorial_conn.execute(search(query=union)).sort_values(SIMILARITY, ascending=False, kind="stable")
    top = tutorial_conn.execute(f"SELECT filename, {SIMILARITY} FROM ({search(query=union)}) ORDER BY {SIMILARITY} DESC LIMIT 5")
    assert tutorial_conn.last_plan.startswith("top-k")
    assert top[SIMILARITY].notna().all()
    assert top["filename"].tolist() == ranked["filename"].head(5).tolist()


def test_columns_are_typed_as_reading_just_the_rows_returned(scratch_conn, monkeypatch):
    # A NULL label far from the query: the whole table's label column is nullable, the top rows' is not.
    exhaustive = scratch_conn.execute(search()).sort_values(SIMILARITY)
    scratch_conn.execute(f"UPDATE mnist_test SET label = NULL WHERE filename = '{exhaustive['filename'].iloc[0]}'")
    sql = f"SELECT filename, label, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC LIMIT 4"
    assert_same_rows(run(scratch_conn, sql, monkeypatch, in_memory=True), run(scratch_conn, sql, monkeypatch, in_memory=False))


def test_a_row_without_an_image_key_is_never_a_candidate(scratch_conn, monkeypatch):
    scratch_conn.execute("UPDATE mnist_test SET image_path = NULL WHERE label = 3")  # their embeddings go too
    # NULLS LAST: under DESC the rows without a similarity come first, in no order of their own.
    sql = f"SELECT filename, label, {SIMILARITY} FROM ({search()}) ORDER BY {SIMILARITY} DESC NULLS LAST LIMIT 6"
    in_memory = run(scratch_conn, sql, monkeypatch, in_memory=True)
    assert_same_rows(in_memory, run(scratch_conn, sql, monkeypatch, in_memory=False))
    assert 3 not in in_memory["label"].tolist() and in_memory[SIMILARITY].notna().all()
