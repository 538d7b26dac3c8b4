"""Tables in DuckDB, one file inside the workspace (embedded mode).

DuckDB lets one process at a time hold a database file for writing, and opening one costs
about 15-25 ms (the database instance, not the query). The CLI, a notebook and runs launched
from the Dagster UI share one workspace, so each process keeps its database open only while
it works and for `idle_release_s` after (so a burst of searches opens it once), then lets it
go; a process that finds the file held waits and retries, and says so after `lock_timeout_s`.
"""

import atexit
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import sqlglot
from sqlglot import exp

from resources.warehouse import (
    TableReplacement,
    WarehouseResource,
    generations_comment,
    parse_generations,
    query_error,
    quote,
    recorded_generations,
    sql_string,
    view_no_longer_fits,
)
from thanosql.errors import WorkspaceBusyError


def _generations(con: Any, table: str) -> dict[str, dict[str, str]]:
    row = con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [table]).fetchone()
    return parse_generations(row[0] if row else None)


def _set_generations(con: Any, table: str, generations: Mapping[str, Mapping[str, str]]) -> None:
    con.execute(f"COMMENT ON TABLE {quote(table)} IS {sql_string(generations_comment(generations) or '')}")


def _replace(con: Any, replacement: TableReplacement) -> None:
    """Within the caller's transaction: create or replace the table with its new rows, indexes and generations."""
    name = replacement.name
    con.register("__thanosql_incoming", replacement.data)  # an Arrow table, DataFrame or record batch reader (read as it streams)
    try:
        current = _generations(con, name)
        con.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS SELECT * FROM __thanosql_incoming")
    finally:
        con.unregister("__thanosql_incoming")
    for column in replacement.index_on:
        con.execute(f"CREATE INDEX {quote(f'{name}__{column}')} ON {quote(name)} ({quote(column)})")
    columns = _columns(con, f"SELECT * FROM {quote(name)}", [])
    _set_generations(con, name, recorded_generations(current, columns, replacement.generations))


@contextmanager
def _views_kept(con: Any, tables: Sequence[str]) -> Iterator[None]:
    """Within the caller's transaction: refuse the block's changes of `tables` if a view that read
    fine before no longer does, or lost columns (DuckDB binds a view, `SELECT *` included, when it
    is read; PostgreSQL binds it when it is made and refuses such a change itself: both stores
    should answer alike)."""
    before = _view_shapes(con)
    yield
    for view, (columns, why, definition) in _view_shapes(con).items():
        was = before.get(view)
        if was is None or was[0] is None:  # new, or unreadable already
            continue
        lost = [column for column in was[0] if column not in (columns or [])]
        if columns is None or lost:
            try:
                read = {node.name.lower() for node in sqlglot.parse_one(definition, read="duckdb").find_all(exp.Table)}
            except sqlglot.errors.SqlglotError:  # only to name the tables: all of them will do
                read = set()
            reason = why if columns is None else f"its column{'s' if len(lost) > 1 else ''} {', '.join(lost)} would be gone"
            raise view_no_longer_fits(view, ", ".join(sorted(read & set(tables)) or tables), reason)


def _view_shapes(con: Any) -> dict[str, tuple[list[str] | None, str, str]]:
    """Each view's (columns, or None when it does not bind now; why not, its store's message; its definition)."""
    import duckdb

    shapes = {}
    for view, definition in con.execute("SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal").fetchall():
        try:
            shapes[view] = ([column[0] for column in con.execute(f"SELECT * FROM {quote(view)} LIMIT 0").description], "", definition)
        except duckdb.Error as error:
            shapes[view] = (None, query_error(str(error)).message, definition)
    return shapes


def _columns(con: Any, select: str, parameters: list) -> list[str]:
    return [column[0] for column in con.execute(f"SELECT * FROM ({select}) LIMIT 0", parameters).description]


@lru_cache(maxsize=64)
def _resolved(path: str, cwd: str) -> str:
    """The absolute path of the database file (every statement asks for it; resolving takes system calls)."""
    return str((Path(cwd) / path).resolve())


@lru_cache(maxsize=256)
def _generation_expression(table: str) -> exp.Expression:
    """Parsed once per table: queries put it in every statement that reads an embedding column."""
    return sqlglot.parse_one(
        f"(SELECT comment FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = {sql_string(table)})",
        read="duckdb",
    )


