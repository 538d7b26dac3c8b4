"""A catalogue of bad inputs: each is refused with a ThanoSQLError that says what and how to fix
it, and the workspace (tables with row counts and content, catalog, MLflow versions and aliases,
collections, dataset files, Dagster assets) is exactly as it was."""

from __future__ import annotations

import pytest

from sql_frontend.planning.options import CONVERT_OPTIONS, build_model_options
from tests.workspace_state import snapshot
from thanosql.errors import ThanoSQLError
from thanosql_assets.models.algorithms import ALGORITHMS

BUILD = "BUILD MODEL m2 USING SimCLR OPTIONS ({options}) AS SELECT * FROM mnist_train"
CONVERT = "CONVERT USING my_image_search_model OPTIONS ({options}) AS SELECT * FROM mnist_test"
SEARCH = "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM mnist_test"


def _numeric_cases():
    """Every numeric option at 0, negative, huge and of the wrong type."""
    statements = [(spec, BUILD) for spec in build_model_options(ALGORITHMS["simclr"])] + [(spec, CONVERT) for spec in CONVERT_OPTIONS]
    for spec, template in statements:
        if spec.type not in (int, float):
            continue
        values = ["-1", "10000000000000", "'many'", "[1, 2]"]
        if spec.minimum is not None and spec.minimum > 0:
            values.append("0")
        for value in values:
            yield pytest.param(template.format(options=f"{spec.name}={value}"), [spec.name], id=f"{spec.name}={value}")


