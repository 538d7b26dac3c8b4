"""The ThanoSQL dialect: PostgreSQL plus the statements of the image-search tutorials.

Statements added on top of PostgreSQL (keywords in any case)::

    GET THANOSQL DATASET name [OPTIONS (...)]
    GET THANOSQL MODEL "hub/id" [OPTIONS (...)] [AS name]
    COPY table [OPTIONS (...)] FROM "file.csv"
    BUILD MODEL name USING SimCLR | <classifier> [OPTIONS (...)] AS SELECT ...
    FIT MODEL name USING model [OPTIONS (...)] AS SELECT ...
    CONVERT USING model [OPTIONS (...)] AS SELECT ...
    PREDICT USING model [OPTIONS (...)] AS SELECT ...
    EVALUATE USING model [OPTIONS (...)] AS SELECT ...
    SEARCH IMAGE images='a.jpg' | images=['a.jpg', 'b.jpg'] USING model [OPTIONS (table_name=...)] AS SELECT ...
    PRINT IMAGE AS (SELECT ... FROM (SEARCH IMAGE ...) ORDER BY ... LIMIT n)
    CREATE TABLE name USING model OPTIONS (path_type='folder', ...) FROM 'folder'
    UPLOAD MODEL name OPTIONS (framework='huggingface' | 'pytorch', ...) FROM "directory_or_file"
    LIST MODEL | TABLE | THANOSQL MODEL | THANOSQL DATASET
    DELETE MODEL [IF EXISTS] name

DROP TABLE [IF EXISTS] name [CASCADE] is PostgreSQL's own statement.

SEARCH, CONVERT, PREDICT and LIST may also stand where a subquery can, as in ``SELECT ... FROM (SEARCH ...)``
or ``WITH hits AS (SEARCH ...)``; the other statements are parsed there too, so planning can refuse them by name.
Inside OPTIONS and after COPY ... FROM, a double-quoted word is a string, as in the tutorials
(``image_col="image_path"``); in the SELECT parts it stays a quoted identifier, as in PostgreSQL.
"""

from __future__ import annotations

import re
import typing as t

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import Token, TokenType

_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------------------------
# Statement nodes
# --------------------------------------------------------------------------------------------


class Options(exp.Expression):
    """``OPTIONS (key=value, ...)``; each entry is an exp.Property(this=Identifier, value=...)."""

    arg_types = {"expressions": True}

    def entries(self) -> list[exp.Property]:
        return list(self.expressions)


class GetDataset(exp.Expression):
    arg_types = {"this": True, "options": False}


class GetModel(exp.Expression):
    """``GET THANOSQL MODEL "org/model" [OPTIONS (...)] [AS name]``: fetch a published model."""

    arg_types = {"this": True, "options": False, "alias": False}


class CopyFrom(exp.Expression):
    arg_types = {"this": True, "options": False, "source": True}


class UploadModel(exp.Expression):
    """``UPLOAD MODEL name OPTIONS (...) FROM "path"``: register a classifier trained elsewhere."""

    arg_types = {"this": True, "options": False, "source": True}


class BuildModel(exp.Expression):
    arg_types = {"this": True, "algorithm": True, "options": False, "query": True}


class FitModel(exp.Expression):
    """``FIT MODEL name USING model``: train a copy of an existing model further, as a new model."""

    arg_types = {"this": True, "model": True, "options": False, "query": True}


class ConvertUsing(exp.Expression):
    arg_types = {"this": True, "options": False, "query": True}


class PredictUsing(exp.Expression):
    arg_types = {"this": True, "options": False, "query": True}


class EvaluateUsing(exp.Expression):
    arg_types = {"this": True, "options": False, "query": True}


class SearchMedia(exp.Expression):
    """``SEARCH <kind> <param>=<value> USING model AS query``; kind is IMAGE in the tutorials."""

    arg_types = {"kind": True, "param": True, "images": True, "this": True, "query": True, "options": False}


class PrintMedia(exp.Expression):
    arg_types = {"kind": True, "query": True}


class CreateTableUsing(exp.Expression):
    """``CREATE TABLE name USING model OPTIONS (...) FROM 'folder'``: embed a folder of files."""

    arg_types = {"this": True, "model": True, "options": False, "source": True}


