"""ThanoSQL image search: `thanosql.connect()` in Python, `%load_ext thanosql` in Jupyter."""

from sql_frontend.api import Connection, connect, show_progress
from sql_frontend.errors import ThanoSQLError

__all__ = ["Connection", "ThanoSQLError", "connect", "load_ipython_extension", "show_progress"]


def load_ipython_extension(ipython) -> None:
    from sql_frontend.magic import load_ipython_extension as load

    load(ipython)
