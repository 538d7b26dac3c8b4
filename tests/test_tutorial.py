"""The seed 001 tutorial, verbatim, end to end on embedded defaults (the product's main job)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from resources import Settings, build_resources
from tests.seeds import seed_cells


def test_the_seed_has_the_eight_statements_of_the_tutorial():
    cells = seed_cells("001")
    assert [cell.split()[0] for cell in cells] == ["GET", "COPY", "COPY", "SELECT", "BUILD", "CONVERT", "SEARCH", "PRINT"]


def test_statements_without_rows_return_none(tutorial_results):
    get, copy_train, copy_test, _, build, *_ = tutorial_results
    assert get is None and copy_train is None and copy_test is None and build is None


def test_select_limit_5_shows_the_train_table(tutorial_results):
    rows = tutorial_results[3]
    assert list(rows.columns) == ["image_path", "filename", "label"]
    assert len(rows) == 5
    # The first rows the tutorial shows: 6782.jpg and 1810.jpg, both 5s.
    assert rows["image_path"].tolist()[:2] == [
        "thanosql-dataset/mnist_data/train/6782.jpg",
        "thanosql-dataset/mnist_data/train/1810.jpg",
    ]
    assert rows["label"].tolist()[:2] == [5, 5]


def test_convert_returns_mnist_test_with_the_embedding_column(tutorial_results):
    rows = tutorial_results[5]
    assert list(rows.columns) == ["image_path", "filename", "label", "my_image_search_model_simclr"]
    assert len(rows) == 200
    vectors = np.stack(rows["my_image_search_model_simclr"].to_numpy())
    assert vectors.shape == (200, 128) and np.isfinite(vectors).all()
    assert rows["filename"].tolist()[:5] == ["5099.jpg", "9239.jpg", "2242.jpg", "3451.jpg", "2631.jpg"]


def test_search_scores_every_row_of_mnist_test(tutorial_results):
    rows = tutorial_results[6]
    assert list(rows.columns) == [
        "image_path",
        "filename",
        "label",
        "my_image_search_model_simclr",
        "my_image_search_model_simclr_similarity1",
    ]
    assert len(rows) == 200
    similarity = rows["my_image_search_model_simclr_similarity1"]
    assert similarity.notna().all() and similarity.between(-1.0001, 1.0001).all()
    # Cosine similarity, recomputed from the stored embeddings.
    vectors = np.stack(rows["my_image_search_model_simclr"].to_numpy())
    query = vectors[rows["filename"].tolist().index("923.jpg")]
    expected = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    np.testing.assert_allclose(similarity.to_numpy(), expected, atol=1e-4)


def test_print_image_shows_the_four_most_similar_with_the_query_first(tutorial_results, tutorial_home):
    rows = tutorial_results[7]
    assert list(rows.columns) == ["image_path", "my_image_search_model_simclr_similarity1"]
    assert len(rows) == 4
    assert rows["image_path"].iloc[0] == "thanosql-dataset/mnist_data/test/923.jpg"
    assert rows["my_image_search_model_simclr_similarity1"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    assert rows["my_image_search_model_simclr_similarity1"].is_monotonic_decreasing
    printed = rows.attrs["thanosql.print_image"]
    assert printed["paths"][0] == str(tutorial_home / "thanosql-dataset/mnist_data/test/923.jpg")


def test_dagster_holds_each_asset_with_lineage(tutorial_home, monkeypatch):
    import dagster as dg

    from thanosql_assets.definitions import defs

    monkeypatch.setenv("THANOSQL_HOME", str(tutorial_home))
    graph = defs().resolve_asset_graph()
    expected_parents = {
        "dataset/mnist_data": set(),
        "table/mnist_train": {"dataset/mnist_data"},
        "table/mnist_test": {"dataset/mnist_data"},
        "model/my_image_search_model": {"table/mnist_train"},
        "embedding/mnist_test/my_image_search_model_simclr": {"model/my_image_search_model", "table/mnist_test"},
        "collection/mnist_test/my_image_search_model_simclr_vectors": {"embedding/mnist_test/my_image_search_model_simclr"},
    }
    keys = {key.to_user_string(): key for key in graph.get_all_asset_keys()}
    assert set(keys) == set(expected_parents)
    instance = Settings.from_env(tutorial_home).dagster_instance()
    for name, parents in expected_parents.items():
        assert {p.to_user_string() for p in graph.get(keys[name]).parent_keys} == parents, name
        event = instance.get_latest_materialization_event(keys[name])
        assert event is not None, f"{name} was never materialized"

    def metadata(name):
        return instance.get_latest_materialization_event(dg.AssetKey.from_user_string(name)).asset_materialization.metadata

    assert metadata("table/mnist_train")["dagster/row_count"].value == 1000
    assert metadata("table/mnist_test")["dagster/row_count"].value == 200
    model = metadata("model/my_image_search_model")
    assert model["epochs"].value == 1 and np.isfinite(model["final_loss"].value)
    assert len(model["mlflow_run_id"].value) == 32
    assert metadata("collection/mnist_test/my_image_search_model_simclr_vectors")["vector_count"].value == 200


def test_search_and_print_read_the_assets_without_rematerializing(tutorial_home):
    import dagster as dg

    instance = Settings.from_env(tutorial_home).dagster_instance()
    statements = [run.tags.get("thanosql/statement") for run in instance.get_runs()]
    # One run per statement that creates something; SEARCH and PRINT ran none.
    assert sorted(statement.split()[0] for statement in statements[-5:]) == ["BUILD", "CONVERT", "COPY", "COPY", "GET"]
    # table/mnist_test twice: COPY made it, CONVERT rewrote it with the embedding column.
    expected = {"model/my_image_search_model": 1, "table/mnist_test": 2, "collection/mnist_test/my_image_search_model_simclr_vectors": 1}
    for key, count in expected.items():
        records = instance.fetch_materializations(dg.AssetKey.from_user_string(key), limit=10).records
        assert len(records) == count, key


def test_the_search_job_runs_print_from_dagster_with_the_same_rows(tutorial_home, tutorial_results, monkeypatch):
    import dagster as dg

    from thanosql_assets.definitions import defs

    monkeypatch.setenv("THANOSQL_HOME", str(tutorial_home))
    job = defs().resolve_job_def("search")
    statement = seed_cells("001")[7]
    result = job.execute_in_process(
        run_config={"ops": {"run_statement": {"config": {"sql": statement}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    rows = result.output_for_node("run_statement")
    pd.testing.assert_frame_equal(rows, tutorial_results[7])
    materializations = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert materializations == []


def test_model_is_registered_in_mlflow_with_the_serving_alias(tutorial_home):
    resources = build_resources(Settings.from_env(tutorial_home))
    registry = resources["model_registry"]
    assert registry.serving_version("my_image_search_model") == "1"
    embedder = registry.load("my_image_search_model", "1")
    assert embedder.embedding_dim == 128
    catalog_state = resources["catalog"].get("model", "my_image_search_model").state
    run = registry.client().get_run(catalog_state["run_id"])
    assert run.data.params["max_epochs"] == "1"
    assert "loss" in run.data.metrics


def test_tables_live_in_duckdb(tutorial_home):
    warehouse = build_resources(Settings.from_env(tutorial_home))["warehouse"]
    assert {"mnist_train", "mnist_test"} <= set(warehouse.tables())
    assert warehouse.columns("mnist_test") == ["image_path", "filename", "label", "my_image_search_model_simclr"]
    counts = warehouse.query("SELECT label, count(*) AS n FROM mnist_train GROUP BY label ORDER BY label")
    assert counts["n"].tolist() == [100] * 10
    assert isinstance(counts, pd.DataFrame)
