"""The `statement` job runs the plan the SQL frontend made, as production mode submits it: the
run materializes the planned request and never parses or plans the statement again."""

from __future__ import annotations

import dagster as dg

from resources import Settings, build_resources
from sql_frontend.language.parser import parse_statement
from sql_frontend.planning.planner import Planner
from thanosql_assets.defs.statement_job import statement_job, statement_run_config


def test_a_statement_run_materializes_its_plan_without_reading_the_text(scratch_conn, monkeypatch):
    home = scratch_conn.settings.home
    resources = build_resources(Settings.from_env(home))
    planner = Planner.for_resources(resources)
    plan = planner.plan(parse_statement("COPY copied FROM 'thanosql-dataset/mnist_data/mnist_test.csv'"))
    monkeypatch.setenv("THANOSQL_HOME", str(home))
    instance = scratch_conn.settings.dagster_instance()

    # Not SQL at all: were the run to parse it, it would fail.
    result = statement_job.execute_in_process(run_config=statement_run_config("-- planned by the SQL server", plan.request), instance=instance)

    assert result.success
    assert len(resources["warehouse"].query('SELECT * FROM "copied"')) == 200
    event = instance.get_latest_materialization_event(dg.AssetKey(["table", "copied"]))
    assert event.asset_materialization.metadata["dagster/row_count"].value == 200
    assert instance.get_run_by_id(event.run_id).tags["thanosql/statement"] == "-- planned by the SQL server"