# (statement, words the message must hold)
CASES = [
    # A query reads tables only: no data change, no file.
    pytest.param("WITH d AS (DELETE FROM mnist_train RETURNING *) SELECT count(*) FROM d", ["DELETE", "only reads tables"], id="delete-in-with"),
    pytest.param("WITH d AS (UPDATE mnist_train SET image_path = '/etc/passwd' RETURNING *) SELECT * FROM d", ["UPDATE"], id="update-in-with"),
    pytest.param("WITH d AS (INSERT INTO mnist_train SELECT * FROM mnist_train RETURNING *) SELECT * FROM d", ["INSERT"], id="insert-in-with"),
    pytest.param("SELECT * FROM read_csv('/etc/passwd')", ["read_csv", "COPY"], id="read_csv"),
    pytest.param("SELECT * FROM read_csv_auto('/etc/passwd') AS t", ["read_csv_auto"], id="read_csv_auto"),
    pytest.param("SELECT * FROM read_parquet('/tmp/x.parquet')", ["read_parquet"], id="read_parquet"),
    pytest.param("SELECT * FROM read_text('/etc/passwd')", ["read_text"], id="read_text"),
    pytest.param("SELECT * FROM glob('/etc/*')", ["glob"], id="glob"),
    pytest.param("SELECT * FROM query('DELETE FROM mnist_train')", ["query"], id="query-function"),
    pytest.param("SELECT * FROM '/etc/passwd'", ["/etc/passwd", "does not exist"], id="file-as-table"),
    pytest.param("SELECT pg_read_file('/etc/passwd')", ["pg_read_file"], id="pg_read_file"),
    pytest.param("BUILD MODEL m2 USING SimCLR AS WITH d AS (DELETE FROM mnist_train RETURNING *) SELECT * FROM d", ["DELETE"], id="build-over-delete"),
    pytest.param("CONVERT USING my_image_search_model AS SELECT * FROM read_csv('/etc/passwd')", ["read_csv"], id="convert-over-file"),
    pytest.param("SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS WITH d AS (DELETE FROM mnist_test RETURNING *) SELECT * FROM d", ["DELETE"], id="search-over-delete"),
    # ThanoSQL's own statements that stand alone only, named as such wherever a query holds them.
    pytest.param("WITH m AS (BUILD MODEL m2 USING SimCLR AS SELECT * FROM mnist_train) SELECT * FROM m", ["BUILD MODEL", "statement of its own"], id="build-in-with"),
    pytest.param("WITH c AS (COPY t2 FROM 'thanosql-dataset/mnist_data/mnist_test.csv') SELECT 1", ["COPY", "statement of its own"], id="copy-in-with"),
    pytest.param("SELECT * FROM (EVALUATE USING my_image_search_model AS SELECT * FROM mnist_test) AS e", ["EVALUATE", "statement of its own"], id="evaluate-in-from"),
    pytest.param("SELECT * FROM (GET THANOSQL DATASET mnist_data)", ["GET THANOSQL DATASET", "statement of its own"], id="get-in-from"),
    pytest.param("CONVERT USING my_image_search_model AS WITH d AS (DELETE MODEL my_image_search_model) SELECT * FROM mnist_test", ["DELETE MODEL", "statement of its own"], id="delete-model-in-convert"),
    pytest.param("CREATE VIEW unreadable AS SELECT * FROM mnist_test WHERE filename::int > 1", ["TRY_CAST"], id="view-whose-rows-cannot-be-read"),
    pytest.param(
        SEARCH.replace("AS SELECT", f"AS WITH near AS ({SEARCH}) SELECT"), ["cannot hold SEARCH, CONVERT, PREDICT or LIST"], id="search-in-a-searchs-with"
    ),
    pytest.param("SELECT * FROM mnist_train; DELETE FROM mnist_train", ["one statement"], id="two-statements"),
    pytest.param("DELETE FROM mnist_train RETURNING *", ["RETURNING"], id="delete-returning"),
    pytest.param("DROP TABLE mnist_train", ["needed by model my_image_search_model", "CASCADE"], id="drop-table-a-model-needs"),
    pytest.param("UPDATE mnist_test SET my_image_search_model_simclr = NULL", ["holds embeddings"], id="update-embedding-column"),
    # The store's errors, in SQL terms, at the user's text.
    pytest.param("SELECT no_such_column FROM mnist_train", ["no_such_column", "column"], id="unknown-column"),
    pytest.param("SELECT no_such_function(label) FROM mnist_train", ["no_such_function"], id="unknown-function"),
    pytest.param("SELECT CAST(image_path AS INTEGER) FROM mnist_train", ["convert", "TRY_CAST"], id="bad-cast"),
    pytest.param("SELECT label, image_path FROM mnist_train GROUP BY label", ["image_path"], id="bad-group-by"),
    pytest.param("SELECT * FROM mnist_train WHERE label = 'seven'", ["seven"], id="bad-comparison"),
    # Names that cannot become assets, files and collections.
    pytest.param('COPY "my table" FROM "thanosql-dataset/mnist_data/mnist_test.csv"', ["letters, digits and underscores"], id="name-with-space"),
    pytest.param('COPY "a""b" FROM "thanosql-dataset/mnist_data/mnist_test.csv"', ["letters, digits and underscores"], id="name-with-quote"),
    pytest.param('COPY "a;b" FROM "thanosql-dataset/mnist_data/mnist_test.csv"', ["letters, digits and underscores"], id="name-with-semicolon"),
    pytest.param("COPY " + "t" * 300 + ' FROM "thanosql-dataset/mnist_data/mnist_test.csv"', ["longer than 63"], id="name-300-chars"),
    pytest.param('BUILD MODEL "my model" USING SimCLR AS SELECT * FROM mnist_train', ["letters, digits and underscores"], id="model-name-with-space"),
    pytest.param("CONVERT USING my_image_search_model OPTIONS (table_name='bad name') AS SELECT * FROM mnist_test", ["letters"], id="convert-table-name"),
    pytest.param("CREATE TABLE \"x y\" USING my_image_search_model FROM 'thanosql-dataset/mnist_data/test'", ["letters"], id="create-table-name"),
    # Every object kind's overwrite collision.
    pytest.param('COPY "MNIST_test" FROM "thanosql-dataset/mnist_data/mnist_test.csv"', ["differs from existing 'mnist_test' only in case"], id="table-name-in-other-case"),
    pytest.param("CREATE VIEW \"Mnist_Train\" AS SELECT 1 AS a", ["differs from existing 'mnist_train' only in case"], id="view-name-in-other-case"),
    pytest.param("GET THANOSQL DATASET mnist_data", ["already exists", "overwrite=True"], id="dataset-exists"),
    pytest.param('COPY mnist_train FROM "thanosql-dataset/mnist_data/mnist_train.csv"', ["already exists", "overwrite=True"], id="table-exists"),
    pytest.param("BUILD MODEL my_image_search_model USING SimCLR AS SELECT * FROM mnist_train", ["already exists", "overwrite=True"], id="model-exists"),
    pytest.param("CREATE TABLE mnist_train USING my_image_search_model FROM 'thanosql-dataset/mnist_data/test'", ["mnist_train", "overwrite"], id="folder-table-exists"),
    pytest.param("CONVERT USING my_image_search_model OPTIONS (table_name='mnist_train') AS SELECT * FROM mnist_test", ["replace table 'mnist_train'"], id="convert-onto-unrelated-table"),
    # Options of the wrong kind.
    pytest.param("COPY mnist_train OPTIONS (overwrite='yes') FROM \"thanosql-dataset/mnist_data/mnist_train.csv\"", ["overwrite", "True or False"], id="overwrite-not-bool"),
    pytest.param("COPY t2 OPTIONS (append=1) FROM \"thanosql-dataset/mnist_data/mnist_train.csv\"", ["append"], id="append-not-bool"),
    pytest.param("BUILD MODEL m2 USING SimCLR OPTIONS (backbone='vgg') AS SELECT * FROM mnist_train", ["backbone", "small_cnn"], id="unknown-backbone"),
    pytest.param("BUILD MODEL m2 USING SimCLR OPTIONS (schedule='every day') AS SELECT * FROM mnist_train", ["schedule"], id="bad-cron"),
    pytest.param("BUILD MODEL m2 USING SimCLR OPTIONS (image_col='') AS SELECT * FROM mnist_train", ["image_col"], id="empty-image-col"),
    pytest.param("BUILD MODEL m2 USING NoSuchAlgorithm AS SELECT * FROM mnist_train", ["NoSuchAlgorithm", "SimCLR"], id="unknown-algorithm"),
    # Paths.
    pytest.param('COPY t2 FROM "no/such/file.csv"', ["does not exist"], id="missing-csv"),
    pytest.param("SEARCH IMAGE images='no_such.jpg' USING my_image_search_model AS SELECT * FROM mnist_test", ["no_such.jpg", "does not exist"], id="missing-query-image"),
    pytest.param(
        "SEARCH IMAGE images='thanosql-dataset/mnist_data/test' USING my_image_search_model AS SELECT * FROM mnist_test",
        ["is a folder, not an image file"],
        id="folder-as-query-image",
    ),
    pytest.param("CREATE TABLE t3 USING my_image_search_model FROM 'no/such/folder'", ["does not exist"], id="missing-folder"),
    *_numeric_cases(),
]


