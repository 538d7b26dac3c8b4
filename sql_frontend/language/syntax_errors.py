"""Syntax errors in SQL terms, at the offending token.

sqlglot words its errors for its own developers (`Required keyword: 'expression' missing for
<class 'sqlglot.expressions.core.Mul'>`), quotes as much of the statement as it likes and gives no
position for text it cannot tokenize. Each function here turns one kind of failure into a
ThanoSQLSyntaxError that says what was expected or found, at line:col, with a caret under the
token, quoting only a few words of the user's text.
"""

from __future__ import annotations

import difflib
import re

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from sql_frontend.language.dialect import Parser, ThanoSQL
from sql_frontend.language.positions import line_col, span_location
from thanosql.errors import ThanoSQLSyntaxError

# The first word of every statement ThanoSQL runs, for "did you mean" suggestions.
STATEMENT_KEYWORDS = ("SELECT", "WITH", "COPY", "CREATE", "DELETE", "DROP", "INSERT", "UPDATE", "ALTER", *Parser.WORD_STATEMENT_PARSERS)
_STATEMENTS_HINT = (
    "A statement starts with SELECT, WITH, GET THANOSQL DATASET, COPY, BUILD MODEL, FIT MODEL, CONVERT USING, "
    "PREDICT USING, EVALUATE USING, SEARCH IMAGE, PRINT IMAGE, CREATE TABLE ... USING, LIST, DELETE MODEL, DROP TABLE, "
    "or PostgreSQL's INSERT, UPDATE, DELETE, CREATE TABLE, CREATE VIEW and ALTER TABLE (see README)."
)
_SYNTAX_HINT = "Check the statement against its syntax in README."
# Keywords that a misspelt word in the middle of a statement most likely stands for.
_CLAUSE_KEYWORDS = (
    "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "OFFSET", "JOIN", "UNION", "USING", "OPTIONS",
)

_QUOTED_TOKEN_LIMIT = 30  # characters of one token quoted in a message
_CONTEXT_LIMIT = 40  # characters of the text before the offending token quoted in a message

_BLOCK_COMMENTS = {opener: closer for opener, closer in ThanoSQL.tokenizer_class._COMMENTS.items() if closer}
_NAME_QUOTES = tuple(ThanoSQL.tokenizer_class._IDENTIFIERS)
_BRACKETS = {
    TokenType.R_PAREN: TokenType.L_PAREN,
    TokenType.R_BRACKET: TokenType.L_BRACKET,
    TokenType.R_BRACE: TokenType.L_BRACE,
}
_CLOSERS = {")": TokenType.R_PAREN, "]": TokenType.R_BRACKET, "}": TokenType.R_BRACE}

_REQUIRED = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>")
_EXPECTED_CLOSER = re.compile(r"Expect(?:ing|ed) ([)\]}])$")
_EXPECTED_NAME = re.compile(r"Expected (\w+ name) but got")
_PYTHON_REPR = re.compile(r"\s*<(?:class|Token) [^<>]*>")  # Python reprs in sqlglot's messages

# sqlglot messages that name its internals, in SQL terms.
_REWORDED = {
    "Failed to parse any statement following CTE": "Expected a query after the WITH clause",
    "Expected CTE to have alias": "Expected a name for the query in WITH",
}

# What a half-built node lacks, in SQL terms; the first matching class wins.
_MISSING = (
    ((exp.Where, exp.Having, exp.Qualify), "a condition"),
    ((exp.Limit, exp.Offset, exp.Fetch), "a number"),
    ((exp.SetOperation,), "a query"),
    ((exp.Binary, exp.Unary, exp.Paren), "a value"),
)


def unknown_statement(sql: str, token: Token) -> ThanoSQLSyntaxError:
    """A statement that starts with a word no statement starts with, such as SELEC."""
    close = difflib.get_close_matches(token.text.upper(), STATEMENT_KEYWORDS, n=1)
    suggestion = f": did you mean {close[0]}?" if close else ""
    message = f"Unknown statement {_shown(sql, token)}{suggestion}"
    return ThanoSQLSyntaxError(message, **span_location(sql, token.start, token.end), hint=_STATEMENTS_HINT)


