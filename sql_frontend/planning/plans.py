"""What the planner hands the runner: assets to materialize, objects to remove, or a query to evaluate."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from thanosql_assets.defs.evaluations import EvaluationRequest
from thanosql_assets.defs.materialize import MaterializationRequest
from thanosql_assets.defs.removal import RemovalRequest
from thanosql_assets.defs.specs import SavedTableSpec
from thanosql_assets.defs.table_changes import TableChange


@dataclass(frozen=True)
class Materialize:
    """A statement that creates or changes objects: the assets it materializes."""

    request: MaterializationRequest
    announce: str | None = None  # what the user is told before it starts, e.g. "Building model..."
    result_query: str | None = None  # rows to return once done (CONVERT shows its table), in the warehouse's dialect


@dataclass(frozen=True)
class Query:
    """A query (SELECT, SEARCH, PRINT), checked; CONVERT subqueries and WITH entries in it are
    materialized first and read as their result rows."""

    expression: exp.Expression
    announce: str | None = None
    converts: list[tuple[exp.Subquery | exp.CTE, Materialize]] = field(default_factory=list)
    save_as: SavedTableSpec | None = None  # SEARCH ... OPTIONS (table_name=...): the table its rows are saved as


@dataclass(frozen=True)
class Evaluate:
    """EVALUATE: score a classifier on labelled rows (returned as metrics/value rows), logged to
    MLflow and reported as the model asset's `evaluation` check."""

    expression: exp.Expression
    request: EvaluationRequest
    announce: str | None = "Evaluating..."


@dataclass(frozen=True)
class Remove:
    """DELETE MODEL, DROP TABLE: objects taken out of every store (nothing to do when `request` is
    None: IF EXISTS of what does not exist, and `announce` says so)."""

    request: RemovalRequest | None
    announce: str | None = None


@dataclass(frozen=True)
class ChangeTable:
    """A PostgreSQL statement passed through to the table store (INSERT, UPDATE, DELETE, CREATE
    TABLE [AS], CREATE VIEW, ALTER TABLE); nothing to do when `request` is None (IF NOT EXISTS
    of what exists, and `announce` says so)."""

    request: TableChange | None
    announce: str | None = None


Plan = Materialize | Query | Evaluate | Remove | ChangeTable
