"""The catalog's database: processes that open a new PostgreSQL database at the same moment (a
deployment starting) all find its tables, none fails creating them."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest

from tests.production_stack import PG, create_database, drop_database, postgres_available

pytestmark = pytest.mark.skipif(not postgres_available(), reason="needs the PostgreSQL server on 127.0.0.1:5432")


def _open(url: str, barrier) -> None:
    import resources.api_tokens  # noqa: F401 - registers the token table beside the catalog's
    import resources.catalog  # noqa: F401
    from resources.sql_database import sql_engine

    barrier.wait()
    sql_engine(url)


def test_processes_opening_a_new_database_at_once_all_succeed():
    name = f"thanosql_race_{uuid.uuid4().hex[:8]}"
    create_database(name)
    try:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(8)
        processes = [context.Process(target=_open, args=(f"postgresql+psycopg2://{PG}/{name}", barrier)) for _ in range(8)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [process.exitcode for process in processes] == [0] * 8
    finally:
        drop_database(name)
