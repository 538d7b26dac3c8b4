"""The one statement each round of SEARCH's top-k plan runs.

Qdrant proposes candidate images, and one statement evaluates the SEARCH's own query and the
outer query over just their rows: the candidates' rows (a lookup by image key) and the rows
that have no embedding, their similarities joined on the key, then the outer query. The
statement is the same text every round; the candidates are its parameters.

A row's similarity comes from its own embedding, as in the exhaustive plan: a row without one
(inserted since CONVERT, or with no image) has a NULL similarity, which `ORDER BY ... DESC`
ranks first (PostgreSQL's NULLS FIRST), so those rows are candidates in every round.
"""

from __future__ import annotations

from resources import WarehouseResource
from resources.warehouse import quote

KEY = "__thanosql_image_key"  # the image path, as a hidden column of the SEARCH's rows
EMBEDDED = "__thanosql_embedded"  # whether the row has an embedding, as a hidden column of the SEARCH's rows
CANDIDATES = "__thanosql_candidates"  # the candidates' rows, where the SEARCH's query read its table
SCORES = "__thanosql_scores"
SEARCH_RELATION = "__thanosql_search_{}"  # the SEARCH's rows with their similarities, read by the outer query
# Parameter names no user would write (PostgreSQL's driver finds them in the statement's text).
_KEYS_PARAMETER = "thanosql_candidate_keys"
_SCORES_PARAMETER = "thanosql_candidate_scores_{}"


def candidates_statement(
    warehouse: WarehouseResource,
    *,
    table: str,
    image_col: str,
    embedding_col: str,
    inner_sql: str,
    outer_sql: str,
    similarity_columns: list[str],
) -> str:
    """One round of the top-k plan as one statement in the warehouse's dialect.

    `inner_sql` is the SEARCH's query reading `CANDIDATES` (with the image key as column `KEY`
    and whether the row has an embedding as column `EMBEDDED`), `outer_sql` the outer query
    reading `SEARCH_RELATION`; `candidates_parameters` gives the candidates' image keys and each
    query image's similarity to each candidate (or None).
    """
    keys = f"CAST({warehouse.parameter(_KEYS_PARAMETER)} AS TEXT[])"
    key, relation = quote(KEY), SEARCH_RELATION.format(0)
    scores = ", ".join(
        f"unnest(CAST({warehouse.parameter(_SCORES_PARAMETER.format(number))} AS DOUBLE PRECISION[])) AS {quote(column)}"
        for number, column in enumerate(similarity_columns)
    )
    inner_columns = warehouse.columns_except(
        "i", [KEY, EMBEDDED], f"WITH {CANDIDATES} AS (SELECT * FROM {quote(table)} LIMIT 0) SELECT * FROM ({inner_sql}) i"
    )
    similarities = ", ".join(f"CASE WHEN i.{quote(EMBEDDED)} THEN s.{quote(column)} END AS {quote(column)}" for column in similarity_columns)
    return (
        # Two lookups rather than one OR, so that each can use its index (PostgreSQL: the image
        # column's, and the partial index of the rows without an embedding).
        f"WITH {CANDIDATES} AS (SELECT * FROM {quote(table)} WHERE {quote(image_col)} = ANY({keys}) "
        f"UNION ALL SELECT * FROM {quote(table)} WHERE {quote(embedding_col)} IS NULL "
        f"AND NOT COALESCE({quote(image_col)} = ANY({keys}), FALSE)), "
        f"{SCORES} AS (SELECT unnest({keys}) AS {key}, {scores}), "
        f"{relation} AS (SELECT {inner_columns}, {similarities} FROM ({inner_sql}) i LEFT JOIN {SCORES} s ON i.{key} = s.{key}) "
        f"{outer_sql}"
    )


def candidates_parameters(keys: list[str], scores: list[list[float | None]]) -> dict[str, list]:
    return {_KEYS_PARAMETER: keys, **{_SCORES_PARAMETER.format(number): values for number, values in enumerate(scores)}}


def covers_top_k(rows: int, needed: int, last: float | None, weakest: float | None, nulls_first: bool, exhausted: bool) -> bool:
    """Whether the first `rows` ranked rows (at most `needed`; `last` the similarity of the last,
    NaN or None without one) are the top rows: no image left out of the candidates, all less
    similar than the `weakest` candidate, could have made them."""
    if exhausted:
        return True
    if rows < needed or weakest is None:
        return False
    if last is None or last != last:  # the top rows end with rows without an embedding, all of which are candidates
        return nulls_first
    return last > weakest
