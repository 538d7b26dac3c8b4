"""A table store's query errors, pointed at the user's text.

The store runs the transpiled SQL, so its own positions are useless to the user; the names it
quotes are not.
"""

from __future__ import annotations

import re

from sqlglot import exp

from sql_frontend.language.positions import locate, node_end, span_location
from thanosql.errors import SQLError


def located(error: SQLError, sql: str, query: exp.Expression, start: int = 0) -> SQLError:
    """The store's `error` pointing into the user's text: at the first name it quotes that the
    statement (`query`, at offset `start` of `sql`) holds (`Column "foo" does not exist` points
    at foo), else at the first value it quotes that the statement writes as a literal, else at the query."""
    end = node_end(query)
    # Only within the statement: a name the store quotes from a view's definition (a view that no
    # longer fits its table) is not the user's text, nor is the next statement of the script.
    stop = len(sql) if end is None else end + 1
    # A quoted expression ("label / 0") ends where a number would not go on (not "label / 0.5").
    names = [rf"(?<![\w.]){_spaced(name)}" + (r"(?![\w.])" if " " in name else r"(?!\w)") for name in re.findall(r'"([^"]+)"', error.bare_message)]
    # A value the store quotes ('abc' could not be converted) stands in the statement as that literal.
    literals = [re.escape(f"'{value}'") for value in re.findall(r"'([^']+)'", error.bare_message)]
    for pattern in (*names, *literals):
        match = re.compile(pattern, flags=re.IGNORECASE).search(sql, start, stop)
        if match:
            hint = error.hint
            quoted = sql[match.start() - 1 : match.start()] == '"' == sql[match.end() : match.end() + 1]
            # Not where the store offers a close column name: "Label" in quotes may be a column meant.
            if quoted and "column" in error.bare_message.lower() and "did you mean" not in error.bare_message and pattern in names:
                # ThanoSQL's tutorials write strings in double quotes where SQL reads a column name.
                word = match.group(0).replace("'", "''")
                hint = f"In a query, \"{match.group(0)}\" in double quotes is a column name; write a string in single quotes: '{word}'."
            return type(error)(error.bare_message, **span_location(sql, match.start(), match.end() - 1), hint=hint)
    return type(error)(error.bare_message, **locate(sql, query), hint=error.hint)


def _spaced(text: str) -> str:
    """A pattern for `text` however it is spaced: a quoted expression "7 % 0" matches 7%0."""
    return r"\s*".join(re.escape(part) for part in text.split())
