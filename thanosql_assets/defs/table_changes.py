"""PostgreSQL statements passed through to the table store: CREATE TABLE [AS], INSERT, UPDATE,
DELETE, ALTER TABLE, CREATE VIEW; and a query's rows saved as a table (SEARCH ... OPTIONS
(table_name=...)).

The planner checks a statement and says what it does to the catalog (`TableChange`); here the
store runs it in a transaction of its own, the catalog follows, and the table's asset records a
materialization (its rows, columns and the statement) reported to the Dagster instance, so the
UI shows the history and what is downstream shows as stale. A table such a statement makes or
changes is plain data (`SavedTableSpec`): no ThanoSQL statement rebuilds it over the change.
Rows inserted into a table with embedding columns have no embedding until its embedding asset
materializes again (then only they are embedded); SEARCH gives them NULL similarity meanwhile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from thanosql_assets.defs.specs import SavedTableSpec, table_key
from thanosql_assets.defs.table_metadata import report_table_change

progress = logging.getLogger("thanosql.progress")


@dataclass(frozen=True)
class TableChange:
    """A checked passthrough statement, and what it does to the catalog."""

    sql: str  # the statement in the table store's dialect
    table: str  # the table or view it makes or changes (after a rename, its new name)
    verb: str  # what the progress line says it did: "inserted", "updated", "deleted", "created", "altered", "renamed"
    spec: SavedTableSpec | None = None  # the table's catalog spec afterwards (None: unchanged)
    deletions: tuple[tuple[str, str], ...] = ()  # catalog entries that go: a prediction table's, a renamed table's
    renamed_from: str | None = None  # ALTER TABLE ... RENAME TO: the old name, whose asset is wiped

    @property
    def redefines(self) -> bool:
        """Whether the code location's assets change (a new, renamed or newly plain table)."""
        return self.spec is not None or bool(self.deletions)


def change_table(change: TableChange, resources: dict[str, Any], instance: dg.DagsterInstance, statement: str) -> None:
    """Run `change` and record it: catalog, then the table asset's materialization."""
    warehouse, catalog = resources["warehouse"], resources["catalog"]
    changed = warehouse.change(change.sql, change.table)
    if change.redefines:
        state = {"columns": warehouse.columns(change.table)}
        puts = [] if change.spec is None else [(change.spec.kind, change.spec.name, change.spec.to_dict(), state)]
        catalog.change(deletions=change.deletions, puts=puts)
    if change.renamed_from:
        instance.wipe_assets([table_key(change.renamed_from)])
    rows = report_table_change(warehouse, instance, change.table, statement, {"rows_changed": changed} if changed >= 0 else None)
    what = "view" if change.spec is not None and change.spec.view else "table"
    preposition = {"inserted": "into", "updated": "in", "deleted": "from"}.get(change.verb)
    counted = f"{changed} row{'s' if changed != 1 else ''} {preposition} " if changed >= 0 and preposition else ""
    renamed = f"{change.renamed_from} to " if change.renamed_from else ""
    progress.info(f"{change.verb} {counted}{what} {renamed}{change.table}: {rows} rows")


def save_rows(spec: SavedTableSpec, rows: pd.DataFrame, resources: dict[str, Any], instance: dg.DagsterInstance, statement: str) -> None:
    """A query's rows as a table of their own, plain data, recorded as its asset's materialization."""
    warehouse = resources["warehouse"]
    count = warehouse.replace_table(spec.name, rows)
    resources["catalog"].put(spec.kind, spec.name, spec.to_dict(), {"rows": count, "columns": [str(column) for column in rows.columns]})
    report_table_change(warehouse, instance, spec.name, statement)
    progress.info(f"saved {count} rows as table {spec.name}")
