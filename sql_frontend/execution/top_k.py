"""SEARCH as a top-k operator: when it applies, and the one statement each round of it runs.

Under `SELECT ... FROM (SEARCH ...) [WHERE ...] ORDER BY <similarity> DESC LIMIT k [OFFSET o]`
Qdrant proposes candidate images, and one statement evaluates the SEARCH's own query and the
outer query over just their rows: the candidates' rows (a lookup by image key, which the
table's index on its image column serves), their similarities joined on the key, then the
outer query. The statement is the same text every round; the candidates are its parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from resources import WarehouseResource
from resources.warehouse import quote
from sql_frontend.language.dialect import SearchMedia, option_value

KEY = "__thanosql_image_key"  # the image path, as a hidden column of the SEARCH's rows
CANDIDATES = "__thanosql_candidates"  # the candidates' rows, where the SEARCH's query read its table
SCORES = "__thanosql_scores"
SEARCH_RELATION = "__thanosql_search_{}"  # the SEARCH's rows with their similarities, read by the outer query
_SIMILARITY = re.compile(r"(.+)_similarity(\d+)", re.IGNORECASE)


@dataclass
class TopK:
    subquery: exp.Subquery
    search: SearchMedia
    column: str  # the similarity column the outer query ranks by
    image: int  # which query image it scores (0-based)
    needed: int  # LIMIT + OFFSET
    skip: int  # OFFSET


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
    match = _SIMILARITY.fullmatch(column)
    images = option_value(subquery.this.args["images"])
    count = 1 if isinstance(images, str) else len(images or [])
    if not match or not 1 <= int(match.group(2)) <= count:
        return None
    limit_value = _int_literal(limit.args.get("expression"))
    offset = query.args.get("offset")
    offset_value = _int_literal(offset.args.get("expression")) if offset else 0
    if limit_value is None or offset_value is None:
        return None
    return TopK(subquery, subquery.this, column, int(match.group(2)) - 1, limit_value + offset_value, offset_value)


def candidates_statement(
    warehouse: WarehouseResource, *, table: str, image_col: str, inner_sql: str, outer_sql: str, similarity_columns: list[str]
) -> str:
    """One round of the top-k plan as one statement in the warehouse's dialect.

    `inner_sql` is the SEARCH's query reading `CANDIDATES` (with the image key as column `KEY`),
    `outer_sql` the outer query reading `SEARCH_RELATION`. Parameters: `keys` (the candidates'
    image keys) and `s0`, `s1`, ... (each query image's similarity to each candidate, or None).
    """
    keys = f"CAST({warehouse.parameter('keys')} AS TEXT[])"
    key, relation = quote(KEY), SEARCH_RELATION.format(0)
    scores = ", ".join(
        f"unnest(CAST({warehouse.parameter(f's{number}')} AS DOUBLE PRECISION[])) AS {quote(column)}"
        for number, column in enumerate(similarity_columns)
    )
    inner_columns = warehouse.columns_except(
        "i", KEY, f"WITH {CANDIDATES} AS (SELECT * FROM {quote(table)} LIMIT 0) {inner_sql}"
    )
    return (
        f"WITH {CANDIDATES} AS (SELECT * FROM {quote(table)} WHERE {quote(image_col)} = ANY({keys})), "
        f"{SCORES} AS (SELECT unnest({keys}) AS {key}, {scores}), "
        f"{relation} AS (SELECT {inner_columns}, {', '.join('s.' + quote(column) for column in similarity_columns)} "
        f"FROM ({inner_sql}) i JOIN {SCORES} s ON i.{key} = s.{key}) "
        f"{outer_sql}"
    )


def candidates_parameters(keys: list[str], scores: list[list[float | None]]) -> dict[str, list]:
    return {"keys": keys, **{f"s{number}": values for number, values in enumerate(scores)}}


def _int_literal(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    return None
