"""SEARCH as a query operator: top-k pushdown, several query images, query images of any kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

QUERY = "thanosql-dataset/mnist_data/test/923.jpg"
OTHER = "thanosql-dataset/mnist_data/test/5099.jpg"
SIMILARITY = "my_image_search_model_simclr_similarity1"


def search(images: str) -> str:
    return f"SEARCH IMAGE images={images} USING my_image_search_model AS SELECT * FROM mnist_test"


def exhaustive(conn, images: str = f"'{QUERY}'") -> pd.DataFrame:
    rows = conn.execute(search(images))
    assert conn.last_plan == "exhaustive"
    return rows


@pytest.mark.parametrize(
    ("outer", "expected"),
    [
        # The tutorial's PRINT query shape.
        ("SELECT image_path, {sim} FROM ({search}) ORDER BY {sim} DESC LIMIT 4", lambda r: r.head(4)),
        ("SELECT filename, label, {sim} FROM ({search}) ORDER BY {sim} DESC LIMIT 10 OFFSET 5", lambda r: r.iloc[5:15]),
        # A filter that keeps few rows: the operator has to ask Qdrant for more candidates.
        ("SELECT image_path, {sim} FROM ({search}) WHERE label = 3 ORDER BY {sim} DESC LIMIT 6", lambda r: r[r.label == 3].head(6)),
        ("SELECT s.image_path, s.{sim} FROM ({search}) AS s WHERE s.label <> 8 ORDER BY s.{sim} DESC LIMIT 3", lambda r: r[r.label != 8].head(3)),
        # More than the table holds.
        ("SELECT image_path, {sim} FROM ({search}) ORDER BY {sim} DESC LIMIT 500", lambda r: r),
    ],
)
def test_top_k_pushdown_gives_the_exhaustive_plans_rows(tutorial_conn, outer, expected):
    ranked = exhaustive(tutorial_conn).sort_values(SIMILARITY, ascending=False, kind="stable")
    rows = tutorial_conn.execute(outer.format(sim=SIMILARITY, search=search(f"'{QUERY}'")))
    assert tutorial_conn.last_plan.startswith("top-k"), tutorial_conn.last_plan
    want = expected(ranked)
    key = "image_path" if "image_path" in rows.columns else "filename"
    assert rows[key].tolist() == want[key].tolist()
    np.testing.assert_allclose(rows[SIMILARITY].to_numpy(), want[SIMILARITY].to_numpy(), atol=1e-5)


def test_top_k_reads_a_fraction_of_the_collection(tutorial_conn):
    sql = f"SELECT image_path, {SIMILARITY} FROM ({search(repr(QUERY))}) ORDER BY {SIMILARITY} DESC LIMIT 4"
    tutorial_conn.execute(sql)
    assert tutorial_conn.last_plan.startswith("top-k (32 of 200 images"), tutorial_conn.last_plan
    tutorial_conn.execute(sql)  # by now this process holds the small table's rows (row_snapshots), and the plan says so
    assert tutorial_conn.last_plan == "top-k (32 of 200 images), rows held in memory"


def test_a_search_named_by_with_gives_the_subquerys_rows(tutorial_conn):
    ranked = exhaustive(tutorial_conn).sort_values(SIMILARITY, ascending=False, kind="stable").head(4)
    rows = tutorial_conn.execute(
        f"WITH hits AS ({search(repr(QUERY))}) SELECT image_path, {SIMILARITY} FROM hits ORDER BY {SIMILARITY} DESC LIMIT 4"
    )
    assert rows["image_path"].tolist() == ranked["image_path"].tolist()
    np.testing.assert_allclose(rows[SIMILARITY].to_numpy(), ranked[SIMILARITY].to_numpy(), atol=1e-5)


def test_without_order_by_and_limit_search_scores_every_row(tutorial_conn):
    rows = tutorial_conn.execute(f"SELECT image_path, {SIMILARITY} FROM ({search(repr(QUERY))}) WHERE label = 8")
    assert tutorial_conn.last_plan == "exhaustive"
    assert len(rows) == 20 and rows[SIMILARITY].notna().all()
    ascending = tutorial_conn.execute(f"SELECT image_path, {SIMILARITY} FROM ({search(repr(QUERY))}) ORDER BY {SIMILARITY} LIMIT 4")
    assert tutorial_conn.last_plan == "exhaustive"
    assert ascending[SIMILARITY].is_monotonic_increasing


def test_several_query_images_give_one_similarity_column_each(tutorial_conn):
    both = exhaustive(tutorial_conn, f"['{QUERY}', '{OTHER}']")
    assert list(both.columns)[-2:] == [SIMILARITY, "my_image_search_model_simclr_similarity2"]
    first, second = exhaustive(tutorial_conn, f"'{QUERY}'"), exhaustive(tutorial_conn, f"'{OTHER}'")
    np.testing.assert_allclose(both[SIMILARITY], first[SIMILARITY], atol=1e-6)
    np.testing.assert_allclose(both["my_image_search_model_simclr_similarity2"], second[SIMILARITY], atol=1e-6)

    # Ranking by the second image pushes down on it, and still carries the first image's scores.
    top = tutorial_conn.execute(
        f"SELECT filename, {SIMILARITY}, my_image_search_model_simclr_similarity2 "
        f"FROM ({search(repr([QUERY, OTHER]))}) ORDER BY my_image_search_model_simclr_similarity2 DESC LIMIT 4"
    )
    assert tutorial_conn.last_plan.startswith("top-k")
    assert top["filename"].iloc[0] == "5099.jpg"
    want = both.sort_values("my_image_search_model_simclr_similarity2", ascending=False).head(4)
    assert top["filename"].tolist() == want["filename"].tolist()
    np.testing.assert_allclose(top[SIMILARITY], want[SIMILARITY], atol=1e-5)


def test_query_images_of_any_size_and_mode_get_the_training_preprocessing(tutorial_conn, tmp_path):
    home = tutorial_conn.settings.home
    digit = Image.open(home / QUERY)
    variants = {
        "big_rgb.png": digit.convert("RGB").resize((112, 112), Image.BILINEAR),
        "rgba.png": digit.convert("RGBA"),
        "gray.bmp": digit.convert("L"),
    }
    for name, image in variants.items():
        path = tmp_path / name
        image.save(path)
        top = tutorial_conn.execute(
            f"SELECT filename, {SIMILARITY} FROM ({search(repr(str(path)))}) ORDER BY {SIMILARITY} DESC LIMIT 1"
        )
        assert top["filename"].iloc[0] == "923.jpg", name
        assert top[SIMILARITY].iloc[0] > 0.9, name


def test_similarity_is_cosine_between_the_stored_embeddings(tutorial_conn):
    rows = exhaustive(tutorial_conn)
    vectors = np.stack(rows["my_image_search_model_simclr"].to_numpy())
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = vectors[rows["image_path"].tolist().index(QUERY)]
    np.testing.assert_allclose(rows[SIMILARITY], vectors @ query, atol=1e-5)
