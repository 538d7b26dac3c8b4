"""The one place where errors become what a user sees: a `ThanoSQLError`, never a library's.

Every entry point (the Python API, the CLI, the Jupyter magic, the SQL server) runs statements
inside `user_errors()`. Errors the product foresaw are `ThanoSQLError`s already and pass through;
anything else is a bug, reported as an `InternalError` that names the statement (the library's
exception is chained to it as `__cause__`, for the bug report), not as a DuckDB, Dagster or
torch exception.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from thanosql.errors import InternalError, ThanoSQLError


@contextmanager
def user_errors(statement: str = "") -> Iterator[None]:
    try:
        yield
    except ThanoSQLError:
        raise
    except RecursionError:
        raise InternalError(
            f"The statement is nested too deeply to run{_quoted(statement)}.",
            hint="Write it with fewer nested parentheses or subqueries (a WITH clause names a subquery once).",
        ) from None
    except Exception as error:
        foreseen = _foreseen_cause(error)
        if foreseen is not None:
            raise foreseen from None
        raise InternalError(
            f"ThanoSQL failed unexpectedly{_quoted(statement)}: {type(error).__name__}: {str(error)[:300]}",
            hint="This is a bug in ThanoSQL; please report it with the statement. Statements switch their results "
            "in last, in one step, so the workspace holds either the previous state or the statement's whole result.",
        ) from error
    except BaseException as error:
        # Dagster turns Ctrl+C (a notebook's stop button) inside a run into its own exception:
        # it is the user's interrupt, and stays one.
        dagster = sys.modules.get("dagster")  # not imported here: no run, no such exception
        if dagster is not None and isinstance(error, dagster.DagsterExecutionInterruptedError):
            raise KeyboardInterrupt(f"interrupted{_quoted(statement)}") from None
        raise


def interrupted_statement(server_url: str | None) -> str:
    """What an interrupt (Ctrl+C, a notebook's stop button) left: statements run here stop and
    change nothing; a SQL server goes on with a statement it had begun."""
    if server_url:
        return "this client stopped waiting; a statement the SQL server had begun goes on there (its Dagster run shows how it ends)."
    return "the statement stopped, and the workspace holds what it held before it."


def _foreseen_cause(error: BaseException) -> ThanoSQLError | None:
    """A ThanoSQLError that a library (Dagster's run, a thread pool) wrapped on its way out."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ThanoSQLError):
            return current
        # Only what the library says it wrapped: a bug raised while handling a ThanoSQLError
        # (its __context__) is a bug, not that error.
        current = getattr(current, "user_exception", None) or current.__cause__
    return None


def _quoted(statement: object) -> str:
    text = statement.strip() if isinstance(statement, str) else ""
    first_line = text.splitlines()[0] if text else ""
    return f" in `{first_line[:80]}{'...' if len(first_line) > 80 else ''}`" if first_line else ""
