"""A statement's plan is made once and can travel: every plan that materializes survives JSON."""

from __future__ import annotations

import pytest

from resources import Settings, build_resources
from sql_frontend.language.parser import parse_statement
from sql_frontend.planning.planner import Planner
from sql_frontend.planning.plans import Materialize, Query
from thanosql_assets.defs.materialize import MaterializationRequest
from thanosql_assets.defs.specs import EmbeddingSpec, ModelSpec
from thanosql_assets.models.simclr.config import SimCLRConfig


@pytest.fixture
def planner(tutorial_home) -> Planner:
    resources = build_resources(Settings.from_env(tutorial_home))
    return Planner.for_resources(resources)


STATEMENTS = [
    "GET THANOSQL DATASET mnist_data OPTIONS (overwrite=True)",
    "COPY mnist_test OPTIONS (append=True) FROM 'thanosql-dataset/mnist_data/mnist_test.csv'",
    "BUILD MODEL m USING SimCLR OPTIONS (max_epochs=2, backbone='resnet18', schedule='0 3 * * *') AS SELECT * FROM mnist_train",
    "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_test', batch_size=7) AS SELECT * FROM mnist_test",
    "CREATE TABLE pics USING my_image_search_model OPTIONS (file_type=['.jpg']) FROM 'thanosql-dataset/mnist_data/test'",
]


@pytest.mark.parametrize("sql", STATEMENTS)
def test_a_materializing_plan_survives_json(planner, sql):
    plan = planner.plan(parse_statement(sql))
    assert isinstance(plan, Materialize)
    assert MaterializationRequest.from_json(plan.request.to_json()) == plan.request


def test_options_reach_the_plan_typed(planner):
    build = planner.plan(parse_statement(STATEMENTS[2])).request.specs[0]
    assert isinstance(build, ModelSpec) and isinstance(build.training, SimCLRConfig)
    assert (build.training.max_epochs, build.training.backbone, build.schedule) == (2, "resnet18", "0 3 * * *")
    assert build.training.batch_size == 128  # defaults filled in
    convert = planner.plan(parse_statement(STATEMENTS[3])).request.specs[0]
    assert isinstance(convert, EmbeddingSpec) and convert.batch_size == 7


def test_queries_are_planned_not_materialized(planner):
    plan = planner.plan(parse_statement("SELECT label, count(*) FROM mnist_test GROUP BY label"))
    assert isinstance(plan, Query) and plan.converts == [] and plan.announce is None
