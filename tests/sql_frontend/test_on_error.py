"""OPTIONS (on_error='skip'): unusable images are left out and listed, aloud and in the asset's
metadata; without it the first bad file is named and nothing changes (tests/sql_frontend/test_bad_inputs.py)."""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from resources import Settings

BAD = {"5099.jpg": b"not a jpeg at all", "923.jpg": b""}  # a corrupt file and a 0-byte one


@pytest.fixture
def broken_test_images(scratch_conn):
    folder = scratch_conn.settings.home / "thanosql-dataset/mnist_data/test"
    for name, content in BAD.items():
        (folder / name).write_bytes(content)
    return scratch_conn


def _metadata(conn, key: list[str]) -> dict:
    instance = Settings.from_env(conn.settings.home).dagster_instance()
    return instance.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.metadata


def test_convert_skips_and_lists_unusable_images(broken_test_images, caplog):
    conn = broken_test_images
    with caplog.at_level(logging.INFO, logger="thanosql.progress"):
        result = conn.execute(
            "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_test', on_error='skip') AS SELECT * FROM mnist_test"
        )
    assert len(result) == 198 and not result["image_path"].str.endswith(tuple(BAD)).any()
    rows = conn.execute("SELECT image_path FROM mnist_test WHERE my_image_search_model_simclr IS NULL")
    assert sorted(path.rsplit("/", 1)[1] for path in rows["image_path"]) == sorted(BAD)
    said = "\n".join(record.getMessage() for record in caplog.records)
    assert "skipped 2 unusable images" in said and "5099.jpg" in said and "empty" in said
    embedding = [key for key in Settings.from_env(conn.settings.home).dagster_instance().get_asset_keys() if key.path[0] == "embedding"]
    metadata = _metadata(conn, list(embedding[0].path))
    assert metadata["skipped_images"].value == 2 and "5099.jpg" in metadata["skipped"].value


def test_build_model_skips_unusable_images_and_trains_on_the_rest(broken_test_images):
    conn = broken_test_images
    conn.execute(
        "BUILD MODEL skipping_model USING SimCLR OPTIONS (max_epochs=1, on_error='skip') AS SELECT * FROM mnist_test"
    )
    metadata = _metadata(conn, ["model", "skipping_model"])
    assert metadata["skipped_images"].value == 2
    from resources import build_resources

    client = build_resources(Settings.from_env(conn.settings.home))["model_registry"].client()
    held_out = client.get_run(metadata["mlflow_run_id"].value).data.metrics["holdout_images"]
    assert metadata["train_images"].value + held_out == 198  # every usable image, trained on or held out to measure quality


def test_create_table_from_a_folder_skips_unusable_images(broken_test_images):
    conn = broken_test_images
    conn.execute(
        "CREATE TABLE test_folder USING my_image_search_model OPTIONS (on_error='skip') FROM 'thanosql-dataset/mnist_data/test'"
    )
    rows = conn.execute("SELECT filename FROM test_folder WHERE my_image_search_model_simclr IS NULL")
    assert sorted(rows["filename"]) == sorted(BAD)


def test_on_error_takes_raise_or_skip(tutorial_conn):
    from thanosql.errors import OptionError

    with pytest.raises(OptionError, match="raise, skip"):
        tutorial_conn.execute("CONVERT USING my_image_search_model OPTIONS (on_error='ignore') AS SELECT * FROM mnist_test")
