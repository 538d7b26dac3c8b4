"""Line:col positions in statement text, for error messages that point at the problem."""

from __future__ import annotations

from sqlglot import exp


def line_col(sql: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    offset = max(0, min(offset, len(sql)))
    line = sql.count("\n", 0, offset) + 1
    col = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return line, col


# Characters of a line shown either side of the caret: enough to recognise the place, short
# enough that a megabyte on one line still gives a short message.
SNIPPET_CONTEXT = 60


def caret_snippet(sql: str, start: int, end: int | None = None) -> str:
    """The line holding `start`, cut to a window around it, with carets under start..end."""
    start = max(0, min(start, len(sql)))
    line_start = sql.rfind("\n", 0, start) + 1
    line_end = sql.find("\n", start)
    if line_end == -1:
        line_end = len(sql)
    last = max(start, min(end if end is not None else start, line_end - 1, start + SNIPPET_CONTEXT - 1))
    left, right = max(line_start, start - SNIPPET_CONTEXT), min(line_end, last + 1 + SNIPPET_CONTEXT)
    prefix = "…" if left > line_start else ""
    suffix = "…" if right < line_end else ""
    text = _printable(sql[left:right])
    return f"  {prefix}{text}{suffix}\n  {' ' * (len(prefix) + start - left)}{'^' * (last - start + 1)}"


def _printable(text: str) -> str:
    # Tabs, NULs and other control characters would shift or garble the line above the caret.
    return "".join(char if char.isprintable() else " " for char in text)


def span_location(sql: str, start: int, end: int) -> dict:
    """Keyword arguments (line, col, snippet) for an SQLError pointing at sql[start..end]."""
    line, col = line_col(sql, start)
    return {"line": line, "col": col, "snippet": caret_snippet(sql, start, end)}


def node_span(node: exp.Expression | None) -> tuple[int, int] | None:
    """(start, end) offsets of a parsed node, from the first identifier or literal under it."""
    if node is None:
        return None
    for candidate in node.walk():
        meta = candidate.meta if candidate._meta else {}
        if "start" in meta:
            return meta["start"], meta["end"]
    return None


def node_end(node: exp.Expression) -> int | None:
    """The offset of the last identifier or literal under a parsed node (where its text ends, near enough)."""
    ends = [candidate.meta["end"] for candidate in node.walk() if candidate._meta and "end" in candidate.meta]
    return max(ends) if ends else None


def locate(sql: str, node: exp.Expression | None) -> dict:
    """Keyword arguments (line, col, snippet) for an SQLError pointing at `node`."""
    span = node_span(node)
    return span_location(sql, *span) if span else {}


def keyword_location(sql: str, node: exp.Expression, keyword: str, statement_start: int = 0) -> dict:
    """Keyword arguments (line, col, snippet) for an SQLError pointing at `keyword`, the first word
    of `node`: sqlglot keeps positions of names and values only, so it is the last `keyword`
    before the first of those under `node`, within the statement (else the node itself)."""
    span = node_span(node)
    if span is None:
        return {}
    start = sql.upper().rfind(keyword.upper(), statement_start, span[0])
    return span_location(sql, start, start + len(keyword) - 1) if start >= 0 else span_location(sql, *span)
