"""Running the SELECT parts of statements against the table store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlglot
from sqlglot import exp

from resources import WarehouseResource
from sql_frontend.dialect import ThanoSQL


def object_name(identifier: exp.Identifier | str) -> str:
    """Names fold to lower case unless quoted, as in PostgreSQL."""
    if isinstance(identifier, str):
        return identifier.lower()
    return identifier.this if identifier.quoted else identifier.this.lower()


def parse_query(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read=ThanoSQL)


def referenced_tables(query: exp.Expression) -> list[exp.Table]:
    """Tables a query reads (CTE names excluded), each once, in order of appearance."""
    cte_names = {object_name(cte.args["alias"].this) for cte in query.find_all(exp.CTE) if cte.args.get("alias")}
    seen: dict[str, exp.Table] = {}
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        name = object_name(table.this)
        if name not in cte_names and not table.args.get("db"):
            seen.setdefault(name, table)
    return list(seen.values())


def run_query(
    query: exp.Expression | str,
    warehouse: WarehouseResource,
    relations: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    if isinstance(query, str):
        query = parse_query(query)
    return warehouse.query(query.sql(dialect=warehouse.dialect), relations)
