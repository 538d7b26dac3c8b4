"""Names in parsed statements: object names as PostgreSQL folds them, and the tables a query reads."""

from __future__ import annotations

from sqlglot import exp


def object_name(identifier: exp.Identifier | str) -> str:
    """Names fold to lower case unless quoted, as in PostgreSQL."""
    if isinstance(identifier, str):
        return identifier.lower()
    return identifier.this if identifier.quoted else identifier.this.lower()


def referenced_tables(query: exp.Expression, outside: tuple[type[exp.Expression], ...] = ()) -> list[exp.Table]:
    """Tables a query reads (CTE names excluded), each once, in order of appearance; tables
    under a node of one of the `outside` types are left out."""
    cte_names = {object_name(cte.args["alias"].this) for cte in query.find_all(exp.CTE) if cte.args.get("alias")}
    seen: dict[str, exp.Table] = {}
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db"):
            continue
        if outside and table.find_ancestor(*outside) is not None:
            continue
        name = object_name(table.this)
        if name not in cte_names:
            seen.setdefault(name, table)
    return list(seen.values())


def with_postgres_output_names(query: exp.Expression) -> exp.Expression:
    """`query` with its unnamed aggregate columns named as PostgreSQL names them (`count`, `avg`),
    whichever engine runs it: DuckDB would say `count_star()`."""
    if not isinstance(query, exp.Select) or not any(isinstance(projection, exp.AggFunc) for projection in query.expressions):
        return query
    named = query.copy()
    taken = {projection.alias_or_name for projection in named.expressions}
    for projection in named.expressions:
        if isinstance(projection, exp.AggFunc):
            name = projection.sql_name().lower()
            if name and name not in taken:
                projection.replace(exp.alias_(projection.copy(), name))
    return named