def _drop_columns(con: Any, table: str, dropped: Sequence[str]) -> None:
    """Rewrite `table` without the `dropped` columns. DuckDB alters no table that has an index, so
    the table is copied without them and its indexes made again."""
    columns = _columns(con, f"SELECT * FROM {quote(table)}", [])
    dropped = [column for column in dropped if column in columns]
    if not dropped:
        return
    current = _generations(con, table)
    indexes = con.execute(
        "SELECT sql, expressions FROM duckdb_indexes() WHERE schema_name = 'main' AND table_name = ?", [table]
    ).fetchall()
    excluded = ", ".join(quote(column) for column in dropped)
    con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT * EXCLUDE ({excluded}) FROM {quote(table)}")
    kept = recorded_generations(current, [column for column in columns if column not in dropped])
    image_columns = {generation["image_col"] for generation in kept.values()}
    for sql, expressions in indexes:
        # The indexes serve lookups of the remaining embedding columns' images; the others go.
        if all(column in image_columns for column in _indexed_columns(expressions)):
            con.execute(sql)
    _set_generations(con, table, kept)


def _indexed_columns(expressions: Any) -> list[str]:
    """The columns of an index as `duckdb_indexes().expressions` gives them: a list, or its text ("[a, '\"B c\"']")."""
    items = expressions if isinstance(expressions, list) else str(expressions).strip("[]").split(",")
    return [str(item).strip().strip("'").strip('"') for item in items if str(item).strip()]


def _roll_back(con: Any) -> None:
    import duckdb

    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass  # the query's error already ended the transaction


class _OpenDatabase:
    """One process's open DuckDB database, shared by its threads, closed after an idle spell."""

    def __init__(self, connection: Any):
        self.connection = connection
        self.users = 0
        self.last_used = time.monotonic()
        self.reaped = False  # whether a reaper thread watches it


_open: dict[str, _OpenDatabase] = {}
_open_lock = threading.Lock()
# Per database file: the epoch (see `WarehouseResource.held`), which moves on when this process
# opens the file (another process may have written it meanwhile) or writes it; and the column
# names of the tables read in the current epoch.
_epochs: dict[str, int] = {}
_columns_seen: dict[str, tuple[int, dict[str, list[str]]]] = {}


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


def release(path: str | Path) -> None:
    """Close this process's handle on the database file at `path` now if no thread is using it, so
    the file and its write-ahead log are settled (to copy or back up a workspace) rather than
    changing when the idle handle would have been closed."""
    with _open_lock:
        key = str(Path(path).resolve())
        database = _open.get(key)
        if database is not None and database.users == 0:
            del _open[key]
            database.connection.close()


@atexit.register
def _close_all() -> None:
    with _open_lock:
        for database in _open.values():
            database.connection.close()
        _open.clear()


