"""The catalog of ThanoSQL objects: what each dataset, table, model and embedding is, and where
its current physical version lives.

Each entry holds the object's *spec* (how to rebuild it: the statement it came from) and its
*state* (what the last successful materialization produced: row counts, MLflow model version,
Qdrant collection name). The Dagster code location builds one asset per entry from the specs;
an asset writes its entry only after its work has succeeded, so a failed statement leaves the
catalog as it was. SQLAlchemy keeps the same code for SQLite (embedded) and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from resources.sql_database import metadata, sql_engine

_objects = sa.Table(
    "thanosql_objects",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The PostgreSQL advisory lock that statements changing objects take in turn (any bigint that
# nothing else on the server uses).
_CHANGES_LOCK = zlib.crc32(b"thanosql: statements that change objects")


@dataclass(frozen=True)
class CatalogEntry:
    kind: str
    name: str
    spec: dict[str, Any]
    state: dict[str, Any]
    updated_at: dt.datetime


class CatalogResource(dg.ConfigurableResource):
    """Where the catalog lives: an SQLAlchemy URL (sqlite:///... embedded, postgresql+psycopg2://... in production)."""

    url: str

    @property
    def _engine(self) -> sa.Engine:
        return sql_engine(self.url)

    @contextmanager
    def changes_in_turn(self) -> Iterator[None]:
        """Held while a statement that changes objects is planned and run, so that what its plan
        checked (no such table yet, ...) still holds when it runs. On PostgreSQL, a session
        advisory lock: SQL servers that share this catalog take turns as the threads of one
        server do, and a server that dies releases its turn with its connection. A SQLite
        catalog belongs to one workspace on one machine, where DuckDB's file lock does this."""
        if self._engine.dialect.name != "postgresql":
            yield
            return
        # Autocommit: a session idle in an open transaction for the whole statement (hours of a
        # launched BUILD) could meet idle_in_transaction_session_timeout and lose the lock with it.
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _CHANGES_LOCK})
            try:
                yield
            finally:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _CHANGES_LOCK})
                except sa.exc.DBAPIError:
                    conn.invalidate()  # closed rather than pooled: closing its session releases the lock

    def get(self, kind: str, name: str) -> CatalogEntry | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(_objects).where(_objects.c.kind == kind, _objects.c.name == name)
            ).first()
        return _entry(row) if row else None

    def lists_model_version(self, name: str, version: str | int, run_id: str | None) -> bool:
        """Whether model `name` is, as far as the catalog knows, version `version` that MLflow run
        `run_id` logged (what a BUILD, FIT or UPLOAD records): the registry need not be asked."""
        entry = self.get("model", name)
        return run_id is not None and entry is not None and (entry.state.get("version"), entry.state.get("run_id")) == (str(version), run_id)

    def list(self, kind: str | None = None) -> list[CatalogEntry]:
        query = sa.select(_objects).order_by(_objects.c.kind, _objects.c.name)
        if kind is not None:
            query = query.where(_objects.c.kind == kind)
        with self._engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def put(self, kind: str, name: str, spec: dict[str, Any], state: dict[str, Any]) -> None:
        self.change(puts=[(kind, name, spec, state)])

    def delete(self, kind: str, name: str) -> None:
        self.change(deletions=[(kind, name)])

    def change(
        self,
        deletions: Sequence[tuple[str, str]] = (),
        puts: Sequence[tuple[str, str, dict[str, Any], dict[str, Any]]] = (),
    ) -> None:
        """Delete the (kind, name) entries of `deletions`, then write the (kind, name, spec, state)
        entries of `puts`, in one transaction: readers see all of it or none."""
        now = dt.datetime.now(dt.timezone.utc)
        with self._engine.begin() as conn:
            for kind, name in deletions:
                conn.execute(sa.delete(_objects).where(_objects.c.kind == kind, _objects.c.name == name))
            for kind, name, spec, state in puts:
                values = {"spec": json.dumps(spec, sort_keys=True), "state": json.dumps(state, sort_keys=True, default=str), "updated_at": now}
                updated = conn.execute(
                    sa.update(_objects).where(_objects.c.kind == kind, _objects.c.name == name).values(**values)
                ).rowcount
                if not updated:
                    conn.execute(sa.insert(_objects).values(kind=kind, name=name, **values))


def _entry(row: sa.Row) -> CatalogEntry:
    return CatalogEntry(
        kind=row.kind,
        name=row.name,
        spec=json.loads(row.spec),
        state=json.loads(row.state),
        updated_at=row.updated_at,
    )
