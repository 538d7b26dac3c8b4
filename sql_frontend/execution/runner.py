"""Running plans: statements that create or change objects materialize Dagster assets in the
workspace's Dagster instance; DELETE MODEL and DROP TABLE remove objects from every store (and
wipe their assets); SQL statements that change tables (INSERT, UPDATE, ...) run in the table
store and report the table's new materialization; queries (SELECT, SEARCH, PRINT) run in process over the latest materialized
assets.

Queries do not become Dagster runs: a run costs about 0.3 s, and these are interactive
statements with a 10 ms budget. From the Dagster UI they run as the `search` job, which calls
the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd
from sqlglot import exp

from sql_frontend.execution.queries import QueryEngine
from sql_frontend.language.dialect import (
    BuildModel,
    ConvertUsing,
    CopyFrom,
    CreateTableUsing,
    EvaluateUsing,
    FitModel,
    PredictUsing,
    SearchMedia,
)
from sql_frontend.language.parser import ParsedStatement
from sql_frontend.language.positions import keyword_location, locate
from sql_frontend.planning.plans import ChangeTable, Evaluate, Materialize, Plan, Query, Remove
from sql_frontend.planning.query_errors import located
from thanosql.errors import DataError, DependentObjectsError, QueryError
from thanosql_assets.defs.evaluations import check_evaluation, evaluate, record
from thanosql_assets.defs.materialize import materialize
from thanosql_assets.defs.removal import remove
from thanosql_assets.defs.specs import model_key
from thanosql_assets.defs.table_changes import change_table, save_rows

progress_log = logging.getLogger("thanosql.progress")
QUERY_RESOURCES = ("workspace", "warehouse", "catalog", "model_registry", "vector_store", "model_source", "dataset_source")


class StatementRunner:
    """Runs the plans of one workspace's statements. `instance` gives the Dagster instance (made on first use)."""

    def __init__(self, resources: dict[str, Any], instance: Callable[[], dg.DagsterInstance]):
        self.resources = resources
        self._instance_factory = instance
        self._instance: dg.DagsterInstance | None = None
        self.last_plan = ""  # how the last query ran: "exhaustive" or "top-k (m of n images)[, rows held in memory]"

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = self._instance_factory()
        return self._instance

    def run(self, plan: Plan, statement: ParsedStatement) -> pd.DataFrame | None:
        """Run the plan of `statement`: its result rows, or None for statements without rows."""
        if plan.announce:
            progress_log.info(plan.announce)
        try:
            return self._run(plan, statement)
        except DataError as error:  # found while running (an image file, the rows): placed at what chose the data
            if error.line is not None:
                raise
            source = _data_source(statement.expression)
            if isinstance(source, exp.Query):
                source = source.unnest()
                keyword = "WITH" if source.args.get("with_") else "SELECT"
                where = keyword_location(statement.sql, source, keyword, statement.start)
            else:
                where = locate(statement.sql, source)
            raise DataError(error.bare_message, **where, hint=error.hint) from None

    def _run(self, plan: Plan, statement: ParsedStatement) -> pd.DataFrame | None:
        if isinstance(plan, Materialize):
            self.materialize(plan, statement)
            return self.result_rows(plan)
        if isinstance(plan, Evaluate):
            return self.evaluate(plan)
        if isinstance(plan, Remove):
            if plan.request is not None:
                try:
                    remove(plan.request, self.resources, self.instance, statement=statement.text)
                except DependentObjectsError as error:  # the store's (a view that would break): at what goes
                    raise DependentObjectsError(error.bare_message, **locate(statement.sql, statement.expression), hint=error.hint) from None
            return None
        if isinstance(plan, ChangeTable):
            if plan.request is not None:
                try:
                    change_table(plan.request, self.resources, self.instance, statement=statement.text)
                except (QueryError, DependentObjectsError) as error:  # the store's: pointed into the statement
                    raise located(error, statement.sql, statement.expression, statement.start) from None
            return None
        return self.query(plan, statement)

    def evaluate(self, plan: Evaluate) -> pd.DataFrame:
        """Score the model, log the evaluation to MLflow and report it as the model asset's `evaluation` check."""
        names = ("warehouse", "workspace", "catalog", "model_registry")
        warehouse, workspace, catalog, model_registry = (self.resources[name] for name in names)
        evaluation = evaluate(plan.request, warehouse, workspace, catalog, model_registry)
        links = record(evaluation, catalog, model_registry)
        self.instance.report_runless_asset_event(check_evaluation(model_key(plan.request.model), evaluation, links))
        return evaluation.table()

    def materialize(self, plan: Materialize, statement: ParsedStatement) -> None:
        materialize(plan.request, self.resources, self.instance, statement=statement.text)

    def result_rows(self, plan: Materialize) -> pd.DataFrame | None:
        return None if plan.result_query is None else self.resources["warehouse"].query(plan.result_query)

    def query(self, plan: Query, statement: ParsedStatement) -> pd.DataFrame:
        """Evaluate a query plan (once: its CONVERT subqueries are materialized, then read in their place)."""
        relations = {}
        for index, (holder, convert) in enumerate(plan.converts):
            self.materialize(convert, statement)
            name = f"__thanosql_convert_{index}"
            relations[name] = self.result_rows(convert)
            if isinstance(holder, exp.CTE):  # WITH made AS (CONVERT ...): its rows, under the CTE's name
                holder.set("this", exp.select("*").from_(name))
            else:
                holder.replace(exp.Table(this=exp.to_identifier(name), alias=holder.args.get("alias")))
        engine = QueryEngine(sql=statement.sql, start=statement.start, **{key: self.resources[key] for key in QUERY_RESOURCES})
        try:
            rows = engine.run(plan.expression, relations)
        finally:
            self.last_plan = engine.last_plan
        if plan.save_as is not None:
            save_rows(plan.save_as, rows, self.resources, self.instance, statement=statement.text)
        return rows


_READING_DATA = (BuildModel, FitModel, ConvertUsing, PredictUsing, EvaluateUsing, SearchMedia, CreateTableUsing, CopyFrom)


def _data_source(statement: exp.Expression) -> exp.Expression:
    """What chose the data of `statement`, or of the first SEARCH, CONVERT or PREDICT in it: its
    image_col option where written, else its query or folder."""
    node = next(statement.find_all(*_READING_DATA), statement)
    options = node.args.get("options")
    image_col = next((entry for entry in options.entries() if entry.this.this.lower() == "image_col"), None) if options else None
    return image_col or node.args.get("query") or node.args.get("source") or statement
