"""Jupyter: `%load_ext thanosql`, then `%%thanosql` cells.

    %thanosql API_TOKEN=<token>      # the SQL server's API token
    %thanosql URL=http://host:8000   # run cells on a ThanoSQL SQL server (production mode)
    %thanosql home=<directory>       # switch workspace (default: $THANOSQL_HOME or ./thanosql-workspace)
    %%thanosql
    SELECT * FROM mnist_train LIMIT 5

A cell's last result is its output (a DataFrame); statements without rows print "Success";
PRINT IMAGE shows each image inline under its path (a thumbnail, not the file). A failing statement fails its cell, which
shows "ThanoSQL error: <message>" (IPython prints an exception's `_render_traceback_()`
instead of its traceback), so "Run All" stops there.
"""

from __future__ import annotations

import re

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import Image, display

from sql_frontend.interfaces.api import Connection, show_progress
from sql_frontend.interfaces.boundary import interrupted_statement
from sql_frontend.language.dialect import SearchMedia
from thanosql.errors import ThanoSQLError

_SETTING = re.compile(r"^\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$")


@magics_class
class ThanoSQLMagics(Magics):
    def __init__(self, shell):
        super().__init__(shell)
        self.api_token: str | None = None
        self.home: str | None = None
        self.url: str | None = None
        self._connection = None

    @property
    def connection(self):
        if self._connection is None:
            if self.url:
                from sql_frontend.interfaces.remote import RemoteConnection

                self._connection = RemoteConnection(self.url, self.api_token)
            else:
                self._connection = Connection(self.home, api_token=self.api_token, progress=False)
        return self._connection

    @line_magic("thanosql")
    def settings(self, line: str) -> None:
        match = _SETTING.match(line)
        if not match:
            print("usage: %thanosql API_TOKEN=<token>  or  %thanosql URL=<SQL server>  or  %thanosql home=<workspace directory>")
            return
        key, value = match.group(1).lower(), match.group(2).strip("'\"")
        if key == "api_token":
            self.api_token = value
            if self.url:
                self._connection = None  # the next cell connects with the new token
            elif self._connection is not None:
                self._connection.api_token = value
        elif key == "url":
            self.url, self._connection = value, None
            print(f"SQL server: {value}")
        elif key == "home":
            self.home, self.url, self._connection = value, None, None
            print(f"workspace: {self.connection.home}")
        else:
            print(f"unknown setting {match.group(1)!r}: use API_TOKEN, URL or home")

    @cell_magic("thanosql")
    def run_cell(self, line: str, cell: str):
        from sql_frontend.language.parser import parse_script

        try:
            statements = parse_script(cell)
            last = None
            for index, statement in enumerate(statements):
                if statement.expression.find(SearchMedia):
                    print("Searching...")  # as ThanoSQL's notebooks say before a search's result
                result = self.connection.execute_statement(statement)
                last = self._show(result, is_last=index == len(statements) - 1)
            return last
        except ThanoSQLError as error:
            # Raised, so the cell fails and "Run All" stops here.
            _show_as_message(error)
            raise
        except KeyboardInterrupt:
            interrupted = ThanoSQLError(
                f"Interrupted: {interrupted_statement(self.url)}",
                hint="Statements before it in the cell ran; run the cell again to run the rest.",
            )
            _show_as_message(interrupted)
            raise interrupted from None

    def _show(self, result, is_last: bool):
        from sql_frontend.interfaces.display import NO_IMAGES, jpeg_thumbnail, prediction_captions, printed_images

        if result is None:
            print("Success")
            return None
        images = printed_images(result)
        if images == []:
            print(NO_IMAGES)
            return None
        if images:
            predicted = prediction_captions(result) is not None
            for path, caption in images:
                print(path)
                thumbnail, why = jpeg_thumbnail(path)
                if thumbnail is None:
                    print(f"(cannot show this image: {why})")
                else:
                    display(Image(data=thumbnail, format="jpeg", width=112))
                if predicted:
                    print(caption)
            return None
        if is_last:
            return result
        display(result)
        return None


def _show_as_message(error: ThanoSQLError) -> None:
    """Make IPython show `error` as "ThanoSQL error: <message>" instead of a traceback through our
    code: it prints what an exception's `_render_traceback_()` returns, and still fails the cell."""
    lines = f"ThanoSQL error: {error}".splitlines()
    error._render_traceback_ = lambda: lines


def load_ipython_extension(ipython) -> None:
    show_progress("stdout")
    ipython.register_magics(ThanoSQLMagics)
