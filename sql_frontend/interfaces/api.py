"""The Python API: `thanosql.connect()` and `Connection.execute(sql)`."""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from typing import TYPE_CHECKING

from resources import Settings, build_resources
from sql_frontend.execution.runner import StatementRunner
from sql_frontend.interfaces.boundary import user_errors
from sql_frontend.interfaces.connection import ConnectionBase, Result
from sql_frontend.language.parser import ParsedStatement, parse_script, parse_statement
from sql_frontend.planning.planner import Planner
from thanosql.errors import ThanoSQLError
from thanosql_assets.defs.recovery import recover

if TYPE_CHECKING:
    from sql_frontend.interfaces.remote import RemoteConnection


class _PrintHandler(logging.Handler):
    """Prints progress lines to whatever sys.stdout/sys.stderr is at the time (Jupyter swaps them)."""

    def __init__(self, stream_name: str):
        super().__init__(logging.INFO)
        self.stream_name = stream_name

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=getattr(sys, self.stream_name), flush=True)


def show_progress(stream_name: str = "stderr") -> None:
    """Print the `thanosql.progress` messages (training epochs, 'Building model...') as they come."""
    logger = logging.getLogger("thanosql.progress")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        if isinstance(handler, _PrintHandler):
            logger.removeHandler(handler)
    logger.addHandler(_PrintHandler(stream_name))


def _ignore_harmless_kernel_warnings() -> None:
    """Two warnings a Jupyter kernel would show in red under every writing cell, about nothing wrong:

    - Dagster ends an in-process run with `loop.run_until_complete(loop.shutdown_asyncgens())` on an
      event loop of its own. In ipykernel this thread already runs the kernel's loop, so that call
      raises RuntimeError, which Dagster ignores, and the `shutdown_asyncgens()` coroutine is
      dropped unawaited (the new loop had no async generators to shut down).
    - `import mlflow` imports `tqdm.auto` (for its GenAI tools), which warns once per kernel that
      ipywidgets is missing: a warning about the import, not about any progress bar we show.
    """
    warnings.filterwarnings(
        "ignore",
        message=re.escape("coroutine 'BaseEventLoop.shutdown_asyncgens' was never awaited"),
        category=RuntimeWarning,
        module=r"dagster\._core\.execution\.context_creation_job",
    )
    warnings.filterwarnings("ignore", message="IProgress not found", module=r"tqdm\.")


def _require_text(sql: object) -> None:
    if not isinstance(sql, str):
        raise ThanoSQLError(
            f"execute() takes the statement as a str, not {type(sql).__name__}.",
            hint="Pass SQL text, e.g. conn.execute('SELECT * FROM mnist_train LIMIT 5'); decode bytes with .decode('utf-8').",
        )


class Connection(ConnectionBase):
    """A ThanoSQL session on one workspace (embedded mode: everything under `home`).

    Each statement is parsed once, planned (everything it needs is checked) just before it runs,
    and its plan run: assets materialized in the workspace's Dagster instance, or a query
    evaluated in this process.
    """

    def __init__(self, home: str | os.PathLike | None = None, *, api_token: str | None = None, progress: bool = True):
        self.settings = Settings.from_env(home)
        self.settings.ensure_dirs()
        self.api_token = api_token
        _ignore_harmless_kernel_warnings()
        resources = build_resources(self.settings)
        with user_errors():
            recover(self.settings.home, resources, self.settings.dagster_instance)
        self._planner = Planner.for_resources(resources)
        self._runner = StatementRunner(resources, instance=self.settings.dagster_instance)
        if progress and not logging.getLogger("thanosql.progress").handlers:
            show_progress()

    @property
    def home(self) -> str:
        return str(self.settings.home)

    @property
    def last_plan(self) -> str:
        """How the last query ran: "exhaustive" (every row scored) or "top-k (m of n images)"."""
        return self._runner.last_plan

    def execute(self, sql: str) -> Result:
        _require_text(sql)
        with user_errors(sql):
            statement = parse_statement(sql)
        return self.execute_statement(statement)

    def execute_script(self, sql: str) -> list[Result]:
        _require_text(sql)
        with user_errors(sql):
            statements = parse_script(sql)
        return [self.execute_statement(statement) for statement in statements]

    def execute_statement(self, statement: ParsedStatement) -> Result:
        with user_errors(statement.text):
            return self._runner.run(self._planner.plan(statement), statement)

    def __repr__(self) -> str:
        return f"<thanosql.Connection home={self.home!r}>"


def connect(
    home: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    api_token: str | None = None,
    progress: bool = True,
) -> "Connection | RemoteConnection":
    """Open the workspace at `home` (default: $THANOSQL_HOME or ./thanosql-workspace), or, with
    `url` (or $THANOSQL_URL), a ThanoSQL SQL server with `api_token` (or $THANOSQL_API_TOKEN)."""
    url = url or (os.environ.get("THANOSQL_URL") if home is None else None)
    if url:
        from sql_frontend.interfaces.remote import RemoteConnection

        if progress and not logging.getLogger("thanosql.progress").handlers:
            show_progress()
        return RemoteConnection(url, api_token or os.environ.get("THANOSQL_API_TOKEN"))
    return Connection(home, api_token=api_token, progress=progress)
