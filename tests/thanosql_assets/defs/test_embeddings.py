"""Embedding tables and their collections: folders (seed 002), incremental updates, atomic switches."""

from __future__ import annotations

import shutil
import threading

import dagster as dg
import numpy as np
import pandas as pd

from resources import Settings, build_resources

MODEL = "my_image_search_model"
COLUMN = f"{MODEL}_simclr"
SIMILARITY = f"{COLUMN}_similarity1"
QUERY = "thanosql-dataset/mnist_data/test/923.jpg"


def latest_metadata(conn, key: str) -> dict:
    instance = conn.settings.dagster_instance()
    event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def materialization_count(conn, key: str) -> int:
    instance = conn.settings.dagster_instance()
    return len(instance.fetch_materializations(dg.AssetKey.from_user_string(key), limit=100).records)


def column_types(conn, table: str) -> dict[str, str]:
    """The column schema the Dagster UI shows on the table's page (its latest materialization's)."""
    schema = latest_metadata(conn, f"table/{table}")["dagster/column_schema"]
    return {column.name: column.type for column in schema.columns}


def collection_state(conn, table: str) -> dict:
    resources = build_resources(Settings.from_env(conn.settings.home))
    return resources["catalog"].get("embedding", f"{table}/{MODEL}").state


def test_seed_002_create_table_using_a_folder_then_convert_as_a_subquery(scratch_conn):
    # Seed 002's statements, with this workspace's folder and model.
    scratch_conn.execute(
        f"""CREATE TABLE mnist_embds
USING {MODEL}
OPTIONS(
        path_type='folder',
        data_type='image',
        file_type=['.jpg']
        )
FROM 'thanosql-dataset/mnist_data/train/'"""
    )
    table = scratch_conn.execute("SELECT * FROM mnist_embds")
    assert list(table.columns) == ["image_path", "filename", COLUMN]
    assert len(table) == 1000 and table[COLUMN].notna().all()
    assert table["image_path"].str.startswith("thanosql-dataset/mnist_data/train/").all()
    assert latest_metadata(scratch_conn, "table/mnist_embds")["dagster/row_count"] == 1000
    assert column_types(scratch_conn, "mnist_embds") == {"image_path": "str", "filename": "str", COLUMN: "float32[128]"}
    assert latest_metadata(scratch_conn, f"collection/mnist_embds/{COLUMN}_vectors")["vector_count"] == 1000

    converted = scratch_conn.execute(
        f"""SELECT image_path, filename, {MODEL}_SimCLR FROM(
CONVERT USING {MODEL}
OPTIONS(table_name= "mnist_embds")
AS SELECT * FROM mnist_embds)"""
    )
    assert list(converted.columns) == ["image_path", "filename", COLUMN] and len(converted) == 1000
    np.testing.assert_allclose(np.stack(converted[COLUMN]), np.stack(table[COLUMN]), atol=1e-5)

    top = scratch_conn.execute(
        f"SELECT filename, {SIMILARITY} FROM (SEARCH IMAGE images='{QUERY}' USING {MODEL} AS SELECT * FROM mnist_embds) "
        f"ORDER BY {SIMILARITY} DESC LIMIT 4"
    )
    assert len(top) == 4 and top[SIMILARITY].is_monotonic_decreasing


def test_a_convert_named_by_with_is_made_then_read_under_its_name(scratch_conn):
    rows = scratch_conn.execute(
        f"WITH made AS (CONVERT USING {MODEL} OPTIONS (table_name='five') AS SELECT * FROM mnist_test ORDER BY image_path LIMIT 5) "
        f"SELECT count(*) AS n, count({COLUMN}) AS embedded FROM made"
    )
    assert rows.iloc[0].tolist() == [5, 5]
    assert len(scratch_conn.execute(f"SELECT * FROM five WHERE {COLUMN} IS NOT NULL")) == 5


