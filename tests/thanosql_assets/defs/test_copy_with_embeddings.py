"""COPY into a table CONVERT embedded in place: the table and its embedding columns change together,
and only the rows the CONVERT's query picks are embedded."""

from __future__ import annotations

import pandas as pd


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
