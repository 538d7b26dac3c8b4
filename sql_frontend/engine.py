"""Running plans: statements that create or change objects materialize Dagster assets in the
workspace's Dagster instance; queries (SELECT, SEARCH, PRINT) run in process over the latest
materialized assets.

SEARCH and PRINT call the same function as the `search` job's op (`run_statement`), directly:
a Dagster run costs about 0.3 s, and these are interactive statements with a 10 ms budget. From
the Dagster UI they run as that job.
"""

import logging

import dagster as dg
import pandas as pd
from sqlglot import exp

from resources import Settings, build_resources
from sql_frontend.parser import ParsedStatement
from sql_frontend.planner import QUERY_RESOURCES, Materialize, Planner, Query
from thanosql_assets.definitions import build_definitions, catalog_specs
from thanosql_assets.search.engine import QueryEngine

progress_log = logging.getLogger("thanosql.progress")

# In-process runs log to the Dagster event log (the UI); the console gets our progress lines only.
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
_TAG_LIMIT = 2000


class Engine:
    def __init__(self, settings: Settings, instance: dg.DagsterInstance | None = None):
        settings.ensure_dirs()
        self.settings = settings
        self.resources = build_resources(settings)
        self._instance = instance
        self.last_plan = ""  # how the last query ran: "exhaustive" or "top-k (m of n images)"

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
            return self.result_rows(plan)
        relations = {}
        for index, (subquery, convert) in enumerate(plan.converts):
            self._materialize(convert, statement)
            name = f"__thanosql_convert_{index}"
            relations[name] = self.result_rows(convert)
            subquery.replace(exp.Table(this=exp.to_identifier(name), alias=subquery.args.get("alias")))
        engine = self.query_engine(statement)
        try:
            return engine.run(plan.expression, relations)
        finally:
            self.last_plan = engine.last_plan

    def query_engine(self, statement: ParsedStatement) -> QueryEngine:
        return QueryEngine(sql=statement.sql, **{key: self.resources[key] for key in QUERY_RESOURCES})

    def result_rows(self, plan: Materialize) -> pd.DataFrame | None:
        return None if plan.result_query is None else self.resources["warehouse"].query(plan.result_query)

    def _materialize(self, plan: Materialize, statement: ParsedStatement) -> None:
        specs = {(spec.kind, spec.catalog_name): spec for spec in catalog_specs(self.resources["catalog"])}
        specs.update({(spec.kind, spec.catalog_name): spec for spec in plan.specs})
        definitions = build_definitions(specs.values(), self.resources)
        new_keys = [key for key in plan.selection if self.instance.get_latest_materialization_event(key) is None]
        try:
            definitions.resolve_implicit_global_asset_job_def().execute_in_process(
                asset_selection=plan.selection,
                instance=self.instance,
                run_config={**_QUIET, **plan.run_config},
                tags={"thanosql/statement": statement.text[:_TAG_LIMIT]},
            )
        except BaseException:
            # The failed run stays in the run history; the objects it meant to create do not exist,
            # so the asset catalog should not list them.
            if new_keys:
                self.instance.wipe_assets(new_keys)
            raise