def test_new_files_in_a_folder_embed_only_the_new_images(scratch_conn):
    home = scratch_conn.settings.home
    folder = home / "pictures"
    folder.mkdir()
    for name in ["923.jpg", "5099.jpg", "9239.jpg"]:
        shutil.copy(home / "thanosql-dataset/mnist_data/test" / name, folder / name)
    statement = f"CREATE TABLE pictures USING {MODEL} OPTIONS (file_type=['.jpg']{{}}) FROM 'pictures'"
    scratch_conn.execute(statement.format(""))
    assert latest_metadata(scratch_conn, f"embedding/pictures/{COLUMN}")["embedded_images"] == 3

    (folder / "more").mkdir()
    for name in ["2242.jpg", "3451.jpg"]:
        shutil.copy(home / "thanosql-dataset/mnist_data/test" / name, folder / "more" / name)
    (folder / "9239.jpg").unlink()
    scratch_conn.execute(statement.format(", overwrite=True"))
    metadata = latest_metadata(scratch_conn, f"embedding/pictures/{COLUMN}")
    assert (metadata["embedded_images"], metadata["reused_vectors"]) == (2, 2)
    rows = scratch_conn.execute("SELECT filename FROM pictures ORDER BY filename")
    assert rows["filename"].tolist() == ["2242.jpg", "3451.jpg", "5099.jpg", "923.jpg"]
    assert latest_metadata(scratch_conn, f"collection/pictures/{COLUMN}_vectors")["vector_count"] == 4


def test_copy_append_embeds_only_the_new_rows_in_the_same_run(scratch_conn):
    home = scratch_conn.settings.home
    before = scratch_conn.execute(f"SELECT image_path, {COLUMN} FROM mnist_test")
    extra = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv").head(25)
    extra.to_csv(home / "extra.csv", index=False)
    runs_before = len(scratch_conn.settings.dagster_instance().get_runs())

    assert scratch_conn.execute("COPY mnist_test OPTIONS (append=True) FROM 'extra.csv'") is None

    assert len(scratch_conn.settings.dagster_instance().get_runs()) == runs_before + 1
    metadata = latest_metadata(scratch_conn, f"embedding/mnist_test/{COLUMN}")
    assert (metadata["embedded_images"], metadata["reused_vectors"]) == (25, 200)
    assert latest_metadata(scratch_conn, f"collection/mnist_test/{COLUMN}_vectors")["vector_count"] == 225
    assert latest_metadata(scratch_conn, "table/mnist_test")["dagster/row_count"] == 225
    after = scratch_conn.execute(f"SELECT image_path, {COLUMN} FROM mnist_test")
    assert len(after) == 225 and after[COLUMN].notna().all()
    # Old rows keep their place and their vectors.
    assert after["image_path"].head(200).tolist() == before["image_path"].tolist()
    np.testing.assert_array_equal(np.stack(after[COLUMN].head(200)), np.stack(before[COLUMN]))
    searched = scratch_conn.execute(f"SEARCH IMAGE images='{QUERY}' USING {MODEL} AS SELECT * FROM mnist_test")
    assert len(searched) == 225 and searched[SIMILARITY].notna().all()


def test_reconvert_after_retraining_switches_atomically_under_concurrent_searches(scratch_conn):
    import thanosql

    search = f"SEARCH IMAGE images='{QUERY}' USING {MODEL} AS SELECT image_path, {COLUMN} FROM mnist_test"
    old = scratch_conn.execute(search)
    old_collection = collection_state(scratch_conn, "mnist_test")["collection"]
    scratch_conn.execute(
        f"BUILD MODEL {MODEL} USING SimCLR OPTIONS (max_epochs=1, seed=7, overwrite=True) AS SELECT * FROM mnist_train"
    )
    # Retraining alone changes nothing that SEARCH reads: the table still holds the old version's vectors.
    pd.testing.assert_frame_equal(scratch_conn.execute(search), old)

    reader = thanosql.connect(scratch_conn.settings.home, progress=False)
    seen, errors, done = [], [], threading.Event()

    def keep_searching():
        while not done.is_set():
            try:
                seen.append(reader.execute(search))
            except Exception as error:  # noqa: BLE001 - any failure of a concurrent search fails the test
                errors.append(error)
                return

    thread = threading.Thread(target=keep_searching)
    thread.start()
    try:
        scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test")
        for _ in range(3):  # switch a few more times, while searches run
            scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test")
    finally:
        done.set()
        thread.join()
    new = scratch_conn.execute(search)
    assert not errors, errors
    assert len(seen) >= 2
    assert not np.allclose(new[SIMILARITY], old[SIMILARITY], atol=1e-3), "the new model should score differently"
    for result in seen:
        # Each search saw one whole generation: the rows' vectors and their scores belong together.
        matches = [
            np.allclose(result[SIMILARITY], want[SIMILARITY], atol=1e-5)
            and np.allclose(np.stack(result[COLUMN]), np.stack(want[COLUMN]), atol=1e-6)
            for want in (old, new)
        ]
        assert any(matches)
    state = collection_state(scratch_conn, "mnist_test")
    assert state["collection"] != old_collection
    kept = sorted(p.name for p in (scratch_conn.settings.home / "vectors").iterdir() if p.name.startswith("mnist_test__"))
    assert kept == sorted([state["collection"], state["retired_collection"]]), "older collections are dropped"