def refused(conn, sql: str, error_type: type[ThanoSQLError] = ThanoSQLError) -> ThanoSQLError:
    """The error `sql` gets, after checking that it has a hint and changed nothing in the workspace."""
    home = conn.settings.home
    before = snapshot(home)
    with pytest.raises(error_type) as caught:
        conn.execute(sql)
    assert caught.value.hint, f"no hint in: {caught.value}"
    assert snapshot(home) == before, "a refused statement changed the workspace"
    return caught.value


def refused_naming(conn, sql: str, words: list[str], error_type: type[ThanoSQLError] = ThanoSQLError) -> ThanoSQLError:
    """`refused`, with each of `words` in its message (in any case)."""
    error = refused(conn, sql, error_type)
    message = str(error)
    for word in words:
        assert word.lower() in message.lower(), message
    return error


@pytest.mark.parametrize("sql, words", CASES)
def test_bad_input_is_refused_cleanly(tutorial_conn, sql, words):
    assert len(str(refused_naming(tutorial_conn, sql, words))) < 2000


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 80


KEYWORD_NAMES = [
    pytest.param('COPY select FROM "thanosql-dataset/mnist_data/mnist_test.csv"', id="copy-into-keyword"),
    pytest.param("BUILD MODEL from USING SimCLR AS SELECT * FROM mnist_train", id="model-named-from"),
    pytest.param("SELECT * FROM where", id="select-from-keyword"),
    pytest.param('COPY "unterminated FROM "x.csv"', id="unterminated-quoted-name"),
]


@pytest.mark.parametrize("sql", KEYWORD_NAMES)
def test_keywords_as_names_are_syntax_errors_at_their_place(tutorial_conn, sql):
    from thanosql.errors import ThanoSQLSyntaxError

    error = refused(tutorial_conn, sql, ThanoSQLSyntaxError)
    assert error.line == 1 and error.col