class DuckDBWarehouseResource(WarehouseResource):
    """A DuckDB database file."""

    path: str
    lock_timeout_s: float = 120.0
    idle_release_s: float = 1.0

    @property
    def dialect(self) -> str:
        return "duckdb"

    @property
    def location(self) -> str:
        return _resolved(self.path, os.getcwd())

    def _open(self) -> Any:
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                # Queries read tables only: no file, extension or other database can be reached
                # from SQL, and no query can turn that back on. COPY reads its CSV files itself.
                # `/` of two integers is PostgreSQL's integer division (7 / 2 = 3), so a query
                # answers as it does in production mode.
                return duckdb.connect(
                    self.path, config={"enable_external_access": False, "integer_division": True, "lock_configuration": True}
                )
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
        key = self.location
        with _open_lock:
            database = _open.get(key)
            if database is None:
                database = _open[key] = _OpenDatabase(self._open())
                _epochs[key] = _epochs.get(key, 0) + 1
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

    @contextmanager
    def held(self) -> Iterator[int | None]:
        # DuckDB lets one process at a time open the file for writing, and this one has it open
        # for as long as a cursor is out: only this process's own writes can change a table.
        with self.connect():
            yield _epochs[self.location]

    def _forget_tables(self) -> None:
        super()._forget_tables()
        with _open_lock:
            _epochs[self.location] = _epochs.get(self.location, 0) + 1

    def query(self, sql: str, relations: Mapping[str, Any] | None = None, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        import duckdb

        with self.connect() as con:
            try:
                for name, data in (relations or {}).items():
                    con.register(name, data)
                # Whatever the query's text, its transaction is rolled back: a data-changing statement
                # hidden in it (a DELETE ... RETURNING in a WITH) changes nothing.
                con.execute("BEGIN TRANSACTION")
                try:
                    return con.execute(sql, dict(parameters) if parameters else None).df()
                finally:
                    _roll_back(con)
            except duckdb.InterruptException:
                raise KeyboardInterrupt from None
            except duckdb.Error as error:
                raise query_error(str(error)) from None

    def table_rows(self, name: str) -> Any:
        import duckdb

        with self.connect() as con:
            try:
                return con.sql(f"SELECT * FROM {quote(name)}").to_arrow_table()  # FLOAT[n] stays a fixed-size list (pandas makes it FLOAT[])
            except duckdb.Error as error:
                raise query_error(str(error)) from None

    def parameter(self, name: str) -> str:
        return f"${name}"

    def inner_product(self, vectors: exp.Expression, parameter: str, dim: int) -> exp.Expression | None:
        product = sqlglot.parse_one(f"CAST(array_inner_product(__vectors, CAST(${parameter} AS FLOAT[{int(dim)}])) AS DOUBLE)", read="duckdb")
        product.find(exp.Column).replace(vectors)
        return product

    def columns_except(self, alias: str, columns: Sequence[str], relation_sql: str) -> str:
        return f"{alias}.* EXCLUDE ({', '.join(quote(column) for column in columns)})"

    def _table_comments(self) -> list[tuple[str, str | None]]:
        with self.connect() as con:
            return con.execute("SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()

    def generation_expression(self, table: str) -> exp.Expression:
        return _generation_expression(table).copy()

    def columns(self, name: str) -> list[str]:
        import duckdb

        with self.connect() as con:
            epoch = _epochs[self.location]
            seen_epoch, seen = _columns_seen.get(self.location, (None, {}))
            if seen_epoch == epoch and name in seen:
                return list(seen[name])
            # The store's own statement, on a table name: no user text, so no transaction to roll back.
            try:
                columns = _columns(con, f"SELECT * FROM {quote(name)}", [])
            except duckdb.Error as error:
                raise query_error(str(error)) from None
            _columns_seen[self.location] = (epoch, {**(seen if seen_epoch == epoch else {}), name: columns})
            return list(columns)

    def replace_tables(self, replacements: Sequence[TableReplacement]) -> list[int]:
        self._forget_tables()
        with self.connect() as con:
            con.execute("BEGIN")
            try:
                with _views_kept(con, [replacement.name for replacement in replacements]):
                    for replacement in replacements:
                        _replace(con, replacement)
                counts = [con.execute(f"SELECT count(*) FROM {quote(replacement.name)}").fetchone()[0] for replacement in replacements]
                con.execute("COMMIT")
            except BaseException:
                _roll_back(con)
                raise
            finally:
                self._forget_tables()  # also after: what a reader kept while the write ran is not the table
            return counts

    def change(self, sql: str, table: str) -> int:
        import duckdb

        self._forget_tables()
        with self.connect() as con:
            con.execute("BEGIN")
            try:
                if sqlglot.parse_one(sql, read="duckdb").key == "alter":
                    # DuckDB alters no table that has an index; a table's indexes serve its
                    # embedding columns' lookups, and the planner alters no table that has them.
                    for (index,) in con.execute(
                        "SELECT index_name FROM duckdb_indexes() WHERE schema_name = 'main' AND table_name = ?", [table]
                    ).fetchall():
                        con.execute(f"DROP INDEX {quote(index)}")
                result = con.execute(sql).fetchall()
                if con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'main' AND view_name = ?", [table]).fetchone()[0]:
                    con.execute(f"SELECT count(*) FROM {quote(table)}").fetchall()  # a view its rows cannot be read from is not made
                con.execute("COMMIT")
            except duckdb.Error as error:
                _roll_back(con)
                raise query_error(str(error)) from None
            except BaseException:
                _roll_back(con)
                raise
        self._forget_tables()
        return int(result[0][0]) if len(result) == 1 and len(result[0]) == 1 and isinstance(result[0][0], int) else -1

    def views(self) -> dict[str, str]:
        with self.connect() as con:
            return dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal").fetchall())

    def drop(self, tables: Sequence[str] = (), columns: Mapping[str, Sequence[str]] | None = None, views: Sequence[str] = ()) -> None:
        self._forget_tables()
        with self.connect() as con:
            con.execute("BEGIN")
            try:
                for name in views:
                    con.execute(f"DROP VIEW IF EXISTS {quote(name)}")
                with _views_kept(con, [*tables, *(columns or {})]):
                    for name in tables:
                        con.execute(f"DROP TABLE IF EXISTS {quote(name)}")
                    for name, dropped in (columns or {}).items():
                        _drop_columns(con, name, dropped)
                con.execute("COMMIT")
            except BaseException:
                _roll_back(con)
                raise
        self._forget_tables()
