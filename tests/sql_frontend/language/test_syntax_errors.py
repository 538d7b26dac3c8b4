"""Syntax errors speak SQL, point at the offending token, stay short, and are the only failure."""

from __future__ import annotations

import random
import string

import pytest

from sql_frontend.language.parser import parse_script, parse_statement
from thanosql.errors import ThanoSQLSyntaxError

SQLGLOT_WORDS = ("<class", "sqlglot", "Required keyword", "Invalid expression", "Token", "Mul", "Anonymous")


def syntax_error(sql: str) -> ThanoSQLSyntaxError:
    with pytest.raises(ThanoSQLSyntaxError) as caught:
        parse_script(sql)
    return caught.value


def caret_text(error: ThanoSQLSyntaxError) -> str:
    """The text the carets of the snippet stand under."""
    text, carets = error.snippet.split("\n")
    start = carets.index("^")
    return text[start : start + carets.count("^")]


@pytest.mark.parametrize(
    ("sql", "line", "col", "message"),
    [
        ("SELECT * FROM t WHERE a =", 1, 26, 'Expected a value after "=", but the statement ends here'),
        ("SELECT * FROM t WHERE", 1, 22, 'Expected a condition after "WHERE", but the statement ends here'),
        ("SELECT * FROM t LIMIT", 1, 22, 'Expected a number after "LIMIT", but the statement ends here'),
        ("SELECT 1 UNION", 1, 15, 'Expected a query after "UNION", but the statement ends here'),
        ("SELECT * FROM", 1, 14, 'Expected a table name after "FROM", but the statement ends here'),
        ("SELECT 1 + FROM t", 1, 12, 'Expected a value after "+", found FROM'),
        ("SELECT 1)", 1, 9, 'Unexpected ) after "SELECT 1"'),
        ("SELECT *\nFROM t t t t", 2, 10, 'Unexpected "t" after "FROM t t"'),
        (")", 1, 1, "Unexpected ) at the start of the statement"),
        ("SELECT (1", 1, 10, "Missing ) to close the ( at line 1:8"),
        ("SELECT count(a\nFROM t", 2, 1, "Expected ) to close the ( at line 1:13, found FROM"),
        ("WITH x AS (SELECT 1) INTO", 1, 22, "Expected a query after the WITH clause, found INTO"),
        ("BUILD MODL m USING SimCLR AS SELECT 1", 1, 7, 'Expected MODEL after BUILD, found "MODL"'),
        # What sqlglot would drop or read as an alias, and PostgreSQL refuses.
        ("SELECT count(*) FROM t,", 1, 24, 'Expected a table after ",", but the statement ends here'),
        ("SELECT * FROM t,\nWHERE a = 1", 2, 1, 'Expected a table after ",", found WHERE'),
        ("SELECT count(*) FROM t GROUP", 1, 24, 'Unexpected "GROUP" after ") FROM t"'),
        ("SELECT * FROM t order label", 1, 17, 'Unexpected "order" after "* FROM t"'),
        ("SELECT * FROM a, b GROUP x", 1, 20, 'Unexpected "GROUP" after "a, b"'),
        ("CONVERT USING m AS (SELECT a FROM t) WHERE a > 1", 1, 38, 'Unexpected WHERE after "FROM t)"'),
    ],
)
def test_parse_errors_say_what_was_expected_or_found_in_sql_terms(sql, line, col, message):
    error = syntax_error(sql)
    assert (error.line, error.col) == (line, col), str(error)
    assert error.bare_message == message
    assert not any(word in str(error) for word in SQLGLOT_WORDS), str(error)
    assert error.hint


def test_group_or_order_without_by_is_not_taken_for_an_alias():
    assert syntax_error("SELECT count(*) FROM t GROUP").hint.startswith('Did you mean GROUP BY instead of "GROUP"?')
    assert syntax_error("SELECT * FROM a, b ORDER x").hint.startswith('Did you mean ORDER BY instead of "ORDER"?')


