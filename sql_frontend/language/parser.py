"""Scripts to statements: split on `;`, parse each with the ThanoSQL dialect, report errors at line:col."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from sql_frontend.language.dialect import ThanoSQL
from sql_frontend.language.positions import caret_snippet, line_col
from thanosql.errors import ThanoSQLSyntaxError

_DIALECT = ThanoSQL()


@dataclass(frozen=True)
class ParsedStatement:
    expression: exp.Expression
    text: str  # the statement as written
    sql: str  # the whole script, for error positions
    start: int  # offset of the statement in the script

    @property
    def line(self) -> int:
        return line_col(self.sql, self.start)[0]


def parse_script(sql: str) -> list[ParsedStatement]:
    """Every statement of a script, in order; raises ThanoSQLSyntaxError at the first problem."""
    try:
        tokens = _DIALECT.tokenize(sql)
    except TokenError as error:
        raise ThanoSQLSyntaxError(
            f"Cannot read the statement: {error}", hint="Check for an unclosed quote or comment."
        ) from None
    statements: list[ParsedStatement] = []
    for chunk in _split(tokens):
        try:
            expressions = _DIALECT.parser(error_level=ErrorLevel.IMMEDIATE).parse(chunk, sql)
        except ParseError as error:
            raise _syntax_error(sql, error) from None
        start, end = chunk[0].start, chunk[-1].end + 1
        for expression in expressions:
            if expression is not None:
                statements.append(ParsedStatement(expression, sql[start:end], sql, start))
    return statements


def parse_statement(sql: str) -> ParsedStatement:
    statements = parse_script(sql)
    if len(statements) != 1:
        raise ThanoSQLSyntaxError(
            f"Expected one statement, found {len(statements)}.",
            hint="Run several statements separated by ; with execute_script() or `thanosql run`.",
        )
    return statements[0]


def _split(tokens: list[Token]) -> list[list[Token]]:
    chunks: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(token)
    return [chunk for chunk in chunks if chunk]


def _syntax_error(sql: str, error: ParseError) -> ThanoSQLSyntaxError:
    detail = error.errors[0] if error.errors else {}
    description = detail.get("description") or str(error)
    line, end_col = detail.get("line"), detail.get("col")
    highlight = detail.get("highlight") or ""
    if line is None or end_col is None:
        return ThanoSQLSyntaxError(description)
    # sqlglot reports the column where the offending token ends; point at where it starts.
    line_start = _offset_of_line(sql, line)
    end = line_start + end_col - 1
    start = max(line_start, end - max(len(highlight), 1) + 1)
    near = f" near {highlight!r}" if highlight else ""
    if description.endswith("the statement ends here"):
        start = end = end + 1  # point just past the last word
        near = ""
    _, col = line_col(sql, start)
    return ThanoSQLSyntaxError(
        f"{description}{near}",
        line=line,
        col=col,
        snippet=caret_snippet(sql, start, end),
        hint=_hint_for(description),
    )


def _offset_of_line(sql: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = sql.index("\n", offset) + 1
    return offset


def _hint_for(description: str) -> str:
    if "option" in description:
        return "OPTIONS take key=value pairs: OPTIONS (overwrite=True, image_col='image_path')."
    if description.startswith("Invalid expression") or description.startswith("Required keyword"):
        return "Check the statement against the ThanoSQL syntax in README (GET THANOSQL DATASET, COPY, BUILD MODEL, CONVERT, SEARCH, PRINT, SELECT)."
    return "See README for the syntax of each ThanoSQL statement."
