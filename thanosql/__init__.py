"""ThanoSQL image search: `thanosql.connect()` in Python, `%load_ext thanosql` in Jupyter.

`thanosql.errors` is the bottom layer every other module may raise from, so this package
imports the SQL frontend only when one of its names is first used: importing `thanosql.errors`
(as the ML library and the stores do) never pulls in Dagster, sqlglot or the Python API.
"""

from thanosql.errors import ThanoSQLError

__all__ = ["Connection", "ThanoSQLError", "connect", "load_ipython_extension", "show_progress"]


def __getattr__(name: str):
    if name in ("Connection", "connect", "show_progress"):
        from sql_frontend.interfaces import api

        return getattr(api, name)
    raise AttributeError(f"module 'thanosql' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    from sql_frontend.interfaces.magic import load_ipython_extension as load

    load(ipython)
