"""Line:col positions in statement text, for error messages that point at the problem."""

from __future__ import annotations

from sqlglot import exp


def line_col(sql: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    offset = max(0, min(offset, len(sql)))
    line = sql.count("\n", 0, offset) + 1
    col = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return line, col


def caret_snippet(sql: str, start: int, end: int | None = None) -> str:
    """The line holding `start`, with carets under start..end."""
    start = max(0, min(start, len(sql)))
    line_start = sql.rfind("\n", 0, start) + 1
    line_end = sql.find("\n", start)
    if line_end == -1:
        line_end = len(sql)
    text = sql[line_start:line_end]
    width = max(1, (min(end, line_end - 1) if end is not None else start) - start + 1)
    return f"  {text}\n  {' ' * (start - line_start)}{'^' * width}"


def node_span(node: exp.Expression | None) -> tuple[int, int] | None:
    """(start, end) offsets of a parsed node, from the first identifier or literal under it."""
    if node is None:
        return None
    for candidate in node.walk():
        meta = candidate.meta if candidate._meta else {}
        if "start" in meta:
            return meta["start"], meta["end"]
    return None


def locate(sql: str, node: exp.Expression | None) -> dict:
    """Keyword arguments (line, col, snippet) for an SQLError pointing at `node`."""
    span = node_span(node)
    if span is None:
        return {}
    line, col = line_col(sql, span[0])
    return {"line": line, "col": col, "snippet": caret_snippet(sql, span[0], span[1])}
