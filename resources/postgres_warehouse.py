"""Tables in PostgreSQL (production mode).

Embedding columns are `real[]`; the generation record is the table's comment, written in the
same transaction that replaces the table. DataFrames a query reads by name (SEARCH results,
CONVERT subqueries) become temporary tables of the query's own connection.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from resources.warehouse import (
    Generation,
    WarehouseResource,
    generations_comment,
    quote,
    recorded_generations,
    sql_string,
    vector_columns,
)

_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()


def _engine(url: str) -> sa.Engine:
    with _lock:
        if url not in _engines:
            _engines[url] = sa.create_engine(url, pool_pre_ping=True)
        return _engines[url]


def _to_sql_frame(data: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A DataFrame ready for to_sql: vectors as lists of floats typed real[]."""
    from sqlalchemy.dialects.postgresql import ARRAY, REAL

    frame = data.to_pandas() if hasattr(data, "to_pandas") else data.copy()
    types = {}
    for column in vector_columns(frame):
        # Rows without an embedding (NULL, or NaN after a pandas join) stay NULL.
        frame[column] = [[float(x) for x in v] if isinstance(v, (list, np.ndarray)) else None for v in frame[column]]
        types[column] = ARRAY(REAL)
    return frame, types


def _from_sql_frame(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, list)).any():
            frame[column] = [None if v is None else np.asarray(v, dtype=np.float32) for v in frame[column]]
    return frame


def _pyformat(sql: str, names: Sequence[str]) -> str:
    """`sql` for psycopg2's pyformat parameters: literal % doubled, the named placeholders kept."""
    escaped = sql.replace("%", "%%")
    if not names:
        return escaped
    return re.sub(r"%%\((" + "|".join(map(re.escape, names)) + r")\)s", r"%(\1)s", escaped)


class PostgresWarehouseResource(WarehouseResource):
    """Tables in a PostgreSQL database (`url`: postgresql+psycopg2://...)."""

    url: str
    schema_name: str = "public"

    @property
    def dialect(self) -> str:
        return "postgres"

    @property
    def location(self) -> str:
        return self.url

    def query(self, sql: str, relations: Mapping[str, Any] | None = None, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        with _engine(self.url).begin() as conn:
            for name, data in (relations or {}).items():
                frame, types = _to_sql_frame(data)
                frame.to_sql(name, conn, if_exists="replace", index=False, dtype=types, method="multi", chunksize=1000)
            raw = conn.connection.cursor()
            try:
                if parameters:
                    raw.execute(_pyformat(sql, list(parameters)), dict(parameters))
                else:
                    raw.execute(sql)
                columns = [column[0] for column in raw.description]
                rows = raw.fetchall()
            finally:
                raw.close()
            for name in relations or {}:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote(name)}"))
        return _from_sql_frame(pd.DataFrame(rows, columns=columns))

    def parameter(self, name: str) -> str:
        return f"%({name})s"

    def columns_except(self, alias: str, column: str, relation_sql: str) -> str:
        # PostgreSQL has no SELECT * EXCLUDE: name the relation's columns.
        names = [name for name in self.query_columns(relation_sql) if name != column]
        return ", ".join(f"{alias}.{quote(name)}" for name in names)

    def _table_comments(self) -> list[tuple[str, str | None]]:
        with _engine(self.url).connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    sa.text(
                        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = :schema AND c.relkind = 'r'"
                    ),
                    {"schema": self.schema_name},
                ).all()
            ]

    def generation_expression(self, table: str) -> exp.Expression:
        return sqlglot.parse_one(
            f"(SELECT obj_description(to_regclass({sql_string(quote(self.schema_name) + '.' + quote(table))}), 'pg_class'))",
            read="postgres",
        )

    def replace_table_from_csv(self, name: str, csv_paths: Sequence[Path]) -> int:
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
        current = {c: g.as_dict() for c, g in self.table_generations(fresh=True).get(name, {}).items()}
        frame = data.to_pandas() if hasattr(data, "to_pandas") else data
        return self._replace(name, frame, index_on, recorded_generations(current, list(frame.columns), generation))

    def _replace(self, name: str, frame: pd.DataFrame, index_on: Sequence[str], generations: Mapping[str, Any]) -> int:
        """Write to a staging table, then swap it in and set its comment in one transaction."""
        self._forget_tables()
        staging = f"__thanosql_staging_{name}"
        rows, types = _to_sql_frame(frame)
        with _engine(self.url).begin() as conn:
            rows.to_sql(staging, conn, if_exists="replace", index=False, dtype=types, method="multi", chunksize=1000)
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote(name)}"))
            conn.execute(sa.text(f"ALTER TABLE {quote(staging)} RENAME TO {quote(name)}"))
            for column in index_on:
                conn.execute(sa.text(f"CREATE INDEX ON {quote(name)} ({quote(column)})"))
            comment = generations_comment(generations)
            conn.execute(sa.text(f"COMMENT ON TABLE {quote(name)} IS {sql_string(comment) if comment else 'NULL'}"))
        self._forget_tables()
        return len(rows)
