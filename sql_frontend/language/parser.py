"""Scripts to statements: split on `;`, parse each with the ThanoSQL dialect, report errors at line:col."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from sql_frontend.language import syntax_errors
from sql_frontend.language.dialect import Parser, ThanoSQL
from sql_frontend.language.positions import line_col, span_location
from thanosql.errors import ThanoSQLSyntaxError

_DIALECT = ThanoSQL()
# sqlglot warns on stderr (red in a notebook) when it keeps unknown syntax as a raw command; the
# planner refuses such statements with a ThanoSQL error, so the warning only repeats the statement.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


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
    """Every statement of a script, in order. Whatever the text, the outcome is statements or a
    ThanoSQLSyntaxError at the line:col of the first problem."""
    statements: list[ParsedStatement] = []
    for chunk in _split(_tokenize(sql)):
        statements.extend(_parse_chunk(sql, chunk))
    return statements


def parse_statement(sql: str) -> ParsedStatement:
    statements = parse_script(sql)
    if len(statements) != 1:
        extra = statements[1:2]
        where = span_location(sql, extra[0].start, extra[0].start + len(extra[0].text) - 1) if extra else {}
        raise ThanoSQLSyntaxError(
            f"Expected one statement, found {len(statements)}",
            **where,
            hint="Run several statements separated by ; with execute_script() or `thanosql run`.",
        )
    return statements[0]


def _tokenize(sql: str) -> list[Token]:
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate, e.g. an undecodable byte of a command line
        line, col = line_col(sql, error.start)
        raise ThanoSQLSyntaxError(
            "The statement holds a character that is not valid Unicode.",
            line=line,
            col=col,
            hint="Write the statement as UTF-8 text; remove or retype the character at that position.",
        ) from None
    tokenizer = _DIALECT.tokenizer()
    try:
        return tokenizer.tokenize(sql)
    except TokenError as error:
        # TokenError quotes the text around where sqlglot gave up; the token it could not finish
        # (a string or comment that never closes) starts where its tokenizer last started one.
        raise syntax_errors.unreadable(sql, tokenizer._core._start, error.__cause__) from None


def _split(tokens: list[Token]) -> list[list[Token]]:
    chunks: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(token)
    return [chunk for chunk in chunks if chunk]


def _parse_chunk(sql: str, chunk: list[Token]) -> list[ParsedStatement]:
    first = chunk[0]
    # sqlglot would read an unknown first word as an expression statement (SELEC * FROM t as a
    # multiplication) and fail further on; no ThanoSQL statement starts with a plain word.
    if first.token_type == TokenType.VAR and first.text.upper() not in Parser.WORD_STATEMENT_PARSERS:
        raise syntax_errors.unknown_statement(sql, first)
    parser = _DIALECT.parser(error_level=ErrorLevel.IMMEDIATE)
    try:
        expressions = parser.parse(chunk, sql)
    except ParseError as error:
        raise syntax_errors.unparsable(sql, chunk, error.errors[0]["description"], parser.error_token) from None
    except RecursionError:
        # sqlglot parses nested brackets and operators recursively: deep nesting exhausts the stack.
        raise syntax_errors.too_deep(sql, chunk) from None
    except Exception:
        # sqlglot has bugs of its own on odd input (a ValueError for SELECT `("")): the text is
        # still what is wrong, so say where parsing stopped rather than crash.
        raise syntax_errors.stopped(sql, chunk, parser._curr or None) from None
    start, end = first.start, chunk[-1].end + 1
    text = sql[start:end]
    return [ParsedStatement(expression, text, sql, start) for expression in expressions if expression is not None]