def test_convert_embeds_with_the_batch_size_it_was_given(scratch_conn):
    before = scratch_conn.execute(f"SELECT image_path, {COLUMN} FROM mnist_test")
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='mnist_test', batch_size=7) AS SELECT * FROM mnist_test")
    assert latest_metadata(scratch_conn, f"embedding/mnist_test/{COLUMN}")["batch_size"] == 7
    catalog = build_resources(Settings.from_env(scratch_conn.settings.home))["catalog"]
    assert catalog.get("embedding", f"mnist_test/{MODEL}").spec["batch_size"] == 7
    after = scratch_conn.execute(f"SELECT image_path, {COLUMN} FROM mnist_test")
    # Batches of 7 embed the same images as batches of 256 (bf16 inference may round differently).
    np.testing.assert_allclose(np.stack(after[COLUMN]), np.stack(before[COLUMN]), atol=2e-3)


def test_convert_shows_the_new_column_in_the_tables_schema(tutorial_conn):
    # The tutorial's COPY made mnist_test; its CONVERT rewrote it with the embedding column.
    assert column_types(tutorial_conn, "mnist_test") == {
        "image_path": "str",
        "filename": "str",
        "label": "int64",
        COLUMN: "float32[128]",
    }
    assert latest_metadata(tutorial_conn, "table/mnist_test")["dagster/row_count"] == 200


def test_the_embedding_asset_is_described_by_its_statement_with_options(tutorial_conn):
    from thanosql_assets.defs.objects import build_definitions, catalog_specs

    resources = build_resources(Settings.from_env(tutorial_conn.settings.home))
    definitions = build_definitions(catalog_specs(resources["catalog"]), resources)
    key = dg.AssetKey(["embedding", "mnist_test", COLUMN])
    assert definitions.resolve_assets_def(key).descriptions_by_key[key] == (
        f"CONVERT USING {MODEL} OPTIONS (table_name='mnist_test', image_col='image_path') AS SELECT * FROM mnist_test"
    )


def test_a_reconvert_keeps_the_other_models_embedding_column_searchable(scratch_conn):
    scratch_conn.execute("BUILD MODEL second USING SimCLR OPTIONS (max_epochs=1, holdout=0) AS SELECT * FROM mnist_test")
    scratch_conn.execute("CONVERT USING second AS SELECT * FROM mnist_test")
    search = f"SELECT image_path, second_simclr_similarity1 AS s FROM (SEARCH IMAGE images='{QUERY}' USING second AS SELECT * FROM mnist_test)"
    before = scratch_conn.execute(search)

    scratch_conn.execute(f"CONVERT USING {MODEL} AS SELECT * FROM mnist_test")  # rewrites the table with the other column

    after = scratch_conn.execute(search)  # the other column kept its fixed size (FLOAT[n]), which SEARCH computes with
    pd.testing.assert_frame_equal(after, before)
    assert scratch_conn.execute("SELECT typeof(second_simclr) AS t FROM mnist_test LIMIT 1")["t"].iloc[0].endswith("[128]")
