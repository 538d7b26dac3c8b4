"""LIST MODEL, LIST TABLE, LIST THANOSQL MODEL and LIST THANOSQL DATASET: what the workspace holds
and what GET THANOSQL can fetch, as rows, alone and as subqueries, on the tutorial's workspace."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from resources import build_resources
from tests.sql_frontend.test_bad_input_catalogue import refused
from thanosql.errors import SQLError

MODEL_COLUMNS = ["name", "class_name", "last_updated_utc", "version", "trained_on", "quality"]


def test_list_model_names_each_model_with_its_class_version_data_and_quality(tutorial_conn):
    models = tutorial_conn.execute("LIST MODEL")
    assert list(models.columns) == MODEL_COLUMNS
    entry = build_resources(tutorial_conn.settings)["catalog"].get("model", "my_image_search_model")
    row = models.set_index("name").loc["my_image_search_model"]
    assert (row["class_name"], row["version"], row["trained_on"]) == ("SimCLR", int(entry.state["version"]), "mnist_train")
    assert row["quality"] == pytest.approx(entry.state["holdout_p_at_4"])
    assert row["last_updated_utc"].to_pydatetime() == entry.updated_at.replace(tzinfo=None)


def test_a_list_is_a_subquery_like_any_other(tutorial_conn):
    simclr = tutorial_conn.execute("SELECT name FROM (LIST MODEL) AS m WHERE class_name = 'SimCLR' AND version >= 1")
    assert list(simclr["name"]) == ["my_image_search_model"]
    assert tutorial_conn.execute("SELECT count(*) AS n FROM (LIST MODEL) AS m WHERE class_name = 'ResNet18'")["n"][0] == 0
    joined = tutorial_conn.execute(
        "SELECT t.table_name FROM (LIST TABLE) AS t JOIN (LIST MODEL) AS m ON t.embedding_columns = m.name || '_simclr'"
    )
    assert list(joined["table_name"]) == ["mnist_test"]


def test_a_list_is_a_common_table_expression_too(tutorial_conn):
    named = tutorial_conn.execute("WITH m AS (LIST MODEL) SELECT name FROM m WHERE version = 1")
    assert list(named["name"]) == ["my_image_search_model"]


def test_list_table_counts_rows_and_names_embedding_columns(tutorial_conn):
    tables = tutorial_conn.execute("LIST TABLE").set_index("table_name")
    assert list(tables.columns) == ["rows", "embedding_columns", "table_type"]
    assert set(tables["table_type"]) == {"BASE TABLE"}
    for name in ("mnist_train", "mnist_test"):
        assert tables.loc[name, "rows"] == tutorial_conn.execute(f"SELECT count(*) AS n FROM {name}")["n"][0]
    assert tables.loc["mnist_test", "embedding_columns"] == "my_image_search_model_simclr"
    assert tables.loc["mnist_train", "embedding_columns"] == ""


def test_list_table_lists_views_too(scratch_conn):
    scratch_conn.execute("CREATE VIEW sevens AS SELECT * FROM mnist_train WHERE label = 7")
    sevens = scratch_conn.execute("LIST TABLE").set_index("table_name").loc["sevens"]
    assert sevens.tolist() == [100, "", "VIEW"]
    scratch_conn.execute("CREATE TABLE nums AS SELECT 7 AS a, 2 AS b")
    scratch_conn.execute("CREATE VIEW ratios AS SELECT * FROM nums WHERE a / b > 0")
    scratch_conn.execute("INSERT INTO nums VALUES (1, 0)")  # the view's rows cannot be read any more
    listed = scratch_conn.execute("LIST TABLE").set_index("table_name")
    assert listed.loc["ratios", "table_type"] == "VIEW" and pd.isna(listed.loc["ratios", "rows"]) and listed.loc["nums", "rows"] == 2


def test_list_thanosql_dataset_says_what_can_be_had_offline(tutorial_conn):
    datasets = tutorial_conn.execute("LIST THANOSQL DATASET")
    assert datasets.values.tolist() == [["mnist_data", "image", True]]  # the tests' mirror holds its files


def test_list_thanosql_model_lists_torchvision_weights_and_the_mirror(tutorial_conn, tmp_path, monkeypatch):
    import thanosql

    mirrored = tmp_path / "mirror" / "tiny" / "colour-vit"
    mirrored.mkdir(parents=True)
    (mirrored / "config.json").write_text("{}")
    (mirrored / "SHA256SUMS").write_text(f"{hashlib.sha256(b'{}').hexdigest()}  config.json\n")
    monkeypatch.setenv("THANOSQL_MODEL_MIRROR", str(tmp_path / "mirror"))
    conn = thanosql.connect(tutorial_conn.settings.home)
    published = conn.execute("LIST THANOSQL MODEL").set_index("name")
    assert list(published.columns) == [*MODEL_COLUMNS[1:], "available_offline"]
    resnet = published.loc["torchvision/resnet18"]
    assert (resnet["class_name"], resnet["trained_on"], resnet["available_offline"]) == ("User_PyTorch", "ImageNet-1K", False)
    assert resnet["quality"] == pytest.approx(0.69758)  # torchvision's published top-1 accuracy
    assert published.loc["tiny/colour-vit", "class_name"] == "User_HuggingFace" and published.loc["tiny/colour-vit", "available_offline"]
    best = conn.execute("SELECT name FROM (LIST THANOSQL MODEL) AS m WHERE name LIKE 'torchvision/resnet%' ORDER BY quality DESC LIMIT 1")
    assert best["name"][0] == "torchvision/resnet152"


@pytest.mark.parametrize("sql", ["LIST MODELS", "list tables", "LIST THANOSQL DATASETS"])
def test_the_plural_reads_as_the_singular(tutorial_conn, sql):
    assert len(tutorial_conn.execute(sql)) >= 1


def test_an_unknown_list_says_what_can_be_listed(tutorial_conn):
    message = str(refused(tutorial_conn, "LIST COLLECTIONS", SQLError))
    assert "MODEL, TABLE, THANOSQL MODEL or THANOSQL DATASET" in message and "1:6" in message