def unreadable(sql: str, start: int, cause: BaseException | None) -> ThanoSQLSyntaxError:
    """Text the tokenizer could not read, from offset `start`; `cause` is what stopped it."""
    where = span_location(sql, start, start)
    # sqlglot says "Missing <quote>" when a string or quoted name runs to the end of the text, and
    # fails with IndexError when a comment (or a quote that is the last character) does.
    if not (isinstance(cause, IndexError) or str(cause).startswith("Missing ")):
        return ThanoSQLSyntaxError(
            "Cannot read the text starting here",
            **where,
            hint="Check the literal here: a hex string x'...' holds only 0-9 and A-F, a bit string b'...' 0 and 1.",
        )
    for opener, closer in _BLOCK_COMMENTS.items():
        if sql.startswith(opener, start):
            return ThanoSQLSyntaxError(
                "Unterminated comment: it runs to the end of the text",
                **where,
                hint=f"End the comment with {closer} (comments nest: each {opener} inside it needs its own {closer}).",
            )
    if sql.startswith(_NAME_QUOTES, start):
        return ThanoSQLSyntaxError(
            'Unterminated quoted name: the " here is never closed',
            **where,
            hint="Add the closing \". For a string, use single quotes: 'text'.",
        )
    return ThanoSQLSyntaxError(
        "Unterminated string: the quote here is never closed",
        **where,
        hint="Add the closing quote: ' for a '...' string (write '' for a quote inside it), $tag$ for $tag$...$tag$.",
    )


def unparsable(sql: str, tokens: list[Token], description: str, found: Token | None) -> ThanoSQLSyntaxError:
    """A statement (`tokens`) the parser rejected with `description`, blaming `found` (None: it ended)."""
    before = [token for token in tokens if found is None or token.end < found.start]
    message = _in_sql_terms(sql, description, before, found)
    if found is None:
        start = end = tokens[-1].end + 1  # just past the last word
    else:
        start, end = found.start, found.end
    hint = _hint_for(message, [token for token in (found, *before[-1:]) if token])
    return ThanoSQLSyntaxError(message, **span_location(sql, start, end), hint=hint)


def stopped(sql: str, tokens: list[Token], found: Token | None) -> ThanoSQLSyntaxError:
    """sqlglot itself failed on odd input, at `found`: to the user, an unexpected token."""
    return unparsable(sql, tokens, "Invalid expression / Unexpected token", found)


def too_deep(sql: str, tokens: list[Token]) -> ThanoSQLSyntaxError:
    """A statement nested deeper than the parser's recursion can follow."""
    opener, depth = _deepest_bracket(tokens)
    token = opener or tokens[0]
    levels = f" ({depth} levels of brackets)" if opener else ""
    return ThanoSQLSyntaxError(
        f"The statement is nested too deeply{levels}",
        **span_location(sql, token.start, token.end),
        hint="Use fewer nested parentheses, subqueries or operators: name subqueries with WITH name AS (...).",
    )


# -- translation -------------------------------------------------------------------------------


def _in_sql_terms(sql: str, description: str, before: list[Token], found: Token | None) -> str:
    description = _REWORDED.get(description, description)
    required = _REQUIRED.match(description)
    if required:
        missing = _missing(required.group(1))
        if missing:
            return f"Expected {missing} {_after(sql, before[-1:])}{_found(sql, found)}"
        return _unexpected(sql, before, found)
    if description.startswith("Invalid expression"):
        return _unexpected(sql, before, found)
    closer = _EXPECTED_CLOSER.match(description)
    if closer:
        return _unclosed(sql, closer.group(1), before, found)
    name = _EXPECTED_NAME.match(description)
    if name:
        description = f"Expected a {name.group(1)}"
    description = _PYTHON_REPR.sub("", description)[:120]
    if not description.startswith(("Expected", "Expecting")):
        return description
    description = description.replace("Expecting", "Expected", 1)
    if " after " not in description:
        description = f"{description} {_after(sql, before[-1:])}"
    return f"{description}{_found(sql, found)}"


