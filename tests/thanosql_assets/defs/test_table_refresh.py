"""A table a CONVERT made, made again by that CONVERT's op (the UI, automation, retraining), keeps
what reads it true as a COPY does (`defs.table_refresh`): its own in-place embedding columns and
the tables made from it change with it, in one transaction; new rows a CONVERT's query no
longer fits change nothing."""

from __future__ import annotations

import numpy as np
import pytest

from resources import Settings, build_resources
from tests.workspace_state import snapshot
from thanosql.errors import ObjectExistsError, QueryError
from thanosql_assets.defs.materialize import MaterializationRequest, materialize
from thanosql_assets.defs.specs import spec_from_dict, table_key

MODEL = "my_image_search_model"
COLUMN = f"{MODEL}_simclr"


def resources_of(conn) -> dict:
    return build_resources(Settings.from_env(conn.settings.home))


def _vectors(conn, table: str, column: str) -> dict[str, np.ndarray]:
    rows = conn.execute(f"SELECT image_path, {column} FROM {table}")
    return dict(zip(rows["image_path"], rows[column]))


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_made_table_refreshed_by_its_convert_keeps_its_own_columns_and_brings_along_the_tables_made_from_it(scratch_conn, partitions):
    scratch_conn.execute("BUILD MODEL second USING SimCLR OPTIONS (max_epochs=1, holdout=0) AS SELECT * FROM mnist_test")
    scratch_conn.execute("COPY source FROM 'thanosql-dataset/mnist_data/mnist_test.csv'")
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='split', partitions={partitions}) AS SELECT * FROM source WHERE label <> 3")
    scratch_conn.execute("CONVERT USING second AS SELECT * FROM split")  # in place on the made table
    scratch_conn.execute("CONVERT USING second OPTIONS (table_name='fives') AS SELECT image_path, label FROM split WHERE label = 5")
    split_before, fives_before = _vectors(scratch_conn, "split", "second_simclr"), _vectors(scratch_conn, "fives", "second_simclr")
    added = scratch_conn.execute("SELECT image_path FROM mnist_train WHERE label = 5 LIMIT 2")["image_path"].tolist()
    scratch_conn.execute(f"INSERT INTO source (image_path, label) VALUES ('{added[0]}', 5), ('{added[1]}', 5)")

    # What the Dagster UI's Materialize, eager automation or a retraining schedule runs: split's CONVERT again.
    spec = spec_from_dict("embedding", resources_of(scratch_conn)["catalog"].get("embedding", f"split/{MODEL}").spec)
    materialize(
        MaterializationRequest((), (spec.asset_key, spec.collection_key)), resources_of(scratch_conn), scratch_conn.settings.dagster_instance(), "refresh"
    )

    split_after, fives_after = _vectors(scratch_conn, "split", "second_simclr"), _vectors(scratch_conn, "fives", "second_simclr")
    assert split_after.keys() == split_before.keys() | set(added) and fives_after.keys() == fives_before.keys() | set(added)
    for before, after in ((split_before, split_after), (fives_before, fives_after)):
        for image, vector in before.items():
            np.testing.assert_array_equal(after[image], vector)  # kept, not embedded again
        assert all(isinstance(after[image], np.ndarray) for image in added)
    assert scratch_conn.execute(f"SELECT count({COLUMN}) AS n FROM split")["n"].iloc[0] == len(split_after)
    for table in ("split", "fives"):
        searched = scratch_conn.execute(f"SEARCH IMAGE images='{added[0]}' USING second AS SELECT * FROM {table}")
        assert searched.sort_values("second_simclr_similarity1").iloc[-1]["image_path"] == added[0]
    # The UI shows fives changed in the run that switched split.
    instance = scratch_conn.settings.dagster_instance()
    assert len({instance.get_latest_materialization_event(table_key(table)).run_id for table in ("split", "fives")}) == 1


def test_new_rows_without_the_image_column_an_embedding_reads_are_refused_and_change_nothing(scratch_conn):
    home = scratch_conn.settings.home
    (home / "labels.csv").write_text("label\n1\n")  # mnist_test has an embedding column (the tutorial's CONVERT)
    unchanged = snapshot(home)

    with pytest.raises(QueryError, match="gives no column 'image_path'") as raised:
        scratch_conn.execute("COPY mnist_test OPTIONS (overwrite=True) FROM 'labels.csv'")

    assert f"column {COLUMN} of mnist_test" in raised.value.message and "DELETE MODEL" in raised.value.hint
    assert snapshot(home) == unchanged


def test_the_convert_that_made_a_table_makes_it_again_and_another_model_may_not(scratch_conn):
    scratch_conn.execute("BUILD MODEL second USING SimCLR OPTIONS (max_epochs=1, holdout=0) AS SELECT * FROM mnist_test")
    scratch_conn.execute("COPY source FROM 'thanosql-dataset/mnist_data/mnist_test.csv'")
    make_ones = f"CONVERT USING {MODEL} OPTIONS (table_name='ones') AS SELECT image_path, label FROM source WHERE label = 1"
    scratch_conn.execute(make_ones)
    scratch_conn.execute("CONVERT USING second AS SELECT * FROM ones")  # in place on the made table
    scratch_conn.execute("INSERT INTO source (image_path, filename, label) SELECT image_path, filename, label FROM mnist_train WHERE label = 1 LIMIT 3")

    scratch_conn.execute(make_ones)  # again: the inserted rows come in, embedded by both models

    counts = scratch_conn.execute(f"SELECT count(*) AS n, count({COLUMN}) AS first, count(second_simclr) AS second FROM ones")
    ones = scratch_conn.execute("SELECT count(*) AS n FROM source WHERE label = 1")["n"].iloc[0]
    assert counts.iloc[0].tolist() == [ones] * 3
    with pytest.raises(ObjectExistsError, match="CONVERT would replace table 'ones'"):
        scratch_conn.execute("CONVERT USING second OPTIONS (table_name='ones') AS SELECT image_path, label FROM source WHERE label = 2")
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='from_ones') AS SELECT image_path, label FROM ones")
    with pytest.raises(ObjectExistsError, match="each would read the other"):
        scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='ones') AS SELECT image_path, label FROM from_ones")


def test_a_convert_in_place_says_how_many_rows_it_left_without_an_embedding(scratch_conn, caplog):
    with caplog.at_level("INFO", logger="thanosql.progress"):
        scratch_conn.execute(f"CONVERT USING {MODEL} AS SELECT * FROM mnist_test WHERE label = 3")
    threes = scratch_conn.execute("SELECT count(*) AS n FROM mnist_test WHERE label = 3")["n"].iloc[0]
    assert f"column {COLUMN} set on 200 rows ({200 - threes} without an embedding: NULL)" in caplog.text
