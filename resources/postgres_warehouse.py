"""Tables in PostgreSQL (production mode), with the interface of the DuckDB table store.

Queries are the same ThanoSQL SELECTs, transpiled by sqlglot to PostgreSQL. Embedding columns
are `real[]`; the embedding generation of each column (collection and model version) is the
table's comment, written in the same transaction that replaces the table, so readers see rows
and generation together. DataFrames a query reads by name (SEARCH results, CONVERT subqueries)
become temporary tables of the query's own connection.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from resources.warehouse import CandidatesStatement, Generation, StaleGeneration, _parse_comment, quote, sql_string

_COMMENT_KEY = "thanosql_embeddings"
_engines: dict[str, sa.Engine] = {}
_known_tables: dict[str, dict[str, dict[str, Generation]]] = {}
_lock = threading.Lock()


def _engine(url: str) -> sa.Engine:
    with _lock:
        if url not in _engines:
            _engines[url] = sa.create_engine(url, pool_pre_ping=True)
        return _engines[url]


def _vector_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose values are vectors (numpy arrays or lists), judged by their first non-null value."""
    vectors = []
    for column in frame.columns:
        values = frame[column].dropna() if frame[column].dtype == object else ()
        if len(values) and isinstance(values.iloc[0], (np.ndarray, list)):
            vectors.append(column)
    return vectors


