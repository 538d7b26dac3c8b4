"""SEARCH as a top-k operator: the shape of query it applies to.

Under `SELECT ... FROM (SEARCH ...) [WHERE ...] ORDER BY <similarity> DESC LIMIT k [OFFSET o]`
SEARCH need not score every row: Qdrant proposes candidates and only their rows are read
(`sql_frontend.execution.candidates`), with the same result as scoring every row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from sql_frontend.language.dialect import SearchMedia, option_value

_SIMILARITY = re.compile(r"(.+)_similarity(\d+)", re.IGNORECASE)


@dataclass
class TopK:
    subquery: exp.Subquery
    search: SearchMedia
    column: str  # the similarity column the outer query ranks by
    image: int  # which query image it scores (0-based)
    needed: int  # LIMIT + OFFSET
    skip: int  # OFFSET
    nulls_first: bool  # whether rows without a similarity (no embedding) rank first, as DESC does in PostgreSQL


def find_top_k(query: exp.Expression) -> TopK | None:
    """The top-k shape of `query`, or None when SEARCH must score every row."""
    if not isinstance(query, exp.Select):
        return None
    from_ = query.args.get("from_")
    subquery = from_.this if from_ else None
    if not (isinstance(subquery, exp.Subquery) and isinstance(subquery.this, SearchMedia)):
        return None
    if any(query.args.get(arg) for arg in ("joins", "group", "having", "distinct", "qualify", "laterals", "with_")):
        return None
    if any(True for _ in query.find_all(exp.AggFunc, exp.Window)):
        return None
    order, limit = query.args.get("order"), query.args.get("limit")
    if not order or not limit:
        return None
    first = order.expressions[0]
    if not (first.args.get("desc") and isinstance(first.this, exp.Column)):
        return None
    column = first.this.name
    for projection in query.expressions:
        # ORDER BY a name the outer query gives another column ranks by that column, not the similarity.
        if isinstance(projection, exp.Alias) and projection.alias.lower() == column.lower():
            if not (isinstance(projection.this, exp.Column) and projection.this.name.lower() == column.lower()):
                return None
    match = _SIMILARITY.fullmatch(column)
    images = option_value(subquery.this.args["images"])
    count = 1 if isinstance(images, str) else len(images or [])
    if not match or not 1 <= int(match.group(2)) <= count:
        return None
    limit_value = _int_literal(limit.args.get("expression"))
    offset = query.args.get("offset")
    offset_value = _int_literal(offset.args.get("expression")) if offset else 0
    if not limit_value or offset_value is None:  # LIMIT 0 asks for no rows: nothing to rank
        return None
    if limit_value + offset_value > 2**63 - 1:  # past every row: the exhaustive plan answers without overflowing
        return None
    nulls_first = first.args.get("nulls_first") is not False  # the dialect writes it: DESC alone is NULLS FIRST
    return TopK(subquery, subquery.this, column, int(match.group(2)) - 1, limit_value + offset_value, offset_value, nulls_first)


def _int_literal(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    return None
