"""Tables in PostgreSQL (production mode).

Embedding columns are `real[]`; the generation record is the table's comment, written in the
same transaction that replaces the table. DataFrames a query reads by name (SEARCH results,
CONVERT subqueries) become temporary tables of the query's own connection.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from resources.warehouse import (
    Generation,
    TableReplacement,
    WarehouseResource,
    array_columns,
    generations_comment,
    query_error,
    quote,
    recorded_generations,
    sql_string,
    typed_array,
    unique_column_names,
    view_no_longer_fits,
)
from thanosql.errors import ThanoSQLError

_engines: dict[str, sa.Engine] = {}
_readers: set[str] = set()  # URLs whose read-only role is set up
_lock = threading.Lock()


def _engine(url: str) -> sa.Engine:
    with _lock:
        if url not in _engines:
            _engines[url] = sa.create_engine(url, pool_pre_ping=True)
        return _engines[url]


def _end(conn: sa.Connection, transaction: sa.RootTransaction) -> None:
    """Roll the query's transaction back and release what a query may hold past it (advisory locks)."""
    try:
        transaction.rollback()
        conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        conn.commit()
    except sa.exc.DBAPIError:
        conn.invalidate()  # a broken connection is not given back to the pool


def _unavailable(url: str, error: sa.exc.OperationalError) -> ThanoSQLError:
    return ThanoSQLError(
        f"The table store is unavailable: {str(error.orig).strip().splitlines()[0]}",
        hint=f"Check that PostgreSQL at {sa.engine.make_url(url).render_as_string(hide_password=True)} runs and accepts connections.",
    )