def test_the_caret_stands_under_the_offending_token():
    assert caret_text(syntax_error("SELECT * FROM t t t t")) == "t"
    assert caret_text(syntax_error("SELECT a FROM t WHERE b = 1 ORDER x")) == "ORDER"
    assert caret_text(syntax_error("SELEC * FROM t")) == "SELEC"


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        ("SELEC * FROM t", "SELECT"),
        ("BUIL MODEL m USING SimCLR AS SELECT 1", "BUILD"),
        ("CONVER USING m AS SELECT 1", "CONVERT"),
        ("SERACH IMAGE images='a.jpg' USING m AS SELECT 1", "SEARCH"),
        ("PRIN IMAGE AS (SELECT 1)", "PRINT"),
        ("COPPY t FROM 'a.csv'", "COPY"),
        ("GTE THANOSQL DATASET mnist_data", "GET"),
        ("creat TABLE t USING m FROM 'folder'", "CREATE"),
    ],
)
def test_a_misspelt_statement_keyword_gets_a_suggestion(sql, keyword):
    error = syntax_error(sql)
    assert (error.line, error.col) == (1, 1)
    assert error.bare_message.endswith(f": did you mean {keyword}?")
    assert "SELECT, WITH, GET THANOSQL DATASET" in error.hint


@pytest.mark.parametrize(
    ("sql", "hint"),
    [
        ("SELECT * FORM t", 'Did you mean FROM instead of "FORM"?'),
        ("SELECT * FROM t WERE a = 1", 'Did you mean WHERE instead of "WERE"?'),
        ("SELECT a FROM t ORDER a", 'Did you mean ORDER BY instead of "ORDER"?'),
        ("BUILD MODEL m USING SimCLR OPTINS (max_epochs=1) AS SELECT 1", 'Did you mean OPTIONS instead of "OPTINS"?'),
    ],
)
def test_a_misspelt_clause_keyword_gets_a_suggestion(sql, hint):
    assert syntax_error(sql).hint.startswith(hint)


def test_an_unknown_statement_word_without_a_close_keyword():
    error = syntax_error("SELECT 1;\nfrobnicate the table")
    assert (error.line, error.col) == (2, 1)
    assert error.bare_message == 'Unknown statement "frobnicate"'


@pytest.mark.parametrize(
    ("sql", "line", "col", "message"),
    [
        ("SELECT 1,\n  'abc", 2, 3, "Unterminated string"),
        ("SELECT 'it''s", 1, 8, "Unterminated string"),
        ("SELECT $$abc", 1, 8, "Unterminated string"),
        ("'", 1, 1, "Unterminated string"),
        ('SELECT "abc FROM t', 1, 8, "Unterminated quoted name"),
        ("SELECT 1 /* note", 1, 10, "Unterminated comment"),
        ("SELECT 1 /* outer /* inner */ still open", 1, 10, "Unterminated comment"),
        ("SELECT /* fine */ 1,\n/* 'not a string' */ 'open", 2, 22, "Unterminated string"),
        ("SELECT x'ZZ'", 1, 8, "Cannot read the text"),
    ],
)
def test_unreadable_text_is_located_at_its_start(sql, line, col, message):
    error = syntax_error(sql)
    assert (error.line, error.col) == (line, col), str(error)
    assert error.bare_message.startswith(message)
    assert "^" in error.snippet and error.hint


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "(" * 3000 + "1" + ")" * 3000,
        "SELECT * FROM " + "(SELECT * FROM " * 3000 + "t" + ")" * 3000,
        "SELECT " + "f(" * 3000,
        "PRINT IMAGE AS " + "(" * 3000,
    ],
)
def test_deep_nesting_is_a_syntax_error_at_the_innermost_bracket(sql):
    error = syntax_error(sql)
    assert error.bare_message.startswith("The statement is nested too deeply")
    assert (error.line, error.col) == (1, sql.rindex("(") + 1)
    assert len(str(error)) < 1000


def test_deep_nesting_without_brackets_points_at_the_statement():
    error = syntax_error("SELECT 1;\nSELECT " + "NOT " * 3000 + "TRUE")
    assert error.bare_message == "The statement is nested too deeply"
    assert (error.line, error.col) == (2, 1)


