"""Tables: DuckDB in one file inside the workspace (embedded mode).

DuckDB lets one process at a time open a database file for writing. The CLI, a notebook and
runs launched from the Dagster UI share one workspace, so every operation opens the file, does
its work and closes it again, and waits (with a clear message after a timeout) while another
process holds it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from sql_frontend.errors import WorkspaceBusyError


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class WarehouseResource(dg.ConfigurableResource):
    """A DuckDB database file; `dialect` is what queries are transpiled to."""

    path: str
    lock_timeout_s: float = 120.0

    @property
    def dialect(self) -> str:
        return "duckdb"

    @contextmanager
    def connect(self) -> Iterator[Any]:
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(self.path)
                break
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
        try:
            yield con
        finally:
            con.close()

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

    def replace_table_from_csv(self, name: str, csv_path: Path) -> int:
        """Create or atomically replace `name` with the rows of a CSV file (header row first)."""
        with self.connect() as con:
            con.execute(
                f"CREATE OR REPLACE TABLE {quote(name)} AS SELECT * FROM read_csv(?, header = true)",
                [str(csv_path)],
            )
            return con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def replace_table(self, name: str, data: Any) -> int:
        """Create or atomically replace `name` with an Arrow table or DataFrame."""
        with self.connect() as con:
            con.register("__thanosql_incoming", data)
            con.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS SELECT * FROM __thanosql_incoming")
            con.unregister("__thanosql_incoming")
            return con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def preview(self, name: str, limit: int = 5) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(f"SELECT * FROM {quote(name)} LIMIT {int(limit)}").df()
