"""The ThanoSQL dialect parses every statement of the seeds as written, and round-trips."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from sql_frontend.language.dialect import (
    BuildModel,
    ConvertUsing,
    CopyFrom,
    CreateTableUsing,
    GetDataset,
    PrintMedia,
    SearchMedia,
    ThanoSQL,
    option_value,
)
from sql_frontend.language.parser import parse_script, parse_statement
from tests.seeds import seed_cells
from thanosql.errors import ThanoSQLSyntaxError

SEED_STATEMENTS = [(seed, cell) for seed in ("001", "002", "003") for cell in seed_cells(seed)]


def test_the_seeds_hold_the_expected_number_of_statements():
    assert (len(seed_cells("001")), len(seed_cells("002")), len(seed_cells("003"))) == (8, 7, 7)


@pytest.mark.parametrize(("seed", "sql"), SEED_STATEMENTS, ids=[f"{s}-{i}" for i, (s, _) in enumerate(SEED_STATEMENTS)])
def test_every_seed_statement_parses_and_round_trips(seed, sql):
    statement = parse_statement(sql)
    generated = statement.expression.sql(dialect=ThanoSQL)
    assert sqlglot.parse_one(generated, read=ThanoSQL) == statement.expression
    # Generating again from the re-parsed tree gives the same text: a fixed point.
    assert sqlglot.parse_one(generated, read=ThanoSQL).sql(dialect=ThanoSQL) == generated


def test_seed_001_statement_types():
    kinds = [type(parse_statement(cell).expression) for cell in seed_cells("001")]
    assert kinds == [GetDataset, CopyFrom, CopyFrom, exp.Select, BuildModel, ConvertUsing, SearchMedia, PrintMedia]


def test_build_model_pieces():
    node = parse_statement(seed_cells("001")[4]).expression
    assert node.this.this == "my_image_search_model"
    assert node.args["algorithm"].this == "SimCLR"
    options = {e.this.this: option_value(e.args["value"]) for e in node.args["options"].entries()}
    # Double-quoted words in OPTIONS are strings, as the tutorials write them.
    assert options == {"image_col": "image_path", "max_epochs": 1, "overwrite": True}
    assert node.args["query"].sql() == "SELECT * FROM mnist_train"


def test_copy_takes_a_double_quoted_path():
    node = parse_statement(seed_cells("001")[1]).expression
    assert node.this.this == "mnist_train"
    assert node.args["source"].this == "thanosql-dataset/mnist_data/mnist_train.csv"


def test_print_wraps_a_query_over_a_search_subquery():
    node = parse_statement(seed_cells("001")[7]).expression
    query = node.args["query"]
    assert isinstance(query, exp.Select)
    (search,) = list(query.find_all(SearchMedia))
    assert option_value(search.args["images"]) == "thanosql-dataset/mnist_data/test/923.jpg"
    assert query.args["order"].expressions[0].args["desc"] is True
    assert query.args["limit"].expression.this == "4"


def test_seed_002_create_table_using_and_convert_subquery():
    create = parse_statement(seed_cells("002")[2]).expression
    assert isinstance(create, CreateTableUsing)
    options = {e.this.this: option_value(e.args["value"]) for e in create.args["options"].entries()}
    assert options == {"path_type": "folder", "data_type": "image", "file_type": [".jpg"]}
    select = parse_statement(seed_cells("002")[4]).expression
    assert isinstance(select.args["from_"].this.this, ConvertUsing)


@pytest.mark.parametrize(
    "sql",
    [
        "get thanosql dataset mnist_data options (overwrite=true)",
        "Build Model m Using simclr Options (max_epochs=2) As Select * From t",
        "search image IMAGES=['a.jpg', \"b.jpg\"] using m as select * from t",
        "print image as (select image_path from t)",
        "convert using m as select * from t",
    ],
)
def test_keywords_in_any_case(sql):
    assert isinstance(parse_statement(sql).expression, (GetDataset, BuildModel, SearchMedia, PrintMedia, ConvertUsing))


def test_option_values_of_every_type():
    node = parse_statement(
        "BUILD MODEL m USING SimCLR OPTIONS (a=1, b=-2.5, c='x', d=\"y\", e=True, f=false, g=[1, 'z'], h=resnet18) AS SELECT 1"
    ).expression
    values = {e.this.this: option_value(e.args["value"]) for e in node.args["options"].entries()}
    assert values == {"a": 1, "b": -2.5, "c": "x", "d": "y", "e": True, "f": False, "g": [1, "z"], "h": "resnet18"}


def test_a_script_splits_on_semicolons_keeping_each_statements_text():
    statements = parse_script("SELECT 1;\n\nCOPY t FROM 'a.csv' ;  SELECT 2")
    assert [s.text for s in statements] == ["SELECT 1", "COPY t FROM 'a.csv'", "SELECT 2"]
    assert [s.line for s in statements] == [1, 3, 3]


@pytest.mark.parametrize(
    ("sql", "line", "col", "words"),
    [
        ("BUILD MODL m USING SimCLR AS SELECT 1", 1, 7, "Expected MODEL after BUILD"),
        ("COPY t\nOPTIONS (overwrite=)\nFROM 'x.csv'", 2, 20, "Expected an option value"),
        ("SEARCH IMAGE images='a.jpg'\nUSING m", 2, 8, "Expected AS SELECT"),
        ("SELECT *\nFROM (SELECT 1", 2, 15, "Missing ) to close the ( at line 2:6"),
        ("GET THANOSQL DATASETS x", 1, 14, "Expected DATASET or MODEL after GET THANOSQL"),
        ("BUILD MODEL m USING SimCLR OPTIONS (max_epochs 3) AS SELECT 1", 1, 48, "Expected = after option max_epochs"),
        ("COPY t OPTIONS (overwrite=True)", 1, 32, "the statement ends here"),
        ("SELECT * FROM t;\nCONVERT m AS SELECT 1", 2, 9, "Expected USING <model> after CONVERT"),
    ],
)
def test_syntax_errors_name_line_col_and_what_was_expected(sql, line, col, words):
    with pytest.raises(ThanoSQLSyntaxError) as caught:
        parse_script(sql)
    error = caught.value
    assert (error.line, error.col) == (line, col), str(error)
    assert words in str(error)
    assert str(error).startswith(f"line {line}:{col}: ")
    assert "^" in error.snippet and error.hint


CLASSIFIER_STATEMENTS = [
    "BUILD MODEL c USING ConvNeXt_Tiny OPTIONS (image_col='image_path', label_col='label', epochs=3, batch_size=16) AS SELECT * FROM t",
    "FIT MODEL c2 USING c OPTIONS (max_epochs=1) AS SELECT * FROM t WHERE label < 5",
    "PREDICT USING c OPTIONS (top_k=3, table_name='p') AS SELECT * FROM t",
    "EVALUATE USING c OPTIONS (label_col='y') AS SELECT image_path, y FROM t",
    "SELECT image_path FROM (PREDICT USING c AS SELECT * FROM t) WHERE confidence < 0.6",
    "SELECT t.image_path, p.predicted FROM t JOIN (PREDICT USING c AS SELECT * FROM t) AS p ON t.image_path = p.image_path",
    "PRINT IMAGE AS (SELECT image_path, predicted, confidence FROM (PREDICT USING c AS SELECT * FROM t) LIMIT 4)",
    'UPLOAD MODEL vit OPTIONS (framework="huggingface", overwrite=True) FROM "models/vit"',
    "UPLOAD MODEL r OPTIONS (framework='pytorch', algorithm='ResNet18') FROM 'models/r.pth'",
    "GET THANOSQL MODEL 'google/vit-base-patch16-224' OPTIONS (overwrite=True) AS vit",
    'GET THANOSQL MODEL "google/vit-base-patch16-224"',
    "CREATE TABLE labels USING vit OPTIONS (path_type='folder', data_type='image') FROM 'photos'",
    "BUILD MODEL r USING ResNet18 OPTIONS (pretrained=True, input_size=128) AS SELECT * FROM t",
    "BUILD MODEL v USING ViT OPTIONS (pretrained='vit', self_training=False) AS SELECT * FROM t",
    "GET THANOSQL MODEL 'torchvision/resnet18' AS r",
    # A parenthesised query after AS goes on as any query does: set operations, ORDER BY, LIMIT.
    "BUILD MODEL c USING ResNet18 AS (SELECT * FROM t LIMIT 3) UNION ALL (SELECT * FROM u LIMIT 2)",
    "PREDICT USING c AS (SELECT * FROM t) ORDER BY image_path LIMIT 2",
]

LIST_STATEMENTS = [
    ("LIST MODEL", "LIST MODEL"),
    ("list tables", "LIST TABLE"),
    ("LIST THANOSQL MODEL", "LIST THANOSQL MODEL"),
    ("LIST THANOSQL DATASETS", "LIST THANOSQL DATASET"),
    ("SELECT * FROM (LIST MODEL) AS m WHERE class_name = 'SimCLR'", "SELECT * FROM (LIST MODEL) AS m WHERE class_name = 'SimCLR'"),
]


@pytest.mark.parametrize(("sql", "expected"), LIST_STATEMENTS)
def test_list_statements_parse_and_round_trip(sql, expected):
    generated = parse_statement(sql).expression.sql(dialect=ThanoSQL)
    assert generated == expected
    assert sqlglot.parse_one(generated, read=ThanoSQL).sql(dialect=ThanoSQL) == generated


@pytest.mark.parametrize("sql", CLASSIFIER_STATEMENTS)
def test_classifier_statements_parse_and_round_trip(sql):
    statement = parse_statement(sql)
    generated = statement.expression.sql(dialect=ThanoSQL)
    assert sqlglot.parse_one(generated, read=ThanoSQL) == statement.expression
    assert sqlglot.parse_one(generated, read=ThanoSQL).sql(dialect=ThanoSQL) == generated


@pytest.mark.parametrize(
    ("sql", "col", "words"),
    [
        ("PREDICT c AS SELECT 1", 9, "Expected USING <model> after PREDICT"),
        ("EVALUATE USING c SELECT 1", 18, "Expected AS SELECT"),
        ("FIT m USING c AS SELECT 1", 5, "Expected MODEL after FIT"),
        ("FIT MODEL m2 c AS SELECT 1", 14, "Expected USING <model> after the new model's name"),
        ("UPLOAD MODEL m OPTIONS (framework='huggingface')", 49, 'Expected FROM "directory"'),
        ("GET THANOSQL MODEL 'a/b' AS", 28, "Expected a name for the model after AS"),
    ],
)
def test_classifier_statement_syntax_errors(sql, col, words):
    with pytest.raises(ThanoSQLSyntaxError) as caught:
        parse_script(sql)
    assert caught.value.col == col and words in str(caught.value), str(caught.value)
