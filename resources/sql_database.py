"""The SQL database that holds the catalog and the API token digests.

SQLite in the workspace (embedded mode) or PostgreSQL (production mode), through SQLAlchemy, so
the catalog and the token store are the same code on both. One engine per URL per process.
"""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa

metadata = sa.MetaData()


@lru_cache(maxsize=8)
def sql_engine(url: str) -> sa.Engine:
    """The engine for `url`, with every table of `metadata` created."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        # Several processes (CLI, notebook, Dagster UI runs) share one workspace.
        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

    _create_tables(engine)
    return engine


def _create_tables(engine: sa.Engine) -> None:
    """Every table of `metadata` that does not exist yet. The processes of a deployment (the
    webserver's and the daemon's code locations, the SQL server, run workers) open the
    database at the same moment when it starts: on PostgreSQL they take turns under an advisory
    lock, as two concurrent CREATE TABLEs of one name would fail; SQLite serializes writers itself."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('thanosql: create tables'))"))
        metadata.create_all(connection)