def _to_sql_frame(data: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A DataFrame ready for to_sql: vectors as lists of floats typed real[]."""
    from sqlalchemy.dialects.postgresql import ARRAY, REAL

    frame = data.to_pandas() if hasattr(data, "to_pandas") else data.copy()
    types = {}
    for column in _vector_columns(frame):
        # Rows without an embedding (NULL, or NaN after a pandas join) stay NULL.
        frame[column] = [[float(x) for x in v] if isinstance(v, (list, np.ndarray)) else None for v in frame[column]]
        types[column] = ARRAY(REAL)
    return frame, types


def _from_sql_frame(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, list)).any():
            frame[column] = [None if v is None else np.asarray(v, dtype=np.float32) for v in frame[column]]
    return frame


class PostgresWarehouseResource(dg.ConfigurableResource):
    """Tables in a PostgreSQL database (`url`: postgresql+psycopg2://...)."""

    url: str
    schema_name: str = "public"

    @property
    def dialect(self) -> str:
        return "postgres"

    @property
    def path(self) -> str:
        return self.url

    def _engine(self) -> sa.Engine:
        return _engine(self.url)

    def _forget_tables(self) -> None:
        _known_tables.pop(self.url, None)

    def tables(self) -> list[str]:
        return sorted(self.table_generations(fresh=True))

    def table_exists(self, name: str) -> bool:
        return name in self.table_generations(fresh=True)

    def columns(self, name: str) -> list[str]:
        with self._engine().connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = :schema AND table_name = :name ORDER BY ordinal_position"
                ),
                {"schema": self.schema_name, "name": name},
            ).all()
        return [row[0] for row in rows]

    def row_count(self, name: str) -> int:
        with self._engine().connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {quote(name)}")).scalar_one()

    def preview(self, name: str, limit: int = 5) -> pd.DataFrame:
        return self.query(f"SELECT * FROM {quote(name)} LIMIT {int(limit)}")

    def query(self, sql: str, relations: Mapping[str, Any] | None = None, parameters: Any = None) -> pd.DataFrame:
        """Run a PostgreSQL query; `relations` (DataFrames) become temporary tables it may read by name."""
        with self._engine().begin() as conn:
            for name, data in (relations or {}).items():
                frame, types = _to_sql_frame(data)
                frame.to_sql(name, conn, if_exists="replace", index=False, dtype=types, method="multi", chunksize=1000)
            raw = conn.connection.cursor()
            try:
                raw.execute(sql, parameters)
                columns = [column[0] for column in raw.description]
                rows = raw.fetchall()
            finally:
                raw.close()
            for name in relations or {}:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote(name)}"))
        return _from_sql_frame(pd.DataFrame(rows, columns=columns))

    def candidates_statement(self, statement: CandidatesStatement) -> str:
        key = quote(statement.key)
        similarity = [quote(column) for column in statement.similarity_columns]
        # PostgreSQL has no SELECT * EXCLUDE: name the inner query's columns.
        inner_columns = [c for c in self._inner_columns(statement) if c != statement.key]
        inner_sql, outer_sql = statement.inner_sql.replace("%", "%%"), statement.outer_sql.replace("%", "%%")  # pyformat parameters
        return (
            f"WITH {statement.candidates} AS (SELECT * FROM {quote(statement.table)} WHERE {quote(statement.image_col)} = ANY(%(keys)s)), "
            f"__thanosql_scores AS (SELECT * FROM unnest(%(keys)s::text[], "
            + ", ".join(f"%(s{n})s::float8[]" for n in range(len(similarity)))
            + f") AS t({key}, {', '.join(similarity)})), "
            f"{statement.relation} AS (SELECT {', '.join('i.' + quote(c) for c in inner_columns)}, {', '.join('s.' + c for c in similarity)} "
            f"FROM ({inner_sql}) i JOIN __thanosql_scores s ON i.{key} = s.{key}) "
            f"{outer_sql}"
        )

    def _inner_columns(self, statement: CandidatesStatement) -> list[str]:
        probe = f"WITH {statement.candidates} AS (SELECT * FROM {quote(statement.table)} LIMIT 0) SELECT * FROM ({statement.inner_sql}) i LIMIT 0"
        return list(self.query(probe).columns)

    def candidates_parameters(self, keys: list[str], scores: list[list[float | None]]) -> dict[str, Any]:
        return {"keys": keys, **{f"s{n}": values for n, values in enumerate(scores)}}

    def table_generations(self, fresh: bool = False) -> dict[str, dict[str, Generation]]:
        cached = _known_tables.get(self.url)
        if cached is not None and not fresh:
            return cached
        with self._engine().connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :schema AND c.relkind = 'r'"
                ),
                {"schema": self.schema_name},
            ).all()
        _known_tables[self.url] = {
            table: {column: Generation(table=table, column=column, **value) for column, value in _parse_comment(comment).items()}
            for table, comment in rows
        }
        return _known_tables[self.url]

    def generation_expression(self, table: str) -> exp.Expression:
        return sqlglot.parse_one(
            f"(SELECT obj_description(to_regclass({sql_string(quote(self.schema_name) + '.' + quote(table))}), 'pg_class'))",
            read="postgres",
        )

    def check_generation(self, comment: str | None, expected: Generation) -> None:
        if comment is None:
            current = self.table_generations(fresh=True).get(expected.table, {}).get(expected.column)
            current = current.as_dict() if current else None
        else:
            current = _parse_comment(comment).get(expected.column)
        if current != expected.as_dict():
            raise StaleGeneration(f"{expected.table}.{expected.column} was switched while a query read it")

    def replace_table_from_csv(self, name: str, csv_paths: Sequence[Path]) -> int:
        """Create or atomically replace `name` with the rows of CSV files, keeping the vectors of
        images still in it (as the DuckDB store does)."""
        frame = pd.concat([pd.read_csv(path) for path in csv_paths], ignore_index=True)
        current = self.table_generations(fresh=True).get(name, {})
        carried = {column: g for column, g in current.items() if g.image_col in frame.columns}
        if carried:
            old = self.query(f"SELECT * FROM {quote(name)}")
            for column, generation in carried.items():
                vectors = old.drop_duplicates(generation.image_col).set_index(generation.image_col)[column]
                frame[column] = frame[generation.image_col].map(vectors)
        return self._replace(name, frame, sorted({g.image_col for g in carried.values()}), {c: g.as_dict() for c, g in carried.items()})

    def replace_table(self, name: str, data: Any, index_on: Sequence[str] = (), generation: Generation | None = None) -> int:
        generations = {c: g.as_dict() for c, g in self.table_generations(fresh=True).get(name, {}).items()}
        if generation is not None:
            generations[generation.column] = generation.as_dict()
        frame = data.to_pandas() if hasattr(data, "to_pandas") else data
        generations = {c: g for c, g in generations.items() if c in frame.columns}
        return self._replace(name, frame, index_on, generations)

    def _replace(self, name: str, frame: pd.DataFrame, index_on: Sequence[str], generations: dict) -> int:
        """Write to a staging table, then swap it in and set its comment in one transaction."""
        self._forget_tables()
        staging = f"__thanosql_staging_{name}"
        rows, types = _to_sql_frame(frame)
        with self._engine().begin() as conn:
            rows.to_sql(staging, conn, if_exists="replace", index=False, dtype=types, method="multi", chunksize=1000)
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote(name)}"))
            conn.execute(sa.text(f"ALTER TABLE {quote(staging)} RENAME TO {quote(name)}"))
            for column in index_on:
                conn.execute(sa.text(f"CREATE INDEX ON {quote(name)} ({quote(column)})"))
            comment = json.dumps({_COMMENT_KEY: generations}) if generations else None
            conn.execute(sa.text(f"COMMENT ON TABLE {quote(name)} IS {sql_string(comment) if comment else 'NULL'}"))
        self._forget_tables()
        return len(rows)
