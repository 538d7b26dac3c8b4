"""COPY into a table that embeddings read: CONVERT's in place, and the tables CONVERT made from it
change with it, in its run and one transaction; only the rows the CONVERT's query picks are embedded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.workspace_state import snapshot, write_row_of_a_non_image
from thanosql.errors import DataError

MODEL = "my_image_search_model"
COLUMN = f"{MODEL}_simclr"


def assert_a_copy_of_a_non_image_into_source_changes_nothing(conn) -> None:
    """A file that is no image: the COPY fails, and no table, collection, model or asset changed."""
    home = conn.settings.home
    write_row_of_a_non_image(home, "bad.csv")
    unchanged = snapshot(home)
    with pytest.raises(DataError, match="broken.jpg"):
        conn.execute("COPY source OPTIONS (append=True) FROM 'bad.csv'")
    assert snapshot(home) == unchanged


def test_copy_embeds_only_the_rows_the_convert_query_picks(scratch_conn):
    home = scratch_conn.settings.home
    scratch_conn.execute(
        "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test WHERE label = 3"
    )
    train = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv")
    train.iloc[:40].to_csv(home / "more.csv", index=False)
    scratch_conn.execute("COPY mnist_test OPTIONS (append=True) FROM 'more.csv'")
    rows = scratch_conn.execute(
        "SELECT label = 3 AS three, count(*) AS n, count(my_image_search_model_simclr) AS embedded FROM mnist_test GROUP BY 1 ORDER BY 1"
    )
    threes = int((train.iloc[:40]["label"] == 3).sum()) + 20
    assert rows.to_dict("records") == [{"three": False, "n": 240 - threes, "embedded": 0}, {"three": True, "n": threes, "embedded": threes}]


@pytest.mark.parametrize("partitions", [1, 2])
def test_a_copy_brings_the_tables_convert_made_from_it_along_in_one_transaction(scratch_conn, partitions):
    home = scratch_conn.settings.home
    scratch_conn.execute("COPY source FROM 'thanosql-dataset/mnist_data/mnist_test.csv'")
    scratch_conn.execute(
        f"CONVERT USING {MODEL} OPTIONS (table_name='split', partitions={partitions}) AS SELECT * FROM source WHERE label <> 3"
    )
    before = scratch_conn.execute(f"SELECT image_path, {COLUMN} FROM split")
    extra = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv").head(25)
    extra.to_csv(home / "extra.csv", index=False)
    runs_before = len(scratch_conn.settings.dagster_instance().get_runs())

    scratch_conn.execute("COPY source OPTIONS (append=True) FROM 'extra.csv'")

    assert len(scratch_conn.settings.dagster_instance().get_runs()) == runs_before + 1  # the COPY's run, no partition runs
    new = int((extra["label"] != 3).sum())
    after = scratch_conn.execute(f"SELECT image_path, {COLUMN} FROM split")
    assert len(after) == len(before) + new and after[COLUMN].notna().all()
    old = dict(zip(after["image_path"], after[COLUMN]))
    for image, vector in zip(before["image_path"], before[COLUMN]):
        np.testing.assert_array_equal(old[image], vector)  # reused, not embedded again
    searched = scratch_conn.execute(f"SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING {MODEL} AS SELECT * FROM split")
    assert len(searched) == len(after) and searched[f"{COLUMN}_similarity1"].notna().all()

    assert_a_copy_of_a_non_image_into_source_changes_nothing(scratch_conn)


def test_a_copy_brings_along_tables_made_from_tables_made_from_it_with_their_own_columns(scratch_conn):
    home = scratch_conn.settings.home
    scratch_conn.execute("BUILD MODEL second USING SimCLR OPTIONS (max_epochs=1, holdout=0) AS SELECT * FROM mnist_test")
    scratch_conn.execute("COPY source FROM 'thanosql-dataset/mnist_data/mnist_test.csv'")
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='split') AS SELECT * FROM source WHERE label <> 3")
    scratch_conn.execute("CONVERT USING second AS SELECT * FROM split")  # in place on the made table
    scratch_conn.execute("CONVERT USING second OPTIONS (table_name='fives') AS SELECT image_path, label FROM split WHERE label = 5")
    extra = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv").head(40)
    extra.to_csv(home / "extra.csv", index=False)

    scratch_conn.execute("COPY source OPTIONS (append=True) FROM 'extra.csv'")

    source = scratch_conn.execute("SELECT count(*) FILTER (WHERE label <> 3) AS split, count(*) FILTER (WHERE label = 5) AS fives FROM source")
    labels = pd.concat([pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_test.csv"), extra])["label"]
    assert source.iloc[0].tolist() == [labels.ne(3).sum(), labels.eq(5).sum()]
    split = scratch_conn.execute(f"SELECT count(*) AS n, count({COLUMN}) AS first, count(second_simclr) AS second FROM split")
    assert split.iloc[0].tolist() == [source["split"].iloc[0]] * 3
    fives = scratch_conn.execute("SELECT count(*) AS n, count(second_simclr) AS embedded FROM fives")
    assert fives.iloc[0].tolist() == [source["fives"].iloc[0]] * 2
    searched = scratch_conn.execute("SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING second AS SELECT * FROM fives")
    assert searched["second_simclr_similarity1"].notna().all()

    assert_a_copy_of_a_non_image_into_source_changes_nothing(scratch_conn)  # label 0: of the tables below source, split picks it


def test_a_copy_into_a_table_another_tables_convert_joins_refreshes_that_tables_column_in_place(scratch_conn):
    home = scratch_conn.settings.home
    (home / "keep.csv").write_text("label\n1\n")
    scratch_conn.execute("COPY keep FROM 'keep.csv'")
    scratch_conn.execute(
        f"CONVERT USING {MODEL} OPTIONS (table_name='mnist_test') AS SELECT mnist_test.* FROM mnist_test JOIN keep USING (label)"
    )
    columns = list(scratch_conn.execute("SELECT * FROM mnist_test LIMIT 0").columns)
    (home / "more.csv").write_text("label\n7\n")

    scratch_conn.execute("COPY keep OPTIONS (append=True) FROM 'more.csv'")

    # mnist_test keeps its rows and columns; the rows of the newly kept label are embedded too.
    assert list(scratch_conn.execute("SELECT * FROM mnist_test LIMIT 0").columns) == columns
    rows = scratch_conn.execute(f"SELECT label IN (1, 7) AS kept, count(*) AS n, count({COLUMN}) AS embedded FROM mnist_test GROUP BY 1 ORDER BY 1")
    assert rows["n"].sum() == 200
    assert rows.set_index("kept")["embedded"].to_dict() == {False: 0, True: int(rows.set_index("kept")["n"][True])}


def test_a_table_convert_made_through_a_view_follows_the_table_the_view_reads(scratch_conn):
    home = scratch_conn.settings.home
    test = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_test.csv")
    test.iloc[:100].to_csv(home / "first.csv", index=False)
    test.iloc[100:].to_csv(home / "second.csv", index=False)
    scratch_conn.execute("COPY source FROM 'first.csv'")
    scratch_conn.execute("CREATE VIEW ones AS SELECT image_path, label FROM source WHERE label = 1")
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='embedded_ones') AS SELECT * FROM ones")

    scratch_conn.execute("COPY source OPTIONS (overwrite=True) FROM 'second.csv'")

    made = scratch_conn.execute(f"SELECT image_path, {COLUMN} FROM embedded_ones ORDER BY image_path")
    assert made["image_path"].tolist() == sorted(test.iloc[100:].query("label == 1")["image_path"]) and made[COLUMN].notna().all()
    scratch_conn.execute("DROP VIEW ones")  # the embedding reads source itself, not the view


def test_a_view_with_a_list_of_columns_is_read_by_its_names(scratch_conn):
    scratch_conn.execute("CREATE VIEW pictures (picture, digit) AS SELECT image_path, label FROM mnist_test WHERE label = 7")
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='sevens', image_col='picture') AS SELECT * FROM pictures")
    made = scratch_conn.execute("SELECT * FROM sevens")
    assert list(made.columns) == ["picture", "digit", COLUMN] and set(made["digit"]) == {7} and made[COLUMN].notna().all()
