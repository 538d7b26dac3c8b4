"""Running plans: statements that create or change objects materialize Dagster assets in the
workspace's Dagster instance; SEARCH and PRINT run as the on-demand `search` job; plain SELECTs
run straight against the table store."""

from __future__ import annotations

import logging
import dagster as dg
import pandas as pd

from resources import Settings, build_resources
from sql_frontend.errors import SQLError
from sql_frontend.parser import ParsedStatement
from sql_frontend.positions import line_col
from sql_frontend.planner import QUERY_RESOURCES, Materialize, Planner, Query
from thanosql_assets.definitions import build_definitions, catalog_specs
from thanosql_assets.search.engine import QueryEngine

progress_log = logging.getLogger("thanosql.progress")

# In-process runs log to the Dagster event log (the UI); the console gets our progress lines only.
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
_TAG_LIMIT = 2000


class Engine:
    def __init__(self, settings: Settings):
        settings.ensure_dirs()
        self.settings = settings
        self.resources = build_resources(settings)
        self._instance: dg.DagsterInstance | None = None

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = self.settings.dagster_instance()
        return self._instance

    def execute(self, statement: ParsedStatement) -> pd.DataFrame | None:
        plan = Planner(self.resources).plan(statement)
        if plan.announce:
            progress_log.info(plan.announce)
        if isinstance(plan, Materialize):
            self._materialize(plan, statement)
            if plan.result_query is None:
                return None
            return self.resources["warehouse"].query(plan.result_query)
        assert isinstance(plan, Query)
        if plan.on_demand:
            return self._run_search_job(statement)
        engine = QueryEngine(sql=statement.sql, **{key: self.resources[key] for key in QUERY_RESOURCES})
        return engine.run(plan.expression)

    def _materialize(self, plan: Materialize, statement: ParsedStatement) -> None:
        specs = {(spec.kind, spec.catalog_name): spec for spec in catalog_specs(self.resources["catalog"])}
        specs.update({(spec.kind, spec.catalog_name): spec for spec in plan.specs})
        definitions = build_definitions(specs.values(), self.resources)
        new_keys = [key for key in plan.selection if self.instance.get_latest_materialization_event(key) is None]
        try:
            definitions.resolve_implicit_global_asset_job_def().execute_in_process(
                asset_selection=plan.selection,
                instance=self.instance,
                run_config=_QUIET,
                tags=_tags(statement),
            )
        except BaseException:
            # The failed run stays in the run history; the objects it meant to create do not exist,
            # so the asset catalog should not list them.
            if new_keys:
                self.instance.wipe_assets(new_keys)
            raise

    def _run_search_job(self, statement: ParsedStatement) -> pd.DataFrame:
        job = build_definitions([], self.resources).resolve_job_def("search")
        run_config = {**_QUIET, "ops": {"run_statement": {"config": {"sql": statement.text}}}}
        try:
            result = job.execute_in_process(run_config=run_config, instance=self.instance, tags=_tags(statement))
        except SQLError as error:
            raise _shift(error, statement) from None
        return result.output_for_node("run_statement")


def _tags(statement: ParsedStatement) -> dict[str, str]:
    return {"thanosql/statement": statement.text[:_TAG_LIMIT]}


def _shift(error: SQLError, statement: ParsedStatement) -> SQLError:
    """Positions in an on-demand run are relative to the statement; make them relative to the script."""
    if error.line is None:
        return error
    first_line, first_col = line_col(statement.sql, statement.start)
    return type(error)(
        error.bare_message,
        line=error.line + first_line - 1,
        col=error.col + (first_col - 1 if error.line == 1 else 0),
        snippet=error.snippet,
        hint=error.hint,
    )
