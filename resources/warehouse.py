"""Tables: DuckDB in one file inside the workspace (embedded mode).

DuckDB lets one process at a time hold a database file for writing, and opening one costs
about 15-25 ms (the database instance, not the query). The CLI, a notebook and runs launched
from the Dagster UI share one workspace, so each process keeps its database open only while
it works and for `idle_release_s` after (so a burst of searches opens it once), then lets it
go; a process that finds the file held waits and retries, and says so after `lock_timeout_s`.
"""

import atexit
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import sqlglot
from sqlglot import exp

from sql_frontend.errors import WorkspaceBusyError


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class StaleGeneration(Exception):
    """A table's embedding column was switched to another collection while a query read it."""


@dataclass(frozen=True)
class Generation:
    """Which Qdrant collection and model version a table's embedding column was built with."""

    table: str
    column: str
    collection: str
    model_version: str
    image_col: str

    def as_dict(self) -> dict[str, str]:
        return {"collection": self.collection, "model_version": self.model_version, "image_col": self.image_col}


_COMMENT_KEY = "thanosql_embeddings"


def _table_columns(con: Any, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [row[0] for row in rows]


def _columns(con: Any, select: str, parameters: list) -> list[str]:
    return [column[0] for column in con.execute(f"SELECT * FROM ({select}) LIMIT 0", parameters).description]


def _generations(con: Any, table: str) -> dict[str, dict[str, str]]:
    # The table's comment holds them, so a table and the collections of its embedding columns
    # change in one transaction.
    row = con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [table]).fetchone()
    return _parse_comment(row[0] if row else None)


def _parse_comment(comment: str | None) -> dict[str, dict[str, str]]:
    if not comment:
        return {}
    try:
        return dict(json.loads(comment).get(_COMMENT_KEY, {}))
    except (ValueError, AttributeError):
        return {}


def _set_generations(con: Any, table: str, generations: dict[str, dict[str, str]]) -> None:
    comment = json.dumps({_COMMENT_KEY: generations}) if generations else ""
    con.execute(f"COMMENT ON TABLE {quote(table)} IS {sql_string(comment)}")


@dataclass(frozen=True)
class CandidatesStatement:
    """SEARCH's top-k plan as one statement: `outer_sql` (over `relation`) evaluated on the
    SEARCH's query `inner_sql` (over `candidates`, with the image key as column `key`) for the
    candidate images only, with one similarity column per query image. Parameters: the
    candidate keys, then one list of scores per query image (`candidates_parameters`)."""

    table: str
    image_col: str
    key: str
    candidates: str
    relation: str
    similarity_columns: list[str]
    inner_sql: str
    outer_sql: str


class _OpenDatabase:
    """One process's open DuckDB database, shared by its threads, closed after an idle spell."""

    def __init__(self, connection: Any):
        self.connection = connection
        self.users = 0
        self.last_used = time.monotonic()
        self.reaped = False  # whether a reaper thread watches it


