"""BUILD MODEL ... USING SimCLR OPTIONS: validation with errors that list what is valid."""

import pytest

from sql_frontend.language.parser import parse_statement
from sql_frontend.planning.options import build_model_options, validate_options
from thanosql.errors import OptionError
from thanosql_assets.models.algorithms import ALGORITHMS

SIMCLR_OPTIONS = build_model_options(ALGORITHMS["simclr"])


def validate(options_sql: str) -> dict:
    statement = parse_statement(f"BUILD MODEL m USING SimCLR OPTIONS ({options_sql}) AS SELECT * FROM t")
    return validate_options(statement.expression.args["options"], SIMCLR_OPTIONS, statement="BUILD MODEL", sql=statement.sql)


def test_defaults_fill_what_is_not_given():
    values = validate("max_epochs=3")
    assert values["max_epochs"] == 3
    assert values["image_col"] == "image_path" and values["batch_size"] == 128 and values["overwrite"] is False
    assert values["horizontal_flip"] is None  # decided by the data


def test_names_are_case_insensitive_and_numbers_coerce():
    values = validate("MAX_EPOCHS=2, Learning_Rate=1, temperature=0.5")
    assert values["max_epochs"] == 2 and values["learning_rate"] == 1.0 and values["temperature"] == 0.5


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ("epochs=3", ["Unknown option 'epochs'", "max_epochs"]),
        ("max_epochs='ten'", ["'max_epochs'", "must be an integer"]),
        ("max_epochs=0", ["'max_epochs'", "at least 1"]),
        ("max_epochs=2.5", ["must be an integer"]),
        ("learning_rate=-1", ["at least"]),
        ("temperature=True", ["must be a number"]),
        ("backbone='vgg16'", ["must be one of small_cnn, resnet18, resnet34, resnet50"]),
        ("device='tpu'", ["must be one of auto, cpu, cuda"]),
        ("horizontal_flip='sometimes'", ["must be True or False"]),
        ("image_col=''", ["non-empty string"]),
        ("holdout=0.9", ["at most 0.5"]),
        ("max_epochs=1, max_epochs=2", ["given twice"]),
    ],
)
def test_bad_options_say_what_is_valid(options, words):
    with pytest.raises(OptionError) as caught:
        validate(options)
    for word in words:
        assert word in str(caught.value)
    assert caught.value.line == 1 and caught.value.col > 30
    assert caught.value.hint


def test_every_option_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    for option in SIMCLR_OPTIONS:
        assert f"`{option.name}`" in readme, option.name


def test_hints_say_what_an_unset_option_means():
    from sql_frontend.planning.options import PARTITIONS, PREDICT_OPTIONS, UPLOAD_MODEL_OPTIONS

    top_k = next(spec for spec in PREDICT_OPTIONS if spec.name == "top_k")
    framework = next(spec for spec in UPLOAD_MODEL_OPTIONS if spec.name == "framework")
    assert "default none)" in top_k.describe() and "default none: required" in framework.describe()
    assert "default one per million images" in PARTITIONS.describe()
    embedding_dim = next(spec for spec in build_model_options(ALGORITHMS["simclr"]) if spec.name == "embedding_dim")
    assert "default depends on the data" in embedding_dim.describe()
