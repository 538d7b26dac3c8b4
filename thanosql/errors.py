"""Errors a ThanoSQL user can see: the bottom layer, which every other layer may raise.

Every error says what is wrong, where (line:col for SQL) and how to fix it. Statements check
their inputs before they change anything, so an error always leaves tables, models and
collections as they were. This module imports nothing of the project.
"""

from __future__ import annotations


class ThanoSQLError(Exception):
    """Base class of every error the product reports to users."""

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class SQLError(ThanoSQLError):
    """An error tied to a position in the statement text."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        col: int | None = None,
        snippet: str | None = None,
        hint: str | None = None,
    ):
        self.line = line
        self.col = col
        self.snippet = snippet
        self.bare_message = message
        located = f"line {line}:{col}: {message}" if line is not None else message
        if snippet:
            located = f"{located}\n{snippet}"
        super().__init__(located, hint=hint)


class ThanoSQLSyntaxError(SQLError):
    """The text is not a statement ThanoSQL understands."""


class OptionError(SQLError):
    """An OPTIONS key is unknown, or its value has the wrong type or range."""


class ObjectNotFoundError(SQLError):
    """A statement names a table, model, column, dataset or file that does not exist."""


class ObjectExistsError(SQLError):
    """A statement would replace an existing object without overwrite=True."""


class DependentObjectsError(SQLError):
    """A statement would remove an object that other objects need (DROP TABLE without CASCADE)."""


class PathNotAllowedError(SQLError):
    """A statement names a file outside the workspace of a server that confines paths to it."""


class DataError(SQLError):
    """The data a statement reads is unusable (missing or corrupt image files, empty tables); the
    statement places it, where it can, at what chose that data (its image_col, its query)."""


class WorkspaceBusyError(ThanoSQLError):
    """Another process holds the workspace's table store for longer than we are willing to wait."""


class QueryError(SQLError):
    """The table store could not run a query: an unknown column or function, a bad cast, a
    division by zero, or SQL that would change data or read files (queries only read tables)."""


class InternalError(ThanoSQLError):
    """Something failed that ThanoSQL did not foresee: a bug to report, never a library's own exception."""