OUTSIDE = [
    pytest.param('COPY t2 FROM "/etc/passwd"', id="absolute-csv"),
    pytest.param('COPY t2 FROM "../../outside.csv"', id="dotdot-csv"),
    pytest.param("SEARCH IMAGE images='/etc/passwd' USING my_image_search_model AS SELECT * FROM mnist_test", id="absolute-query-image"),
    pytest.param("CREATE TABLE t3 USING my_image_search_model FROM '/etc'", id="absolute-folder"),
    pytest.param("SELECT * FROM read_csv('/etc/passwd')", id="table-function"),
    pytest.param("SELECT * FROM read_csv('thanosql-dataset/mnist_data/mnist_test.csv')", id="table-function-inside"),
]


@pytest.mark.parametrize("sql", OUTSIDE)
def test_paths_outside_the_workspace_are_refused_where_paths_are_confined(tutorial_home, monkeypatch, sql):
    import thanosql

    monkeypatch.setenv("THANOSQL_CONFINE_PATHS", "1")
    error = refused(thanosql.connect(tutorial_home, progress=False), sql)
    assert error.line == 1


MORE = [
    pytest.param("SELECT * INTO newtab FROM mnist_train", ["INTO creates a table"], id="select-into"),
    pytest.param("VACUUM", ["VACUUM statements are not supported"], id="vacuum"),
    pytest.param("TRUNCATE mnist_train", ["TRUNCATE statements are not supported"], id="truncate"),
    pytest.param("SELECT '\ud800'", ["not valid Unicode"], id="lone-surrogate"),
    pytest.param("PRINT IMAGE AS (SELECT label FROM mnist_test LIMIT 2)", ["no column of image paths"], id="print-without-images"),
]


@pytest.mark.parametrize("sql, words", MORE)
def test_more_bad_statements_are_refused_at_their_place(tutorial_conn, sql, words):
    error = refused(tutorial_conn, sql)
    for word in words:
        assert word in str(error)
    assert error.line == 1


@pytest.mark.parametrize("value", [None, 42, b"SELECT 1", ["SELECT 1"]], ids=["none", "int", "bytes", "list"])
def test_the_api_takes_text_only(tutorial_conn, value):
    with pytest.raises(ThanoSQLError, match="takes the statement as a str"):
        tutorial_conn.execute(value)
    with pytest.raises(ThanoSQLError, match="takes the statement as a str"):
        tutorial_conn.execute_script(value)


def _copy_with_columns(conn, name: str, header: str, rows: list[str]) -> None:
    (conn.settings.home / f"{name}.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    conn.execute(f"COPY {name} FROM '{name}.csv'")


def test_convert_will_not_overwrite_a_column_named_like_its_embedding(scratch_conn):
    _copy_with_columns(scratch_conn, "clash", "image_path,my_image_search_model_simclr", ["thanosql-dataset/mnist_data/test/923.jpg,1"])
    error = refused(scratch_conn, "CONVERT USING my_image_search_model AS SELECT * FROM clash")
    assert "not my_image_search_model's embedding" in str(error)


def test_search_refuses_a_table_with_a_column_named_like_its_similarity(scratch_conn):
    _copy_with_columns(scratch_conn, "clash", "image_path,label", ["thanosql-dataset/mnist_data/test/923.jpg,1"])
    scratch_conn.execute("CONVERT USING my_image_search_model AS SELECT * FROM clash")
    _copy_with_columns(scratch_conn, "clash2", "image_path,my_image_search_model_simclr_similarity1", ["thanosql-dataset/mnist_data/test/923.jpg,5"])
    scratch_conn.execute("CONVERT USING my_image_search_model AS SELECT * FROM clash2")
    with pytest.raises(ThanoSQLError, match="a name SEARCH gives its similarity columns"):
        scratch_conn.execute("SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM clash2")


def test_copy_refuses_reserved_column_names(scratch_conn):
    (scratch_conn.settings.home / "reserved.csv").write_text("image_path,__thanosql_generation\na.jpg,1\n")
    with pytest.raises(ThanoSQLError, match="reserved for ThanoSQL"):
        scratch_conn.execute("COPY reserved FROM 'reserved.csv'")


def test_an_empty_top_k_result_has_only_the_selected_columns(tutorial_conn):
    rows = tutorial_conn.execute(
        "SELECT image_path FROM (SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model "
        "AS SELECT * FROM mnist_test) WHERE label = 99 ORDER BY my_image_search_model_simclr_similarity1 DESC LIMIT 3"
    )
    assert list(rows.columns) == ["image_path"] and rows.empty
    assert tutorial_conn.last_plan.startswith("top-k")


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM mnist_test LIMIT -1", "SELECT * FROM mnist_test OFFSET -5", "SELECT * FROM mnist_test LIMIT 99999999999999999999"],
    ids=["negative-limit", "negative-offset", "huge-limit"],
)
def test_limits_are_row_counts(tutorial_conn, sql):
    with pytest.raises(ThanoSQLError, match="is not a row count") as caught:
        tutorial_conn.execute(sql)
    assert caught.value.col > 20  # at the number, not the start of the query