@pytest.mark.parametrize(
    "sql",
    [
        "".join(random.Random(1).choices(string.printable, k=1_000_000)),
        "SELECT " + " ".join(random.Random(2).choices(["a", "b", "+", "1"], k=50_000)),
        "SELECT 1 AS a " + "x" * 1_000_000,
        "SELECT " + "x" * 1_000_000 + " FROM",
        "SELECT 1 '" + "y" * 1_000_000,
        "SELECT 1 /*" + "z" * 1_000_000,
        "SELECT 1,\n" + "(" * 100_000,
    ],
    ids=["printable", "words", "long-word", "long-name-then-end", "long-string", "long-comment", "parens"],
)
def test_a_megabyte_of_garbage_gives_a_short_message(sql):
    error = syntax_error(sql)
    assert len(str(error)) < 1000, str(error)[:2000]
    assert error.line is not None and error.col is not None


def test_a_crash_inside_sqlglot_is_a_syntax_error_where_it_stopped():
    error = syntax_error('SELECT `("")')  # sqlglot raises ValueError on this
    assert error.bare_message.startswith("Unexpected")
    assert error.line == 1 and error.col is not None and error.hint


def test_parse_statement_points_at_the_extra_statement():
    with pytest.raises(ThanoSQLSyntaxError) as caught:
        parse_statement("SELECT 1;\n  SELECT 2")
    assert (caught.value.line, caught.value.col) == (2, 3)
    assert caught.value.bare_message == "Expected one statement, found 2"


# -- any text at all: a parse or a located ThanoSQLSyntaxError ---------------------------------

WORDS = (
    "SELECT FROM WHERE GROUP BY ORDER LIMIT UNION WITH AS USING OPTIONS BUILD MODEL SEARCH IMAGE PRINT "
    "CONVERT COPY GET THANOSQL DATASET CREATE TABLE JOIN ON CASE WHEN THEN END CAST NOT AND OR IN "
    "INSERT DROP x t 1 2.5 images overwrite=True ( ) [ ] { } , ; = * + - :: ' \" $$ /* */ -- @ ? é 日本"
).split()
STARTS = ("SELECT", "WITH x AS (", "GET THANOSQL DATASET", "COPY t", "BUILD MODEL m USING SimCLR", "CONVERT USING m",
          "SEARCH IMAGE", "PRINT IMAGE AS (", "CREATE TABLE t USING m", "", "(")


def garbage(rng: random.Random) -> str:
    size = rng.randrange(1, 80)
    kind = rng.randrange(6)
    if kind == 0:  # printable characters, quotes and all
        return "".join(rng.choice(string.printable) for _ in range(size))
    if kind == 1:  # keyword soup after a real statement start
        return rng.choice(STARTS) + " " + " ".join(rng.choice(WORDS) for _ in range(size))
    if kind == 2:  # unbalanced quotes and brackets
        return "SELECT " + "".join(rng.choice("()[]{}'\"`,;$/*-") for _ in range(size))
    if kind == 3:  # NUL and other control characters among words
        return " ".join(rng.choice(WORDS + ["\x00", "\x1b", "\r", "\t"]) for _ in range(size))
    if kind == 4:  # any unicode
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(size))
    return rng.choice(STARTS) + "".join(rng.choice(WORDS) for _ in range(size))  # soup without spaces


def test_any_text_parses_or_raises_a_located_syntax_error():
    rng = random.Random(20240531)
    outcomes = {"parsed": 0, "error": 0}
    for _ in range(400):
        sql = garbage(rng)
        try:
            parse_script(sql)
        except ThanoSQLSyntaxError as error:
            assert error.line is not None and error.col is not None, repr(sql)
            assert "^" in error.snippet and error.hint, repr(sql)
            assert not any(word in error.bare_message for word in ("<class", "sqlglot", "Required keyword")), repr(sql)
            outcomes["error"] += 1
        else:
            outcomes["parsed"] += 1
    assert outcomes["error"] > 200 and outcomes["parsed"] > 0, outcomes
