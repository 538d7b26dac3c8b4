"""Queries read tables, nothing else: the static half of that promise.

A SELECT (and the AS SELECT of BUILD MODEL, CONVERT and SEARCH) may not hide a statement that
changes data (`WITH d AS (DELETE ... RETURNING *)`) or a table function that reads files or runs
SQL text (`read_csv('/etc/passwd')`, `query('...')`). The table stores enforce the same at run
time (a rolled-back transaction without file access in DuckDB, a read-only role and transaction
in PostgreSQL); this check says so before anything runs, at the offending text.
"""

from __future__ import annotations

import re

from sqlglot import exp

from sql_frontend.language.dialect import STANDALONE_STATEMENTS
from sql_frontend.language.positions import keyword_location, locate
from thanosql.errors import SQLError

# Functions that reach past the tables: run SQL given as text, change settings or the session
# (set_config('role', ...) would leave PostgreSQL's reader role), read server files, hold locks,
# sleep, signal other sessions, or advance sequences.
_FORBIDDEN_FUNCTIONS = re.compile(
    r"^(set_config|query_to_xml\w*|cursor_to_xml\w*|dblink\w*|pg_read_\w+|pg_ls_\w+|pg_stat_file|lo_\w+|"
    r"pg_(try_)?advisory_\w+|pg_sleep\w*|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|"
    r"pg_switch_wal|pg_create_\w+|pg_drop_\w+|nextval|setval|query|query_table|read_\w+|glob)$",
    re.IGNORECASE,
)
# Table functions that compute rows from their arguments alone.
_ROW_GENERATORS = (exp.GenerateSeries, exp.ExplodingGenerateSeries, exp.Unnest)
_GENERATOR_NAMES = {"range", "generate_series", "unnest"}
# Statements, wherever they hide in a query: they change data or settings, or reach outside the tables.
_STATEMENTS = (
    exp.DML, exp.DDL, exp.Drop, exp.Alter, exp.TruncateTable, exp.Attach, exp.Detach, exp.Install, exp.Export,
    exp.Analyze, exp.Grant, exp.Revoke, exp.Comment, exp.Refresh, exp.Cache, exp.Uncache, exp.LoadData, exp.Kill,
    exp.Lock, exp.Command, exp.Set, exp.Transaction, exp.Commit, exp.Rollback, exp.Use, exp.Pragma,
)  # fmt: skip


def check_read_only(query: exp.Expression, sql: str) -> None:
    """Raise SQLError (at the offending text of `sql`) if `query` could change data or read files."""
    for node in query.walk():
        if node is not query and type(node) in STANDALONE_STATEMENTS:
            raise SQLError(
                f"{STANDALONE_STATEMENTS[type(node)]} is a statement of its own: it cannot stand inside a query.",
                **keyword_location(sql, node, STANDALONE_STATEMENTS[type(node)].split()[0]),
                hint="Run it as a statement of its own. SEARCH, CONVERT, PREDICT and LIST may stand where a subquery can.",
            )
        if isinstance(node, exp.Select) and node.args.get("into"):
            raise SQLError(
                "SELECT ... INTO creates a table; a query only reads tables.",
                **locate(sql, node.args["into"]),
                hint="COPY creates tables from files and CONVERT from a query's rows; or just SELECT the rows.",
            )
        if isinstance(node, _STATEMENTS):
            keyword = str(node.this).upper() if isinstance(node, exp.Command) else node.key.upper()
            raise SQLError(
                f"A query only reads tables: {keyword} is not allowed in it.",
                **locate(sql, node),
                hint="Queries only read tables. COPY replaces or appends to a table; CONVERT adds embeddings.",
            )
        if isinstance(node, exp.Func) and _FORBIDDEN_FUNCTIONS.match(_function_name(node)):
            raise SQLError(
                f"A query reads tables only; the function {_function_name(node).lower()}() is not allowed.",
                **locate(sql, node),
                hint="Queries compute from the tables' rows; settings, files, locks and other SQL are out of their reach.",
            )
        if isinstance(node, (exp.Table, exp.Lateral)) and isinstance(node.this, exp.Func) and not _generates_rows(node.this):
            name = _function_name(node.this)
            raise SQLError(
                f"A query reads tables only; the table function {name.lower()}() is not allowed.",
                **locate(sql, node),
                hint="Query the workspace's tables (FROM table_name); to load a file, COPY <table> FROM 'file.csv' first.",
            )


def _function_name(function: exp.Func) -> str:
    return str(function.this) if isinstance(function, exp.Anonymous) else function.sql_name()


def _generates_rows(function: exp.Func) -> bool:
    if isinstance(function, _ROW_GENERATORS):
        return True
    return isinstance(function, exp.Anonymous) and str(function.this).lower() in _GENERATOR_NAMES



def check_limits(query: exp.Expression, sql: str) -> None:
    """LIMIT and OFFSET are counts of rows: whole numbers from 0 to 2^63 - 1."""
    for clause in query.find_all(exp.Limit, exp.Offset):
        value = clause.args.get("expression")
        if isinstance(value, exp.Neg) or (isinstance(value, exp.Literal) and value.is_int and int(value.this) > 2**63 - 1):
            raise SQLError(
                f"{clause.key.upper()} {value.sql()} is not a row count.",
                **locate(sql, value),
                hint=f"Use a whole number from 0 to {2**63 - 1}.",
            )
