"""One translation boundary: whatever fails inside, the user gets a ThanoSQLError."""

from __future__ import annotations

import duckdb
import pytest

from resources.warehouse import WarehouseResource
from sql_frontend.interfaces import cli
from sql_frontend.interfaces.boundary import user_errors
from thanosql.errors import DataError, InternalError, ThanoSQLError


def _broken_store(monkeypatch):
    """The table store fails as a disk would: a library error nobody foresaw."""

    def fail(self, fresh=False):
        raise duckdb.IOException("IO Error: Could not read from file: disk I/O error")

    monkeypatch.setattr(WarehouseResource, "table_generations", fail)


def test_an_unforeseen_library_error_becomes_an_internal_error(tutorial_conn, monkeypatch):
    _broken_store(monkeypatch)
    with pytest.raises(InternalError) as caught:
        tutorial_conn.execute("SELECT count(*) FROM mnist_test")
    assert "SELECT count(*) FROM mnist_test" in str(caught.value) and "disk I/O error" in str(caught.value)
    assert isinstance(caught.value.__cause__, duckdb.IOException) and caught.value.hint


def test_the_cli_prints_the_error_not_a_traceback(tutorial_home, monkeypatch, capsys):
    _broken_store(monkeypatch)
    assert cli.main(["--home", str(tutorial_home), "query", "SELECT count(*) FROM mnist_test"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ThanoSQL failed unexpectedly") and "Traceback" not in err


def test_a_thanosql_error_wrapped_by_a_library_comes_out_as_itself():
    original = DataError("Cannot use image a.jpg: the file is empty (0 bytes).", hint="Replace it.")

    class Wrapper(Exception):
        user_exception = original

    with pytest.raises(DataError) as caught, user_errors("CONVERT ..."):
        raise Wrapper("step failed")
    assert caught.value is original


def test_too_deep_nesting_is_a_thanosql_error():
    with pytest.raises(ThanoSQLError, match="nested too deeply"), user_errors("SELECT ((((...))))"):
        raise RecursionError("maximum recursion depth exceeded")


def test_an_unreachable_sql_server_is_a_thanosql_error():
    from sql_frontend.interfaces.remote import RemoteConnection

    conn = RemoteConnection("http://127.0.0.1:9", "token")  # the discard port: nothing listens there
    with pytest.raises(ThanoSQLError, match="Cannot reach the ThanoSQL SQL server at http://127.0.0.1:9"):
        conn.execute("SELECT 1")
