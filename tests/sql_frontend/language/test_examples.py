"""The example scripts in examples/ parse, statement by statement (running them is the README's job)."""

from pathlib import Path

import pytest

from sql_frontend.language.dialect import BuildModel, EvaluateUsing, FitModel, PredictUsing
from sql_frontend.language.parser import parse_script

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("script", sorted(EXAMPLES.glob("*.sql")), ids=lambda path: path.name)
def test_example_scripts_parse(script):
    assert parse_script(script.read_text())


def test_the_classification_example_uses_every_classifier_statement():
    kinds = {type(statement.expression) for statement in parse_script((EXAMPLES / "classify_images.sql").read_text())}
    assert {BuildModel, FitModel, PredictUsing, EvaluateUsing} <= kinds