def _to_sql_frame(data: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A DataFrame ready for to_sql: vectors as lists of floats typed real[]."""
    from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, BOOLEAN, REAL, TEXT

    frame = data.to_pandas() if hasattr(data, "to_pandas") else data.copy()
    types = {}
    for column, dtype in array_columns(frame).items():
        # Rows without an array (NULL, or NaN after a pandas join) stay NULL; psycopg2 sends lists, not numpy arrays.
        if dtype.kind == "f":  # embeddings
            frame[column] = [[float(x) for x in v] if isinstance(v, (list, np.ndarray)) else None for v in frame[column]]
        else:
            frame[column] = [v.tolist() if isinstance(v, np.ndarray) else v if isinstance(v, list) else None for v in frame[column]]
        types[column] = ARRAY({"f": REAL, "i": BIGINT, "u": BIGINT, "b": BOOLEAN}.get(dtype.kind, TEXT))
    return frame, types


# PostgreSQL type OIDs of result columns that pandas would not type as DuckDB does: arrays (the
# numpy dtype of their elements; object for text and the rest) and dates and timestamps.
_ARRAY_ELEMENTS = {1000: np.bool_, 1005: np.int16, 1007: np.int32, 1016: np.int64, 1021: np.float32, 1022: np.float64}
_ARRAY_TYPES = {*_ARRAY_ELEMENTS, 1009, 1015, 1014, 1231, 1182, 1115, 1185}
_DATETIMES = {1082, 1114, 1184}
_NUMERIC = 1700  # sum() of a bigint, avg(), decimal arithmetic: Decimal objects, where DuckDB gives floats


def _from_sql_frame(rows: list[tuple], description: Sequence[Any]) -> pd.DataFrame:
    """A query's rows as DuckDB gives them: duplicate column names made unique, arrays as numpy
    arrays of their elements' type (real[] embeddings as float32), dates as datetime64, numerics as floats."""
    frame = pd.DataFrame(rows, columns=unique_column_names([column[0] for column in description]))
    for column, (_, type_code, *_rest) in zip(frame.columns, description):
        if type_code in _ARRAY_TYPES:
            dtype = _ARRAY_ELEMENTS.get(type_code, object)
            frame[column] = [None if v is None else typed_array(v, dtype) for v in frame[column]]
        elif type_code in _DATETIMES and len(frame):
            frame[column] = pd.to_datetime(frame[column], utc=type_code == 1184)
        elif type_code == _NUMERIC:
            frame[column] = np.array([np.nan if v is None else float(v) for v in frame[column]], dtype=np.float64)
    return frame


# The views that read a table, directly or through other views, each once, bases first.
_DEPENDENT_VIEWS = sa.text(
    """
    WITH RECURSIVE dependents(oid, depth) AS (
        SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.refobjid = to_regclass(:table) AND r.ev_class <> d.refobjid
      UNION
        SELECT r.ev_class, dependents.depth + 1 FROM dependents
        JOIN pg_depend d ON d.refobjid = dependents.oid JOIN pg_rewrite r ON r.oid = d.objid
        WHERE r.ev_class <> d.refobjid AND dependents.depth < 50
    )
    SELECT c.relname, pg_get_viewdef(c.oid), max(dependents.depth) AS depth
    FROM dependents JOIN pg_class c ON c.oid = dependents.oid
    WHERE c.relkind = 'v' GROUP BY c.relname, c.oid ORDER BY depth, c.relname
    """
)


@lru_cache(maxsize=256)
def _generation_expression(schema: str, table: str) -> exp.Expression:
    """Parsed once per table: queries put it in every statement that reads an embedding column."""
    return sqlglot.parse_one(
        f"(SELECT obj_description(to_regclass({sql_string(quote(schema) + '.' + quote(table))}), 'pg_class'))", read="postgres"
    )


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
    # Queries run read-only as `reader_role`: by logging in as it (`reader_url`, production), or
    # by switching to it from the warehouse user (created when missing).
    reader_url: str | None = None
    reader_role: str = "thanosql_reader"
    query_timeout_s: float = 300.0

    @property
    def dialect(self) -> str:
        return "postgres"

    @property
    def location(self) -> str:
        return self.url

    def query(self, sql: str, relations: Mapping[str, Any] | None = None, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        self._ensure_reader(_engine(self.url))
        engine = _engine(self.reader_url or self.url)
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                for name, data in (relations or {}).items():
                    # Temporary tables of this transaction: concurrent queries do not share names.
                    frame, types = _to_sql_frame(data)
                    frame.to_sql(name, conn, schema="pg_temp", index=False, dtype=types, method="multi", chunksize=1000)
                    if not self.reader_url:
                        conn.execute(sa.text(f"GRANT SELECT ON pg_temp.{quote(name)} TO {quote(self.reader_role)}"))
                if not self.reader_url:
                    # The warehouse user may be a superuser: the query runs as the reader role. A
                    # query could switch back (set_config('role', ...)), which the planner refuses;
                    # a reader login (`reader_url`) has nothing to switch back to.
                    conn.execute(sa.text(f"SET LOCAL ROLE {quote(self.reader_role)}"))
                conn.execute(sa.text("SET LOCAL transaction_read_only = on"))
                conn.execute(sa.text(f"SET LOCAL statement_timeout = {int(self.query_timeout_s * 1000)}"))
                raw = conn.connection.cursor()
                try:
                    raw.execute(_pyformat(sql, list(parameters)) if parameters else sql, dict(parameters) if parameters else None)
                    description = raw.description
                    rows = raw.fetchall()
                finally:
                    raw.close()
            except sa.exc.OperationalError as error:
                conn.invalidate()
                raise _unavailable(self.reader_url or self.url, error) from None
            except sa.exc.DBAPIError as error:
                raise query_error(str(error.orig)) from None
            except psycopg2.Error as error:
                raise query_error(str(error)) from None
            finally:
                _end(conn, transaction)
        return _from_sql_frame(rows, description)

    def _ensure_reader(self, engine: sa.Engine) -> None:
        """Give the reader role SELECT on every table (once per process), creating it when missing
        (a NOLOGIN role the warehouse user switches to, unless `reader_url` logs in as it)."""
        if self.url in _readers:
            return
        role = quote(self.reader_role)
        for attempt in range(2):  # a second try when another process set it up at the same moment
            try:
                with engine.begin() as conn:
                    exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": self.reader_role}).first()
                    if not exists:
                        conn.execute(sa.text(f"CREATE ROLE {role} NOLOGIN"))
                    member = conn.execute(sa.text("SELECT pg_has_role(current_user, :role, 'MEMBER')"), {"role": self.reader_role}).scalar()
                    if not self.reader_url and not member:
                        conn.execute(sa.text(f"GRANT {role} TO CURRENT_USER"))
                    conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {quote(self.schema_name)} TO {role}"))
                    conn.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote(self.schema_name)} TO {role}"))
                break
            except sa.exc.DBAPIError as error:
                if attempt == 0:
                    continue
                raise ThanoSQLError(
                    f"Could not set up the read-only role {self.reader_role!r} that queries run as: {str(error.orig).strip()}",
                    hint=f"As a PostgreSQL administrator: CREATE ROLE {role} NOLOGIN; GRANT {role} TO <the warehouse user>.",
                ) from None
        _readers.add(self.url)

    def parameter(self, name: str) -> str:
        return f"%({name})s"

    def columns_except(self, alias: str, columns: Sequence[str], relation_sql: str) -> str:
        # PostgreSQL has no SELECT * EXCLUDE: name the relation's columns.
        names = [name for name in self.query_columns(relation_sql) if name not in columns]
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
        return _generation_expression(self.schema_name, table).copy()

    def replace_tables(self, replacements: Sequence[TableReplacement]) -> list[int]:
        """Write each table's rows to a staging table, then swap them all in, with their indexes and
        comments, in one transaction."""
        self._forget_tables()
        self._ensure_reader(_engine(self.url))
        recorded = self.table_generations(fresh=True)
        try:
            with _engine(self.url).begin() as conn:
                return [self._replace(conn, replacement, recorded.get(replacement.name, {})) for replacement in replacements]
        finally:
            self._forget_tables()

    def change(self, sql: str, table: str) -> int:
        self._forget_tables()
        engine = _engine(self.url)
        self._ensure_reader(engine)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"SET LOCAL statement_timeout = {int(self.query_timeout_s * 1000)}"))
                raw = conn.connection.cursor()
                try:
                    raw.execute(sql)
                    changed = raw.rowcount
                finally:
                    raw.close()
                kind = conn.execute(sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": self._qualified(table)}).scalar()
                if kind is not None:
                    conn.execute(sa.text(f"GRANT SELECT ON {self._qualified(table)} TO {quote(self.reader_role)}"))
                if kind == "v":
                    conn.execute(sa.text(f"SELECT count(*) FROM {self._qualified(table)}"))  # a view its rows cannot be read from is not made
        except sa.exc.OperationalError as error:
            raise _unavailable(self.url, error) from None
        except sa.exc.DBAPIError as error:
            raise query_error(str(error.orig)) from None
        except psycopg2.Error as error:
            raise query_error(str(error)) from None
        finally:
            self._forget_tables()
        return changed

    @contextmanager
    def _views_set_aside(self, conn: sa.Connection, table: str) -> Iterator[None]:
        """PostgreSQL binds a view to the table it reads: the views reading `table` are dropped for
        the block and made again after it from their definitions (in the same transaction), so the
        table can be replaced or lose a column that no view reads."""
        views = [(name, definition) for name, definition, _ in conn.execute(_DEPENDENT_VIEWS, {"table": self._qualified(table)}).all()]
        for name, _ in reversed(views):
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {quote(self.schema_name)}.{quote(name)}"))
        yield
        for name, definition in views:
            try:
                with conn.begin_nested():
                    conn.execute(sa.text(f"CREATE VIEW {quote(self.schema_name)}.{quote(name)} AS {definition.rstrip().rstrip(';')}"))
            except sa.exc.DBAPIError as error:
                raise view_no_longer_fits(name, table, str(error.orig).strip().splitlines()[0]) from None
            conn.execute(sa.text(f"GRANT SELECT ON {quote(self.schema_name)}.{quote(name)} TO {quote(self.reader_role)}"))

    def _qualified(self, table: str) -> str:
        return quote(self.schema_name) + "." + quote(table)

    def views(self) -> dict[str, str]:
        with _engine(self.url).connect() as conn:
            rows = conn.execute(sa.text("SELECT viewname, definition FROM pg_views WHERE schemaname = :schema"), {"schema": self.schema_name})
            return {name: definition for name, definition in rows}

    def drop(self, tables: Sequence[str] = (), columns: Mapping[str, Sequence[str]] | None = None, views: Sequence[str] = ()) -> None:
        self._forget_tables()
        current = {table: {c: g.as_dict() for c, g in recorded.items()} for table, recorded in self.table_generations(fresh=True).items()}
        try:
            with _engine(self.url).begin() as conn:
                self._drop(conn, tables, columns or {}, views, current)
        except sa.exc.DBAPIError as error:
            raise query_error(str(error.orig)) from None
        finally:
            self._forget_tables()

    def _drop(self, conn: sa.Connection, tables: Sequence[str], columns: Mapping[str, Sequence[str]], views: Sequence[str], current) -> None:
        for name in reversed(views):  # the planner lists a view before the views that read it
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {self._qualified(name)}"))
        for name in tables:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {self._qualified(name)}"))
        for name, dropped in columns.items():
            existing = [
                row[0]
                for row in conn.execute(
                    sa.text("SELECT column_name FROM information_schema.columns WHERE table_schema = :schema AND table_name = :table"),
                    {"schema": self.schema_name, "table": name},
                )
            ]
            if not existing:
                continue
            with self._views_set_aside(conn, name):
                for column in (column for column in dropped if column in existing):
                    conn.execute(sa.text(f"ALTER TABLE {self._qualified(name)} DROP COLUMN {quote(column)}"))
            kept = [column for column in existing if column not in dropped]
            comment = generations_comment(recorded_generations(current.get(name, {}), kept))
            conn.execute(sa.text(f"COMMENT ON TABLE {self._qualified(name)} IS {sql_string(comment) if comment else 'NULL'}"))

    def _replace(self, conn: sa.Connection, replacement: TableReplacement, current: Mapping[str, Generation]) -> int:
        """Within `conn`'s transaction: write the rows to a staging table, swap it in, index it, set its comment."""
        name, data = replacement.name, replacement.data
        if hasattr(data, "read_all"):  # a record batch reader: to_sql writes from one frame
            data = data.read_all()
        frame = data.to_pandas() if hasattr(data, "to_pandas") else data
        generations = recorded_generations({c: g.as_dict() for c, g in current.items()}, list(frame.columns), replacement.generations)
        staging = f"__thanosql_staging_{name}"
        rows, types = _to_sql_frame(frame)
        rows.to_sql(staging, conn, if_exists="replace", index=False, dtype=types, method="multi", chunksize=1000)
        with self._views_set_aside(conn, name):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote(name)}"))
            conn.execute(sa.text(f"ALTER TABLE {quote(staging)} RENAME TO {quote(name)}"))
        for column in replacement.index_on:
            conn.execute(sa.text(f"CREATE INDEX ON {quote(name)} ({quote(column)})"))
        for column in generations:
            # The rows without an embedding, which SEARCH's top-k plan reads every round (few or none).
            conn.execute(sa.text(f"CREATE INDEX ON {quote(name)} ((1)) WHERE {quote(column)} IS NULL"))
        conn.execute(sa.text(f"GRANT SELECT ON {quote(name)} TO {quote(self.reader_role)}"))
        comment = generations_comment(generations)
        conn.execute(sa.text(f"COMMENT ON TABLE {quote(name)} IS {sql_string(comment) if comment else 'NULL'}"))
        return len(rows)
