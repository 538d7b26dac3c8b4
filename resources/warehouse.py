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

import json
import threading
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp

_RECORD_KEY = "thanosql_embeddings"


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
    current: Mapping[str, Mapping[str, str]], columns: Sequence[str], new: Generation | None = None
) -> dict[str, Mapping[str, str]]:
    """What a replaced table records: its previous generations plus `new`, for the columns it still has."""
    merged = {**current, **({new.column: new.as_dict()} if new else {})}
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
        """Run one statement in `dialect`; `relations` are DataFrames or Arrow tables it may read by name,
        `parameters` the values of the named placeholders written with `parameter(name)`."""

    @abstractmethod
    def parameter(self, name: str) -> str:
        """The placeholder text of the named parameter `name` in a statement passed to `query`."""

    @abstractmethod
    def columns_except(self, alias: str, column: str, relation_sql: str) -> str:
        """A select list of every column of the relation `alias` but `column` (`relation_sql` defines it)."""

    @abstractmethod
    def generation_expression(self, table: str) -> exp.Expression:
        """A scalar subquery giving `table`'s comment: selected by a query that reads the table, it is
        read in the same snapshot as the rows (one statement), for `check_generation`."""

    @abstractmethod
    def replace_table_from_csv(self, name: str, csv_paths: Sequence[Path]) -> int:
        """Create or atomically replace `name` with the rows of CSV files (header rows first), in order.

        Embedding columns of the table it replaces are carried over for the images still in it
        (new images get NULL until their embeddings are computed), so SEARCH keeps working on a
        table while COPY adds rows to it. Returns the row count.
        """

    @abstractmethod
    def replace_table(self, name: str, data: Any, index_on: Sequence[str] = (), generation: Generation | None = None) -> int:
        """Create or atomically replace `name` with an Arrow table or DataFrame, indexing `index_on`.

        `generation` records, in the same transaction, which collection and model version the
        embedding column it names comes from (other embedding columns keep theirs). Returns the row count.
        """

    @abstractmethod
    def _table_comments(self) -> list[tuple[str, str | None]]:
        """(table, comment) for every table of the store."""

    # -- shared -------------------------------------------------------------------------------

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


def vector_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose values are vectors (numpy arrays or lists), judged by their first non-null value."""
    vectors = []
    for column in frame.columns:
        values = frame[column].dropna() if frame[column].dtype == object else ()
        if len(values) and isinstance(values.iloc[0], (np.ndarray, list)):
            vectors.append(column)
    return vectors