_open: dict[str, _OpenDatabase] = {}
_known_tables: dict[str, dict[str, dict[str, "Generation"]]] = {}  # per database: table_generations()
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
            rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1").fetchall()
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

    def query(self, sql: str, relations: Mapping[str, Any] | None = None, parameters: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a query in DuckDB's SQL; `relations` are DataFrames/Arrow tables it may read by name."""
        with self.connect() as con:
            for name, data in (relations or {}).items():
                con.register(name, data)
            return con.execute(sql, list(parameters) or None).df()

    def _forget_tables(self) -> None:
        _known_tables.pop(str(Path(self.path).resolve()), None)

    def candidates_statement(self, statement: CandidatesStatement) -> str:
        # Parameters, not literals: the text is made once per query, and DuckDB parses no long lists.
        key = quote(statement.key)
        similarity = [quote(column) for column in statement.similarity_columns]
        return (
            f"WITH {statement.candidates} AS (SELECT * FROM {quote(statement.table)} WHERE {quote(statement.image_col)} = ANY($1)), "
            f"__thanosql_scores AS (SELECT unnest($1) AS {key}, "
            + ", ".join(f"unnest(${n + 2})::DOUBLE AS {column}" for n, column in enumerate(similarity))
            + "), "
            f"{statement.relation} AS (SELECT i.* EXCLUDE ({key}), {', '.join('s.' + c for c in similarity)} "
            f"FROM ({statement.inner_sql}) i JOIN __thanosql_scores s ON i.{key} = s.{key}) "
            f"{statement.outer_sql}"
        )

    def candidates_parameters(self, keys: list[str], scores: list[list[float | None]]) -> list:
        return [keys, *scores]

    def table_generations(self, fresh: bool = False) -> dict[str, dict[str, Generation]]:
        """Every table, with its embedding columns and the collection and model version behind each.

        Kept per process until this process changes a table or `fresh` is asked for: readers
        check what they used against the table in the statement that reads it (`check_generation`)
        and ask again when it changed, so an answer from another process's old state never shows.
        """
        key = str(Path(self.path).resolve())
        cached = _known_tables.get(key)
        if cached is not None and not fresh:
            return cached
        with self.connect() as con:
            rows = con.execute("SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
        _known_tables[key] = {
            table: {column: Generation(table=table, column=column, **value) for column, value in _parse_comment(comment).items()}
            for table, comment in rows
        }
        return _known_tables[key]

    def generation_expression(self, table: str) -> exp.Expression:
        """A scalar subquery giving `table`'s generations; selected by a query that reads the table,
        it is read in the same snapshot as the rows (one statement), for `check_generation`."""
        return sqlglot.parse_one(
            f"(SELECT comment FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = {sql_string(table)})",
            read="duckdb",
        )

    def check_generation(self, comment: str | None, expected: Generation) -> None:
        """Raise `StaleGeneration` unless `comment` (None: read it now) still records `expected`."""
        if comment is None:
            with self.connect() as con:
                current = _generations(con, expected.table).get(expected.column)
        else:
            current = _parse_comment(comment).get(expected.column)
        if current != expected.as_dict():
            raise StaleGeneration(f"{expected.table}.{expected.column} was switched while a query read it")

    def replace_table_from_csv(self, name: str, csv_paths: Sequence[Path]) -> int:
        """Create or atomically replace `name` with the rows of CSV files (header rows first), in order.

        Embedding columns of the table it replaces are carried over for the images still in it
        (new images get NULL until their embeddings are computed), so SEARCH keeps working on a
        table while COPY adds rows to it.
        """
        sources = " UNION ALL BY NAME ".join("SELECT * FROM read_csv(?, header = true)" for _ in csv_paths)
        self._forget_tables()
        with self.connect() as con:
            con.execute("BEGIN")
            carried = {
                column: generation
                for column, generation in _generations(con, name).items()
                if generation["image_col"] in _columns(con, sources, [str(p) for p in csv_paths])
            }
            select = f"SELECT * FROM ({sources})"
            if carried:
                joins, columns = [], []
                for number, (column, generation) in enumerate(carried.items()):
                    alias = f"__e{number}"
                    image_col = quote(generation["image_col"])
                    joins.append(
                        f"LEFT JOIN (SELECT DISTINCT ON ({image_col}) {image_col}, {quote(column)} FROM {quote(name)}) {alias} "
                        f"ON {alias}.{image_col} = incoming.{image_col}"
                    )
                    columns.append(f"{alias}.{quote(column)}")
                select = (
                    f"SELECT incoming.* EXCLUDE (__row), {', '.join(columns)} FROM "
                    f"(SELECT *, row_number() OVER () AS __row FROM ({sources})) incoming {' '.join(joins)} ORDER BY incoming.__row"
                )
            con.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS {select}", [str(p) for p in csv_paths])
            for image_col in {generation["image_col"] for generation in carried.values()}:
                con.execute(f"CREATE INDEX {quote(f'{name}__{image_col}')} ON {quote(name)} ({quote(image_col)})")
            if carried:
                _set_generations(con, name, carried)
            con.execute("COMMIT")
            return con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def replace_table(
        self, name: str, data: Any, index_on: Sequence[str] = (), generation: Generation | None = None
    ) -> int:
        """Create or atomically replace `name` with an Arrow table or DataFrame, indexing `index_on`.

        `generation` records, in the same transaction, which collection and model version the
        embedding column it names comes from (other embedding columns keep theirs).
        """
        self._forget_tables()
        with self.connect() as con:
            con.register("__thanosql_incoming", data)
            con.execute("BEGIN")
            generations = _generations(con, name)
            con.execute(f"CREATE OR REPLACE TABLE {quote(name)} AS SELECT * FROM __thanosql_incoming")
            for column in index_on:
                con.execute(f"CREATE INDEX {quote(f'{name}__{column}')} ON {quote(name)} ({quote(column)})")
            if generation is not None:
                generations[generation.column] = generation.as_dict()
            columns = set(_table_columns(con, name))
            _set_generations(con, name, {column: g for column, g in generations.items() if column in columns})
            con.execute("COMMIT")
            con.unregister("__thanosql_incoming")
            return con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]

    def preview(self, name: str, limit: int = 5) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(f"SELECT * FROM {quote(name)} LIMIT {int(limit)}").df()