class ListObjects(exp.Expression):
    """``LIST MODEL``, ``LIST TABLE``, ``LIST THANOSQL MODEL``, ``LIST THANOSQL DATASET``: the
    objects of the workspace, or those GET THANOSQL can fetch, as rows (also as a subquery).
    `kind` is one of LIST_KINDS."""

    arg_types = {"kind": True}


LIST_KINDS = ("MODEL", "TABLE", "THANOSQL MODEL", "THANOSQL DATASET")


class DeleteModel(exp.Expression):
    """``DELETE MODEL [IF EXISTS] name``: remove a model and what it made that cannot live without it."""

    arg_types = {"this": True, "exists": False}


STATEMENT_TYPES = (
    GetDataset, CopyFrom, BuildModel, FitModel, ConvertUsing, PredictUsing, EvaluateUsing, SearchMedia, PrintMedia, CreateTableUsing
)


def option_value(node: exp.Expression) -> t.Any:
    """The Python value of a parsed OPTIONS value (str, int, float, bool, None or list)."""
    if isinstance(node, exp.Array):
        return [option_value(item) for item in node.expressions]
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        return -option_value(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(node, exp.Var):
        return node.this
    raise TypeError(f"not an option value: {node!r}")


# ThanoSQL's statements that may stand where a subquery can, and those that stand alone only, by
# how they are named in messages.
NESTED_STATEMENTS = {SearchMedia: "SEARCH", ConvertUsing: "CONVERT", PredictUsing: "PREDICT", ListObjects: "LIST"}
STANDALONE_STATEMENTS = {
    GetDataset: "GET THANOSQL DATASET", GetModel: "GET THANOSQL MODEL", CopyFrom: "COPY", UploadModel: "UPLOAD MODEL",
    BuildModel: "BUILD MODEL", FitModel: "FIT MODEL", EvaluateUsing: "EVALUATE", PrintMedia: "PRINT IMAGE",
    CreateTableUsing: "CREATE TABLE ... USING", DeleteModel: "DELETE MODEL",
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


# Statements that stand alone only, by their first two words: in a subquery, planning refuses
# them by name.
_STATEMENTS_ONLY = {"EVALUATE": "USING", "BUILD": "MODEL", "FIT": "MODEL", "UPLOAD": "MODEL", "GET": "THANOSQL", "PRINT": "IMAGE"}


class Parser(Postgres.Parser):
    STATEMENT_PARSERS = {
        **Postgres.Parser.STATEMENT_PARSERS,
        TokenType.COPY: lambda self: self._parse_copy_from(),
    }

    # Statements whose first word sqlglot reads as a plain word (VAR), not as a keyword.
    WORD_STATEMENT_PARSERS: dict[str, t.Callable[["Parser"], exp.Expression]] = {
        "GET": lambda self: self._parse_get(),
        "BUILD": lambda self: self._parse_build_model(),
        "FIT": lambda self: self._parse_fit_model(),
        "CONVERT": lambda self: self._parse_convert_using(),
        "PREDICT": lambda self: self._parse_using_query(PredictUsing, "PREDICT"),
        "EVALUATE": lambda self: self._parse_using_query(EvaluateUsing, "EVALUATE"),
        "SEARCH": lambda self: self._parse_search(),
        "PRINT": lambda self: self._parse_print(),
        "UPLOAD": lambda self: self._parse_upload_model(),
        "LIST": lambda self: self._parse_list(),
    }

    # The token the last error blamed; None when the statement ended before it was complete.
    error_token: Token | None = None

    def raise_error(self, message: str, token: Token | None = None) -> None:
        # sqlglot's ParseError keeps only the line and end column of the token it blames; the
        # syntax error needs the token itself to point at it and to quote the text before it.
        self.error_token = token or self._curr or None
        super().raise_error(message, token)

    def _parse_statement(self) -> exp.Expression | None:
        if not self._curr:
            return None
        if self._curr.token_type in (TokenType.VAR, TokenType.LIST):  # LIST is a type name to sqlglot
            handler = self.WORD_STATEMENT_PARSERS.get(self._curr.text.upper())
            if handler is not None:
                self._advance()
                return handler(self)
        if self._is_create_table_using():
            return self._parse_create_table_using()
        if self._curr.token_type == TokenType.DELETE and self._next and self._next.text.upper() == "MODEL":
            self._advance(2)
            return self._parse_delete_model()
        return super()._parse_statement()

    def _parse_wrapped_select(self, table: bool = False) -> exp.Expression | None:
        # `( SEARCH ... )`, `( CONVERT ... )` and `( PREDICT ... )` work wherever a subquery does.
        if self._curr and self._curr.token_type in (TokenType.VAR, TokenType.LIST):
            word = self._curr.text.upper()
            if word == "SEARCH":
                self._advance()
                return self._parse_search()
            if word == "LIST":
                self._advance()
                return self._parse_list()
            if word in ("CONVERT", "PREDICT") and self._next and self._next.token_type == TokenType.USING:
                self._advance()
                return self._parse_convert_using() if word == "CONVERT" else self._parse_using_query(PredictUsing, "PREDICT")
            if word in _STATEMENTS_ONLY and self._next and self._next.text.upper() == _STATEMENTS_ONLY[word]:
                # Parsed, so that planning refuses it by name (read_only) rather than here as a missing ")".
                self._advance()
                return self.WORD_STATEMENT_PARSERS[word](self)
        return super()._parse_wrapped_select(table=table)

    def _parse_join(self, skip_join_token=False, parse_bracket=False, alias_tokens=None):
        comma = self._curr is not None and self._curr.token_type == TokenType.COMMA
        join = super()._parse_join(skip_join_token, parse_bracket, alias_tokens)
        if comma and join is None:  # sqlglot drops a comma no table follows (`FROM t,`); PostgreSQL refuses it
            self._fail('Expected a table after ","')
        return join

    def _parse_table_alias(self, alias_tokens=None):
        # `FROM t GROUP` is GROUP BY cut short, not t's alias (sqlglot would take it as one): left
        # for the statement's end to report as unexpected, with a GROUP BY hint
        if self._curr and self._curr.token_type == TokenType.VAR and self._curr.text.upper() in ("GROUP", "ORDER"):
            return None
        return super()._parse_table_alias(alias_tokens)

    # -- statements ---------------------------------------------------------------------------

    def _parse_get(self) -> GetDataset | GetModel:
        self._expect_words("THANOSQL", after="GET")
        if self._expect_word_in(("DATASET", "MODEL"), "DATASET or MODEL after GET THANOSQL") == "DATASET":
            name = self._expect_name("a dataset name")
            return GetDataset(this=name, options=self._parse_thanosql_options())
        if self._curr and self._curr.token_type in (TokenType.STRING, TokenType.IDENTIFIER):
            model = self._expect_string("a model id")
        else:
            model = exp.Literal.string(self._expect_name("a model id, e.g. 'google/vit-base-patch16-224'").this)
        options = self._parse_thanosql_options()
        alias = self._expect_name("a name for the model after AS") if self._match(TokenType.ALIAS) else None
        return GetModel(this=model, options=options, alias=alias)

    def _parse_copy_from(self) -> CopyFrom:
        name = self._expect_name("a table name")
        options = self._parse_thanosql_options()
        if not self._match(TokenType.FROM):
            self._fail('Expected FROM "file.csv" after the table name and its OPTIONS')
        return CopyFrom(this=name, options=options, source=self._expect_string("a file path"))

    def _parse_upload_model(self) -> UploadModel:
        self._expect_words("MODEL", after="UPLOAD")
        name = self._expect_name("a model name")
        options = self._parse_thanosql_options()
        if not self._match(TokenType.FROM):
            self._fail('Expected FROM "directory" (or a weights file) after the model name and its OPTIONS')
        return UploadModel(this=name, options=options, source=self._expect_string("a directory or file path"))

    def _parse_build_model(self) -> BuildModel:
        self._expect_words("MODEL", after="BUILD")
        name = self._expect_name("a model name")
        if not self._match(TokenType.USING):
            self._fail("Expected USING <algorithm> after the model name (e.g. USING SimCLR)")
        algorithm = self._expect_name("an algorithm name such as SimCLR")
        options = self._parse_thanosql_options()
        return BuildModel(this=name, algorithm=algorithm, options=options, query=self._parse_as_query())

    def _parse_fit_model(self) -> FitModel:
        self._expect_words("MODEL", after="FIT")
        name = self._expect_name("a name for the new model")
        if not self._match(TokenType.USING):
            self._fail("Expected USING <model> after the new model's name (the model to train further)")
        model = self._expect_name("the name of the model to train further")
        options = self._parse_thanosql_options()
        return FitModel(this=name, model=model, options=options, query=self._parse_as_query())

    def _parse_convert_using(self) -> ConvertUsing:
        return self._parse_using_query(ConvertUsing, "CONVERT")

    def _parse_using_query(self, node_type: type[exp.Expression], keyword: str) -> exp.Expression:
        """`<keyword> USING model [OPTIONS (...)] AS SELECT ...` (CONVERT, PREDICT, EVALUATE)."""
        if not self._match(TokenType.USING):
            self._fail(f"Expected USING <model> after {keyword}")
        model = self._expect_name("a model name")
        options = self._parse_thanosql_options()
        return node_type(this=model, options=options, query=self._parse_as_query())

    def _parse_list(self) -> ListObjects:
        # Singular as ThanoSQL writes it; the plural reads as well.
        expected = "MODEL, TABLE, THANOSQL MODEL or THANOSQL DATASET after LIST"
        word = self._expect_word_in(("MODEL", "MODELS", "TABLE", "TABLES", "THANOSQL"), expected)
        if word == "THANOSQL":
            word = "THANOSQL " + self._expect_word_in(("MODEL", "MODELS", "DATASET", "DATASETS"), "MODEL or DATASET after LIST THANOSQL")
        return ListObjects(kind=word.removesuffix("S"))

    def _parse_delete_model(self) -> DeleteModel:
        exists = bool(self._curr and self._curr.text.upper() == "IF" and self._next and self._next.token_type == TokenType.EXISTS)
        if exists:
            self._advance(2)
        return DeleteModel(this=self._expect_name("a model name"), exists=exists)

    def _parse_search(self) -> SearchMedia:
        kind = self._expect_word_in(("IMAGE", "AUDIO", "VIDEO"), "IMAGE after SEARCH")
        param, images = self._parse_key_value("Expected images='file.jpg' after SEARCH IMAGE")
        if not self._match(TokenType.USING):
            self._fail("Expected USING <model> after the search images")
        model = self._expect_name("a model name")
        options = self._parse_thanosql_options()
        return SearchMedia(kind=kind, param=param, images=images, this=model, options=options, query=self._parse_as_query())

    def _parse_print(self) -> PrintMedia:
        kind = self._expect_word_in(("IMAGE",), "IMAGE after PRINT")
        if not self._match(TokenType.ALIAS):
            self._fail("Expected AS (SELECT ...) after PRINT IMAGE")
        if not self._match(TokenType.L_PAREN, advance=False):
            self._fail("Expected ( after PRINT IMAGE AS: the query goes in parentheses")
        query = self._parse_select(nested=True)
        if query is None:
            self._fail("Expected a query in PRINT IMAGE AS (...)")
        while isinstance(query, exp.Subquery) and not query.alias:
            query = query.this
        return PrintMedia(kind=kind, query=query)

    def _is_create_table_using(self) -> bool:
        ahead = self._tokens[self._index : self._index + 4]
        return (
            len(ahead) == 4
            and ahead[0].token_type == TokenType.CREATE
            and ahead[1].token_type == TokenType.TABLE
            and ahead[3].token_type == TokenType.USING
        )

    def _parse_create_table_using(self) -> CreateTableUsing:
        self._advance(2)
        name = self._expect_name("a table name")
        self._match(TokenType.USING)
        model = self._expect_name("a model name")
        options = self._parse_thanosql_options()
        if not self._match(TokenType.FROM):
            self._fail("Expected FROM 'folder' after OPTIONS")
        return CreateTableUsing(this=name, model=model, options=options, source=self._expect_string("a folder path"))

    # -- pieces -------------------------------------------------------------------------------

    def _parse_as_query(self) -> exp.Expression:
        if not self._match(TokenType.ALIAS):
            self._fail("Expected AS SELECT ... (the rows to use)")
        if not (self._curr and self._curr.token_type in (TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN, TokenType.FROM)):
            self._fail("Expected a SELECT query after AS")
        query = self._parse_select(nested=True)
        if query is None:
            self._fail("Expected a SELECT query after AS")
        if isinstance(query, exp.Subquery):
            # `AS (SELECT ...) UNION ALL (SELECT ...) ORDER BY ...`: a set operation, ORDER BY or
            # LIMIT after a parenthesised query continues it (a WHERE or a join is left unexpected).
            query = self._parse_set_operations(query)
            if self._curr and self._curr.token_type in (TokenType.ORDER_BY, TokenType.LIMIT, TokenType.OFFSET, TokenType.FETCH):
                query = self._parse_query_modifiers(query)
        return query

    def _parse_thanosql_options(self) -> Options | None:
        if not (self._curr and self._curr.token_type == TokenType.VAR and self._curr.text.upper() == "OPTIONS"):
            return None
        self._advance()
        if not self._match(TokenType.L_PAREN):
            self._fail("Expected ( after OPTIONS")
        entries: list[exp.Property] = []
        while not self._match(TokenType.R_PAREN):
            if entries and not self._match(TokenType.COMMA):
                self._fail("Expected , or ) between options")
            if self._match(TokenType.R_PAREN):  # trailing comma
                break
            key, value = self._parse_key_value("Expected an option name such as overwrite", key_kind="option ")
            entries.append(exp.Property(this=key, value=value))
        return Options(expressions=entries)

    def _parse_key_value(self, expected: str, key_kind: str = "") -> tuple[exp.Identifier, exp.Expression]:
        """`word = value` (an option, or SEARCH's images=...); `expected` is the error when no word comes."""
        token = self._curr
        if not token or not _WORD.match(token.text):
            self._fail(expected)
        self._advance()
        key = exp.Identifier(this=token.text).update_positions(token)
        if not self._match(TokenType.EQ):
            self._fail(f"Expected = after {key_kind}{token.text}")
        return key, self._parse_option_value()

    def _parse_option_value(self) -> exp.Expression:
        token = self._curr
        if not token:
            self._fail("Expected an option value")
        if self._match(TokenType.L_BRACKET):
            items: list[exp.Expression] = []
            while not self._match(TokenType.R_BRACKET):
                if items and not self._match(TokenType.COMMA):
                    self._fail("Expected , or ] in the list")
                items.append(self._parse_option_value())
            return exp.Array(expressions=items).update_positions(token)
        self._advance()
        kind = token.token_type
        if kind in (TokenType.STRING, TokenType.IDENTIFIER):
            return exp.Literal.string(token.text).update_positions(token)
        if kind == TokenType.NUMBER:
            return exp.Literal.number(token.text).update_positions(token)
        if kind == TokenType.DASH and self._curr and self._curr.token_type == TokenType.NUMBER:
            number = self._curr
            self._advance()
            return exp.Neg(this=exp.Literal.number(number.text).update_positions(number)).update_positions(token)
        if kind in (TokenType.TRUE, TokenType.FALSE):
            return exp.Boolean(this=kind == TokenType.TRUE).update_positions(token)
        if kind == TokenType.NULL:
            return exp.Null().update_positions(token)
        if kind == TokenType.VAR and _WORD.match(token.text):
            return exp.Var(this=token.text).update_positions(token)
        self._fail("Expected an option value: a 'string', a number, True/False or a [list]", token)
        raise AssertionError  # unreachable: _fail raises

    def _expect_name(self, what: str) -> exp.Identifier:
        token = self._curr
        name = self._parse_id_var(any_token=False)
        if name is None or not isinstance(name, exp.Identifier):
            self._fail(f"Expected {what}", token)
        return name

    def _expect_string(self, what: str) -> exp.Literal:
        token = self._curr
        if not token or token.token_type not in (TokenType.STRING, TokenType.IDENTIFIER):
            self._fail(f"Expected {what} in quotes")
        self._advance()
        return exp.Literal.string(token.text).update_positions(token)

    def _expect_words(self, *words: str, after: str) -> None:
        for word in words:
            if not (self._curr and self._curr.text.upper() == word):
                self._fail(f"Expected {word} after {after}")
            self._advance()
            after = word

    def _expect_word_in(self, words: tuple[str, ...], what: str) -> str:
        if not (self._curr and self._curr.text.upper() in words):
            self._fail(f"Expected {what}")
        word = self._curr.text.upper()
        self._advance()
        return word

    def _fail(self, message: str, token: Token | None = None) -> t.NoReturn:
        self.raise_error(message, token)
        raise AssertionError("raise_error returned")  # error_level is always IMMEDIATE here


# --------------------------------------------------------------------------------------------
# Generator (for round trips and for logging statements as they were understood)
# --------------------------------------------------------------------------------------------


def _value_sql(gen: "Generator", node: exp.Expression) -> str:
    if isinstance(node, exp.Array):
        return "[" + ", ".join(_value_sql(gen, item) for item in node.expressions) + "]"
    if isinstance(node, exp.Boolean):
        return "True" if node.this else "False"
    return gen.sql(node)


def _options_sql(gen: "Generator", node: Options | None) -> str:
    if not node:
        return ""
    entries = ", ".join(f"{gen.sql(e, 'this')}={_value_sql(gen, e.args['value'])}" for e in node.expressions)
    return f" OPTIONS ({entries})"


def _using_query_sql(gen: "Generator", node: exp.Expression, keyword: str) -> str:
    return f"{keyword} USING {gen.sql(node, 'this')}{_options_sql(gen, node.args.get('options'))} AS {gen.sql(node, 'query')}"


class Generator(Postgres.Generator):
    TRANSFORMS = {
        **Postgres.Generator.TRANSFORMS,
        Options: lambda self, e: _options_sql(self, e).strip(),
        GetDataset: lambda self, e: f"GET THANOSQL DATASET {self.sql(e, 'this')}{_options_sql(self, e.args.get('options'))}",
        GetModel: lambda self, e: (
            f"GET THANOSQL MODEL {self.sql(e, 'this')}{_options_sql(self, e.args.get('options'))}"
            + (f" AS {self.sql(e, 'alias')}" if e.args.get("alias") else "")
        ),
        CopyFrom: lambda self, e: (
            f"COPY {self.sql(e, 'this')}{_options_sql(self, e.args.get('options'))} FROM {self.sql(e, 'source')}"
        ),
        UploadModel: lambda self, e: (
            f"UPLOAD MODEL {self.sql(e, 'this')}{_options_sql(self, e.args.get('options'))} FROM {self.sql(e, 'source')}"
        ),
        BuildModel: lambda self, e: (
            f"BUILD MODEL {self.sql(e, 'this')} USING {self.sql(e, 'algorithm')}"
            f"{_options_sql(self, e.args.get('options'))} AS {self.sql(e, 'query')}"
        ),
        FitModel: lambda self, e: (
            f"FIT MODEL {self.sql(e, 'this')} USING {self.sql(e, 'model')}"
            f"{_options_sql(self, e.args.get('options'))} AS {self.sql(e, 'query')}"
        ),
        ConvertUsing: lambda self, e: _using_query_sql(self, e, "CONVERT"),
        PredictUsing: lambda self, e: _using_query_sql(self, e, "PREDICT"),
        EvaluateUsing: lambda self, e: _using_query_sql(self, e, "EVALUATE"),
        SearchMedia: lambda self, e: (
            f"SEARCH {e.args['kind']} {self.sql(e, 'param')}={_value_sql(self, e.args['images'])} "
            f"USING {self.sql(e, 'this')}{_options_sql(self, e.args.get('options'))} AS {self.sql(e, 'query')}"
        ),
        PrintMedia: lambda self, e: f"PRINT {e.args['kind']} AS ({self.sql(e, 'query')})",
        ListObjects: lambda self, e: f"LIST {e.args['kind']}",
        DeleteModel: lambda self, e: f"DELETE MODEL {'IF EXISTS ' if e.args.get('exists') else ''}{self.sql(e, 'this')}",
        CreateTableUsing: lambda self, e: (
            f"CREATE TABLE {self.sql(e, 'this')} USING {self.sql(e, 'model')}"
            f"{_options_sql(self, e.args.get('options'))} FROM {self.sql(e, 'source')}"
        ),
    }


class ThanoSQL(Postgres):
    """sqlglot dialect: `sqlglot.parse_one(sql, read=ThanoSQL)`."""

    Parser = Parser
    Generator = Generator