def _missing(node_name: str) -> str | None:
    node = getattr(exp, node_name, None)
    if not isinstance(node, type):
        return None
    return next((missing for classes, missing in _MISSING if issubclass(node, classes)), None)


def _unexpected(sql: str, before: list[Token], found: Token | None) -> str:
    if found is None:
        return f"The statement ends too early {_after(sql, before[-3:])}"
    return f"Unexpected {_shown(sql, found)} {_after(sql, before[-3:])}"


def _unclosed(sql: str, closer: str, before: list[Token], found: Token | None) -> str:
    opener = _unmatched_opener(before, _CLOSERS[closer])
    if opener is None:
        return f"Expected {closer}{_found(sql, found)}"
    line, col = line_col(sql, opener.start)
    if found is None:
        return f"Missing {closer} to close the {opener.text} at line {line}:{col}"
    return f"Expected {closer} to close the {opener.text} at line {line}:{col}{_found(sql, found)}"


def _unmatched_opener(tokens: list[Token], closer: TokenType) -> Token | None:
    depth = 0
    for token in reversed(tokens):
        if token.token_type == closer:
            depth += 1
        elif token.token_type == _BRACKETS[closer]:
            if not depth:
                return token
            depth -= 1
    return None


def _deepest_bracket(tokens: list[Token]) -> tuple[Token | None, int]:
    """The first opening bracket at the deepest level of nesting, and that depth."""
    openers = set(_BRACKETS.values())
    deepest, max_depth, depth = None, 0, 0
    for token in tokens:
        if token.token_type in openers:
            depth += 1
            if depth > max_depth:
                deepest, max_depth = token, depth
        elif token.token_type in _BRACKETS:
            depth = max(0, depth - 1)
    return deepest, max_depth


def _hint_for(message: str, near: list[Token]) -> str:
    """How to fix the error `message`; `near`: the offending token and the one before it, if any."""
    for token in near:
        word = token.text.upper()
        close = difflib.get_close_matches(word, _CLAUSE_KEYWORDS, n=1, cutoff=0.7)
        # OPTIONS is a plain word to sqlglot: misplaced, it is not misspelt.
        if token.token_type == TokenType.VAR and close and close[0] != word:
            return f'Did you mean {close[0]} instead of "{token.text}"? {_SYNTAX_HINT}'
    if "option" in message:
        return "OPTIONS take key=value pairs: OPTIONS (overwrite=True, image_col='image_path')."
    if message.startswith(("Missing", "Expected ) to close")):
        return "Add the missing closing bracket, or remove the extra opening one."
    if message.endswith("the statement ends here") or "ends too early" in message:
        return f"Complete the statement. {_SYNTAX_HINT}"
    return f"Fix or remove what the caret points at. {_SYNTAX_HINT}"


# -- quoting the user's text -------------------------------------------------------------------


def _found(sql: str, found: Token | None) -> str:
    return ", but the statement ends here" if found is None else f", found {_shown(sql, found)}"


def _shown(sql: str, token: Token) -> str:
    """A token as the user wrote it, shortened; keywords in capitals, other words in quotes."""
    text = _one_line(sql[token.start : token.end + 1])
    if len(text) > _QUOTED_TOKEN_LIMIT:
        text = text[: _QUOTED_TOKEN_LIMIT - 1] + "…"
    if token.token_type in (TokenType.VAR, TokenType.IDENTIFIER) and not text.startswith(_NAME_QUOTES):
        return f'"{text}"'
    return text.upper() if text.isalpha() else text


def _after(sql: str, tokens: list[Token]) -> str:
    """Where the offending token stands: after `tokens` (the last few before it), quoted and shortened."""
    if not tokens:
        return "at the start of the statement"
    text = _one_line(sql[tokens[0].start : tokens[-1].end + 1])
    if len(text) > _CONTEXT_LIMIT:
        text = "…" + text[-(_CONTEXT_LIMIT - 1) :]
    return f'after "{text}"'


def _one_line(text: str) -> str:
    # Control characters (a NUL, an escape) are written as escapes so the message stays readable.
    visible = "".join(c if c.isprintable() or c.isspace() else c.encode("unicode_escape").decode() for c in text)
    return " ".join(visible.split())
