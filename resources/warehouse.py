"""Where the tables live: the interface every table store implements, and what they share.

Two implementations: DuckDB in the workspace (`DuckDBWarehouseResource`, embedded mode) and
PostgreSQL (`PostgresWarehouseResource`, production mode). Queries arrive as SQL text in the
store's `dialect` (the SQL frontend transpiles with sqlglot).

Each table records, in its comment, which Qdrant collection and model version filled each of
its embedding columns (its *generation*), written in the same transaction that replaces the
table; a reader selects the comment with the rows (`generation_expression`) and checks it
(`check_generation`), so it sees an embedding column and its collection together, never a mix.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp

from thanosql.errors import DependentObjectsError, QueryError

_RECORD_KEY = "thanosql_embeddings"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_DUCKDB_UNKNOWN_COLUMN = re.compile(r'Referenced column "([^"]+)" not found in FROM clause!?(?:\s*Candidate bindings:\s*(.*))?$')
_DUCKDB_UNKNOWN_QUALIFIED_COLUMN = re.compile(
    r'Table "([^"]+)" does not have a column (named|with name) "([^"]+)"(?:\s*(?:Candidate bindings|Did you mean):\s*:?\s*(.*))?$'
)
_DUCKDB_DIVISION_BY_ZERO = re.compile(r"^Division by zero in expression \((.*)\)\. Use TRY")
_ERROR_KIND = re.compile(r"^\s*(?:\(\w+(?:\.\w+)*\)\s*)?(?:[A-Za-z ]+ Error:\s*|ERROR:\s*)?")


def query_error(database_message: str) -> QueryError:
    """A store's error message as a `QueryError`: its first lines, without the store's echo of the
    SQL it ran (the transpiled text, not the user's), with a hint for the usual causes."""
    lines = []
    for line in database_message.strip().splitlines():
        if line.startswith(("LINE ", "[SQL:", "(Background on this error")) or line.strip().startswith("Candidate functions:"):
            break  # DuckDB's candidates: every overload of the function, hundreds of characters
        if line.strip():
            lines.append(line.strip())
    message = _ERROR_KIND.sub("", " ".join(lines))[:500] or "The query failed."
    unknown = _DUCKDB_UNKNOWN_COLUMN.match(message)
    qualified = _DUCKDB_UNKNOWN_QUALIFIED_COLUMN.match(message)
    if unknown or qualified:  # DuckDB's wording; PostgreSQL says `column "x" does not exist`
        if unknown:
            name, bare, candidates, table = unknown.group(1), unknown.group(1), unknown.group(2), None
        else:
            table, bare, candidates = qualified.group(1), qualified.group(3), qualified.group(4)
            name = f"{table}.{bare}" if qualified.group(2) == "named" else bare  # t.x as written; INSERT's (x) alone
        close = ", ".join(difflib.get_close_matches(bare, re.findall(r'"([^"]+)"', candidates or ""), n=3, cutoff=0.6))  # DuckDB offers some name even when none is close
        message = (
            f'Column "{name}" does not exist' + (f" in table {table}" if table and name == bare else "")
            + (f" (did you mean {close}?)" if close else ".")
        )
    zero = _DUCKDB_DIVISION_BY_ZERO.match(message)
    if zero:  # DuckDB names its own operator (// for /) and suggests settings a query cannot change
        message = f'Division by zero in "{zero.group(1).replace(" // ", " / ")}".'
    lowered = message.lower()
    if "division by zero" in lowered:
        hint = "Guard the divisor: a / NULLIF(b, 0) gives NULL where b is 0."
    elif "not found in from clause" in lowered or ("column" in lowered and "does not exist" in lowered):
        hint = "Check the column name; SELECT * FROM <table> LIMIT 0 lists a table's columns."
    elif "function" in lowered and ("does not exist" in lowered or "no function matches" in lowered):
        hint = "Check the function's name and argument types (PostgreSQL functions and DuckDB's)."
    elif "explicit cast" in lowered or "operator does not exist" in lowered:
        hint = "Compare values of one type: CAST one side (CAST(label AS TEXT) = '1') or write the value as the column's type (label = 1)."
    elif "conversion" in lowered or "could not convert" in lowered or "invalid input syntax" in lowered:
        hint = "Cast only values of that type, or use TRY_CAST(x AS type), which gives NULL where a cast fails."
    elif "permission" in lowered or "read-only" in lowered or "read only" in lowered:
        hint = "Queries read tables only; COPY loads files, and statements change tables and embeddings."
    else:
        hint = "Fix the query and run it again."
    return QueryError(message, hint=hint)


def view_no_longer_fits(view: str, table: str, why: str) -> DependentObjectsError:
    """A change of `table` refused because view `view` reads what the table would no longer have."""
    return DependentObjectsError(
        f"View {view!r} reads what table {table!r} would no longer have: {why}",
        hint=f"DROP VIEW {view} first (or CREATE OR REPLACE VIEW {view} without it), then run the statement again.",
    )


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
    # The MLflow run that logged the model version: a version number alone names other weights once
    # the model was deleted and built again (None in records written before it was kept).
    model_run: str | None = None

    def as_dict(self) -> dict[str, str]:
        record = {"collection": self.collection, "model_version": self.model_version, "image_col": self.image_col}
        return {**record, "model_run": self.model_run} if self.model_run else record


@dataclass(frozen=True)
class TableReplacement:
    """A table's new rows (an Arrow table, record batch reader or DataFrame), the columns to index,
    and the generations of the embedding columns it sets."""

    name: str
    data: Any
    index_on: tuple[str, ...] = ()
    generations: tuple[Generation, ...] = ()


def parse_generations(comment: str | None) -> dict[str, dict[str, str]]:
    """The generation record of a table comment: {embedding column: Generation.as_dict()}."""
    if not comment:
        return {}
    try:
        return dict(json.loads(comment).get(_RECORD_KEY, {}))
    except (ValueError, AttributeError):
        return {}


def generations_comment(generations: Mapping[str, Mapping[str, str]]) -> str | None:
    """The table comment recording `generations` (None: nothing to record)."""
    return json.dumps({_RECORD_KEY: dict(generations)}) if generations else None


def recorded_generations(
    current: Mapping[str, Mapping[str, str]], columns: Sequence[str], new: Sequence[Generation] = ()
) -> dict[str, Mapping[str, str]]:
    """What a replaced table records: its previous generations updated by `new`, for the columns it still has."""
    merged = {**current, **{generation.column: generation.as_dict() for generation in new}}
    return {column: generation for column, generation in merged.items() if column in columns}


# Per process and store location: table -> embedding column -> Generation (see `table_generations`).
_known_tables: dict[str, dict[str, dict[str, Generation]]] = {}
_known_tables_lock = threading.Lock()


class WarehouseResource(dg.ConfigurableResource):
    """A table store. Implementations say how to reach it and speak its SQL; the rest is shared."""

    @property
    @abstractmethod
    def dialect(self) -> str:
        """The sqlglot dialect queries are written in."""

    @property
    @abstractmethod
    def location(self) -> str:
        """The database file or URL, for messages and metadata."""

    @abstractmethod
    def query(self, sql: str, relations: Mapping[str, Any] | None = None, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one query in `dialect`, read-only: whatever its text, it changes no table and reads no
        file. `relations` are DataFrames or Arrow tables it may read by name, `parameters` the values
        of the named placeholders written with `parameter(name)`. A query the store cannot run
        raises `QueryError` with the store's reason (no position: the caller knows the user's text)."""

    def table_rows(self, name: str) -> Any:
        """Every row of table `name` as an Arrow table, for writing it back with a column changed:
        its columns keep the store's types (an embedding column its fixed size, where the store has one)."""
        import pyarrow as pa

        return pa.Table.from_pandas(self.query(f"SELECT * FROM {quote(name)}"), preserve_index=False)

    @abstractmethod
    def parameter(self, name: str) -> str:
        """The placeholder text of the named parameter `name` in a statement passed to `query`."""

    def inner_product(self, vectors: exp.Expression, parameter: str, dim: int) -> exp.Expression | None:
        """An expression of the dot product (as DOUBLE, NULL where there is no vector) of an
        embedding column with the vector passed as the named parameter `parameter`, computed by the
        store; None when the store cannot (the caller computes it from the vectors)."""
        return None

    @abstractmethod
    def columns_except(self, alias: str, columns: Sequence[str], relation_sql: str) -> str:
        """A select list of every column of the relation `alias` but `columns` (`relation_sql` defines it)."""

    @abstractmethod
    def generation_expression(self, table: str) -> exp.Expression:
        """A scalar subquery giving `table`'s comment: selected by a query that reads the table, it is
        read in the same snapshot as the rows (one statement), for `check_generation`."""

    def replace_table(self, name: str, data: Any, index_on: Sequence[str] = (), generations: Sequence[Generation] = ()) -> int:
        """Create or atomically replace `name` with an Arrow table, record batch reader or DataFrame,
        indexing `index_on`.

        `generations` record, in the same transaction, which collection and model version the
        embedding columns they name come from (other embedding columns keep theirs). Returns the row count.
        """
        return self.replace_tables([TableReplacement(name, data, tuple(index_on), tuple(generations))])[0]

    @abstractmethod
    def replace_tables(self, replacements: Sequence[TableReplacement]) -> list[int]:
        """`replace_table` for several tables in one transaction (all of them or none); their row counts."""

    @abstractmethod
    def drop(self, tables: Sequence[str] = (), columns: Mapping[str, Sequence[str]] | None = None, views: Sequence[str] = ()) -> None:
        """In one transaction: drop `views`, then `tables`, and from other tables the columns
        `columns` names (table -> columns), with their generation records; rows and other columns stay."""

    @abstractmethod
    def change(self, sql: str, table: str) -> int:
        """Run one statement in `dialect` that changes `table` (or the view of that name): INSERT,
        UPDATE, DELETE, CREATE TABLE [AS], ALTER TABLE, CREATE VIEW, in a transaction of its own,
        as the store's writer; the number of rows it changed (-1 when the statement does not say).
        A statement the store refuses raises `QueryError` with the store's reason."""

    @abstractmethod
    def views(self) -> dict[str, str]:
        """Every view of the store: name -> its defining query."""

    @abstractmethod
    def _table_comments(self) -> list[tuple[str, str | None]]:
        """(table, comment) for every table of the store."""

    # -- shared -------------------------------------------------------------------------------

    @contextmanager
    def held(self) -> Iterator[int | None]:
        """Hold the store for a moment of reads. Yields an epoch: a number that stays the same for
        as long as no table of the store can have changed (this process holds the store and has
        written nothing since), so what was read in one epoch may be kept and reused in it; or
        None, when the store makes no such promise (other processes write it at any time)."""
        yield None

    def table_generations(self, fresh: bool = False) -> dict[str, dict[str, Generation]]:
        """Every table, with its embedding columns and the collection and model version behind each.

        Kept per process until this process changes a table or `fresh` is asked for: readers
        check what they used against the table in the statement that reads it (`check_generation`)
        and ask again when it changed, so an answer from another process's old state never shows.
        """
        cached = _known_tables.get(self.location)
        if cached is not None and not fresh:
            return cached
        tables = {
            table: {column: Generation(table=table, column=column, **value) for column, value in parse_generations(comment).items()}
            for table, comment in self._table_comments()
        }
        with _known_tables_lock:
            _known_tables[self.location] = tables
        return tables

    def _forget_tables(self) -> None:
        with _known_tables_lock:
            _known_tables.pop(self.location, None)

    def check_generation(self, comment: str | None, expected: Generation) -> None:
        """Raise `StaleGeneration` unless `comment` (None: read it now) still records `expected`."""
        if comment is None:
            current = self.table_generations(fresh=True).get(expected.table, {}).get(expected.column)
            recorded = current.as_dict() if current else None
        else:
            recorded = parse_generations(comment).get(expected.column)
        if recorded != expected.as_dict():
            raise StaleGeneration(f"{expected.table}.{expected.column} was switched while a query read it")

    def tables(self) -> list[str]:
        return sorted(self.table_generations(fresh=True))

    def table_exists(self, name: str) -> bool:
        return name in self.table_generations(fresh=True)

    def relations(self) -> set[str]:
        """The names a query may read: tables and views."""
        return set(self.table_generations(fresh=True)) | set(self.views())

    def query_from(self, sql: str, dialect: str) -> pd.DataFrame:
        """Run a query written in another sqlglot dialect (a spec's), transpiled to this store's."""
        if dialect != self.dialect:
            sql = sqlglot.transpile(sql, read=dialect, write=self.dialect)[0]
        return self.query(sql)

    def query_columns(self, sql: str) -> list[str]:
        """The column names of a query's rows (reads none of them)."""
        return [str(column) for column in self.query(f"SELECT * FROM ({sql}) AS probe LIMIT 0").columns]

    def columns(self, name: str) -> list[str]:
        return self.query_columns(f"SELECT * FROM {quote(name)}")

    def preview(self, name: str, limit: int = 5) -> pd.DataFrame:
        return self.query(f"SELECT * FROM {quote(name)} LIMIT {int(limit)}")


def array_columns(frame: pd.DataFrame) -> dict[str, np.dtype]:
    """Columns whose values are arrays (numpy arrays or lists), with the dtype of their elements
    (object for text), judged by their first non-null value."""
    arrays = {}
    for position, column in enumerate(frame.columns):
        series = frame.iloc[:, position]
        values = series.dropna() if series.dtype == object else ()
        if len(values) and isinstance(values.iloc[0], (np.ndarray, list)):
            arrays[column] = _element_dtype(values.iloc[0])
    return arrays


def typed_array(values: Sequence[Any], dtype: Any) -> np.ndarray:
    """`values` (a list of array elements) as a numpy array of `dtype`; NULL (None) elements
    become NaN in float arrays, and make integer, boolean and text arrays arrays of objects
    (integers cannot hold a NULL, and numpy would read it as False)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f" and any(value is None for value in values):
        return np.array(list(values), dtype=object)
    return np.asarray(values, dtype=dtype)


def _element_dtype(array: np.ndarray | list) -> np.dtype:
    """The numpy dtype of an array's elements; for an array of objects (one with NULL elements),
    that of its other elements when they are all integers, booleans or floats."""
    dtype = array.dtype if isinstance(array, np.ndarray) else np.asarray(array).dtype
    if dtype.kind in "US":  # text of any length
        return np.dtype(object)
    if dtype.kind != "O":
        return dtype
    present = [value for value in array if value is not None]
    for kind, types in ((np.bool_, (bool, np.bool_)), (np.int64, (int, np.integer)), (np.float64, (float, np.floating))):
        if present and all(isinstance(value, types) for value in present):
            return np.dtype(kind)
    return np.dtype(object)


def vector_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose values are vectors of numbers (embeddings): arrays of floats."""
    return [column for column, dtype in array_columns(frame).items() if dtype.kind == "f"]


def unique_column_names(names: Sequence[str]) -> list[str]:
    """Result column names made unique as DuckDB makes them (`count, count` -> `count, count_1`;
    case-insensitively), so that both stores answer `SELECT count(*), count(x)` alike."""
    taken: dict[str, int] = {}
    unique = []
    for name in names:
        lowered = name.lower()
        if lowered in taken:
            candidate = f"{name}_{taken[lowered]}"
            while candidate.lower() in taken:
                taken[lowered] += 1
                candidate = f"{name}_{taken[lowered]}"
            name = candidate
        taken[name.lower()] = taken.get(name.lower(), 0) + 1
        unique.append(name)
    return unique
