"""Tables: DuckDB in one file inside the workspace (embedded mode).

DuckDB lets one process at a time hold a database file for writing, and opening one costs
about 15-25 ms (the database instance, not the query). The CLI, a notebook and runs launched
from the Dagster UI share one workspace, so each process keeps its database open only while
it works and for `idle_release_s` after (so a burst of searches opens it once), then lets it
go; a process that finds the file held waits and retries, and says so after `lock_timeout_s`.
"""

import atexit
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from sql_frontend.errors import WorkspaceBusyError


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _OpenDatabase:
    """One process's open DuckDB database, shared by its threads, closed after an idle spell."""

    def __init__(self, connection: Any):
        self.connection = connection
        self.users = 0
        self.last_used = time.monotonic()
        self.reaped = False  # whether a reaper thread watches it


_open: dict[str, _OpenDatabase] = {}
_open_lock = threading.Lock()


def _reap(path: str, idle_release_s: float) -> None:
    # Holds only the path between checks: a reference kept by this (daemon) thread would outlive
    # the interpreter's exit and make DuckDB's bindings report leaks.
    while True:
        time.sleep(idle_release_s)
        with _open_lock:
            database = _open.get(path)
            if database is None:
                return
            if database.users == 0 and time.monotonic() - database.last_used >= idle_release_s:
                del _open[path]
                database.connection.close()
                return
            del database


@atexit.register
def _close_all() -> None:
    with _open_lock:
        for database in _open.values():
            database.connection.close()
        _open.clear()


class WarehouseResource(dg.ConfigurableResource):
    """A DuckDB database file; `dialect` is what queries are transpiled to."""

    path: str
    lock_timeout_s: float = 120.0
    idle_release_s: float = 1.0

    @property
    def dialect(self) -> str:
        return "duckdb"

    def _open(self) -> Any:
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                return duckdb.connect(self.path)
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise
                if time.monotonic() > deadline:
                    raise WorkspaceBusyError(
                        f"The table store {self.path} is held by another process for over "
                        f"{self.lock_timeout_s:.0f} s: {error}",
                        hint="Wait for the other statement or Dagster run to finish, then retry.",
                    ) from error
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A cursor on this process's open database (opened on demand)."""
        key = str(Path(self.path).resolve())
        with _open_lock:
            database = _open.get(key)
            if database is None:
                database = _open[key] = _OpenDatabase(self._open())
            database.users += 1
        cursor = database.connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with _open_lock:
                database.users -= 1
                database.last_used = time.monotonic()
                if not database.reaped:
                    database.reaped = True
                    threading.Thread(target=_reap, args=(key, self.idle_release_s), daemon=True).start()

    def tables(self) -> list[str]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

    def table_exists(self, name: str) -> bool:
        with self.connect() as con:
            return bool(
                con.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
                    [name],
                ).fetchone()[0]
            )

    def columns(self, name: str) -> list[str]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [name],
            ).fetchall()
        return [row[0] for row in rows]

    def row_count(self, name: str) -> int:
        with self.connect() as con:
            return con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def query(self, sql: str, relations: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a query in DuckDB's SQL; `relations` are DataFrames/Arrow tables it may read by name."""
        with self.connect() as con:
            for name, data in (relations or {}).items():
                con.register(name, data)
            return con.execute(sql).df()

    def rows_with_keys(self, table: str, column: str, keys: Sequence[str]) -> pd.DataFrame:
        """Every row of `table` whose `column` is one of `keys` (an index lookup when `column` is indexed)."""
        if not keys:
            return self.query(f"SELECT * FROM {quote(table)} LIMIT 0")
        listed = ", ".join(sql_string(key) for key in keys)
        return self.query(f"SELECT * FROM {quote(table)} WHERE {quote(column)} IN ({listed})")

    def replace_table_from_csv(self, name: str, csv_paths: Sequence[Path]) -> int:
        """Create or atomically replace `name` with the rows of CSV files (header rows first), in order."""
        sources = " UNION ALL BY NAME ".join("SELECT * FROM read_csv(?, header = true)" for _ in csv_paths)
        with self.connect() as con:
            con.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS {sources}", [str(p) for p in csv_paths])
            return con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def replace_table(self, name: str, data: Any, index_on: Sequence[str] = ()) -> int:
        """Create or atomically replace `name` with an Arrow table or DataFrame, indexing `index_on`."""
        with self.connect() as con:
            con.register("__thanosql_incoming", data)
            con.execute("BEGIN")
            con.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS SELECT * FROM __thanosql_incoming")
            for column in index_on:
                con.execute(f"CREATE INDEX {quote(f'{name}__{column}')} ON {quote(name)} ({quote(column)})")
            con.execute("COMMIT")
            con.unregister("__thanosql_incoming")
            return con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def preview(self, name: str, limit: int = 5) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(f"SELECT * FROM {quote(name)} LIMIT {int(limit)}").df()