def test_a_top_k_past_every_row_is_empty(tutorial_conn):
    rows = tutorial_conn.execute(
        "SELECT image_path FROM (SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model "
        "AS SELECT * FROM mnist_test) ORDER BY my_image_search_model_simclr_similarity1 DESC LIMIT 3 OFFSET 9223372036854775807"
    )
    assert rows.empty and list(rows.columns) == ["image_path"]


def test_an_error_from_a_view_points_into_the_statement_not_the_next_one(scratch_conn):
    from resources import Settings, build_resources

    _copy_with_columns(scratch_conn, "t", "a,b", ["1,2"])
    scratch_conn.execute("CREATE VIEW v AS SELECT a, b FROM t")
    # The view broken behind ThanoSQL's back (ThanoSQL refuses such a change itself).
    with build_resources(Settings.from_env(scratch_conn.settings.home))["warehouse"].connect() as con:
        con.execute("CREATE OR REPLACE TABLE t AS SELECT 5 AS a")
    with pytest.raises(ThanoSQLError) as caught:
        scratch_conn.execute_script("SELECT * FROM v;\nSELECT 1 AS b")
    assert 'Column "b" does not exist' in str(caught.value) and caught.value.line == 1  # b of the view's text, not line 2's


def test_an_unknown_column_is_named_in_postgresql_words_with_a_close_name_if_any(tutorial_conn):
    assert 'Column "labl" does not exist (did you mean label?)' in str(refused(tutorial_conn, "SELECT labl FROM mnist_test"))
    unlike = str(refused(tutorial_conn, "SELECT nosuch FROM mnist_test"))
    assert 'Column "nosuch" does not exist.' in unlike and "did you mean" not in unlike
    qualified = refused(tutorial_conn, "SELECT * FROM mnist_test t1, mnist_test t2 WHERE t1.label = t2.lable")
    assert 'Column "t2.lable" does not exist (did you mean label?)' in str(qualified) and qualified.col == 61
    inserted = refused(tutorial_conn, "INSERT INTO mnist_train (image_path, nope) VALUES ('a', 1)")
    assert 'Column "nope" does not exist in table mnist_train.' in str(inserted) and inserted.col == 38
    assert "Candidate functions" not in str(refused(tutorial_conn, "SELECT avg(filename) FROM mnist_test"))


def test_a_string_in_double_quotes_is_told_to_take_single_quotes(tutorial_conn):
    quoted = refused(tutorial_conn, 'SELECT * FROM mnist_test WHERE filename = "923.jpg"')
    assert 'Column "923.jpg" does not exist' in str(quoted) and quoted.col == 44
    assert quoted.hint == "In a query, \"923.jpg\" in double quotes is a column name; write a string in single quotes: '923.jpg'."
    assert "single quotes" not in refused(tutorial_conn, "SELECT labl FROM mnist_test").hint  # an unquoted name: a typo
    meant = refused(tutorial_conn, 'SELECT "lable" FROM mnist_test')  # a column meant, misspelt
    assert "did you mean label?" in str(meant) and "single quotes" not in meant.hint


@pytest.mark.parametrize(
    "sql, at",
    [
        pytest.param("SELECT * FROM mnist_test WHERE label < 'abc'", "'abc'", id="query-literal"),
        pytest.param("UPDATE mnist_train SET label = 1 WHERE nosuch = 1", "nosuch", id="update-column"),
        pytest.param("INSERT INTO mnist_train (image_path, filename, label) VALUES ('x', 'y', 'notint')", "'notint'", id="insert-literal"),
    ],
)
def test_a_store_error_points_at_what_it_names(tutorial_conn, sql, at):
    error = refused(tutorial_conn, sql)
    assert (error.line, error.col) == (1, sql.index(at) + 1), str(error)
