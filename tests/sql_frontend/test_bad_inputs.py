"""Every bad input gets a clear error (what, where, how to fix) and changes nothing."""

from __future__ import annotations

import pytest

from tests.workspace_state import snapshot
from thanosql.errors import (
    DataError,
    ObjectExistsError,
    ObjectNotFoundError,
    OptionError,
    ThanoSQLError,
    ThanoSQLSyntaxError,
)


def assert_fails_cleanly(conn, sql, error_type, *, words, line=None):
    before = snapshot(conn.settings.home)
    with pytest.raises(error_type) as caught:
        conn.execute(sql)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    if line is not None:
        assert caught.value.line == line, message
        assert message.startswith(f"line {line}:")
    assert caught.value.hint, "every error tells the user how to fix it"
    assert snapshot(conn.settings.home) == before, "a failed statement changed the workspace"
    return caught.value


def test_unparseable_sql(tutorial_conn):
    error = assert_fails_cleanly(
        tutorial_conn, "BUILD MODEL m\nUSING SimCLR\nOPTIONS (max_epochs=)\nAS SELECT * FROM mnist_train", ThanoSQLSyntaxError,
        words=["Expected an option value"], line=3,
    )
    assert error.col == 21


def test_unknown_table_in_select(tutorial_conn):
    error = assert_fails_cleanly(
        tutorial_conn, "SELECT *\nFROM mnist_tran\nLIMIT 5", ObjectNotFoundError,
        words=["Table 'mnist_tran' does not exist", "mnist_train"], line=2,
    )
    assert error.col == 6


def test_unknown_table_in_build_model(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, "BUILD MODEL m2 USING SimCLR OPTIONS (max_epochs=1) AS SELECT * FROM nowhere", ObjectNotFoundError,
        words=["'nowhere' does not exist"], line=1,
    )


def test_unknown_model_in_convert(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, "CONVERT USING no_such_model OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test",
        ObjectNotFoundError, words=["Model 'no_such_model' does not exist", "my_image_search_model"], line=1,
    )


def test_unknown_model_in_search(tutorial_conn):
    error = assert_fails_cleanly(
        tutorial_conn, "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg'\nUSING no_such_model\nAS SELECT * FROM mnist_test",
        ObjectNotFoundError, words=["Model 'no_such_model' does not exist"], line=2,
    )
    assert error.col == 7


def test_unknown_dataset(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, "GET THANOSQL DATASET cifar_data", ObjectNotFoundError, words=["cifar_data", "mnist_data"], line=1
    )


def test_dataset_exists_without_overwrite(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, "GET THANOSQL DATASET mnist_data", ObjectExistsError, words=["already exists", "overwrite=True"]
    )


def test_copy_onto_existing_table_without_overwrite(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, 'COPY mnist_train FROM "thanosql-dataset/mnist_data/mnist_test.csv"', ObjectExistsError,
        words=["Table 'mnist_train' already exists", "overwrite=True"], line=1,
    )


def test_copy_overwrite_false_is_the_same_as_no_overwrite(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, 'COPY mnist_train OPTIONS (overwrite=False) FROM "thanosql-dataset/mnist_data/mnist_test.csv"',
        ObjectExistsError, words=["already exists"],
    )


def test_copy_from_a_missing_file(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, 'COPY new_table FROM "thanosql-dataset/mnist_data/nope.csv"', ObjectNotFoundError,
        words=["nope.csv", "does not exist"], line=1,
    )


def test_build_model_over_existing_model_without_overwrite(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, "BUILD MODEL my_image_search_model USING SimCLR OPTIONS (max_epochs=1) AS SELECT * FROM mnist_train",
        ObjectExistsError, words=["Model 'my_image_search_model' already exists", "overwrite=True"], line=1,
    )


def test_image_col_that_is_not_a_column(tutorial_conn):
    # Seed 003 writes image_col="img_path" for a table whose column is image_path.
    error = assert_fails_cleanly(
        tutorial_conn,
        'BUILD MODEL m3\nUSING SimCLR\nOPTIONS (image_col="img_path", max_epochs=1)\nAS SELECT * FROM mnist_train',
        ObjectNotFoundError, words=["'img_path' is not a column", "image_path, filename, label"], line=3,
    )
    assert error.col == 20


def test_image_col_of_convert_that_is_not_a_column(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn,
        'CONVERT USING my_image_search_model OPTIONS (table_name="mnist_test", image_col="img_path") AS SELECT * FROM mnist_test',
        ObjectNotFoundError, words=["'img_path' is not a column"], line=1,
    )


def test_unknown_option(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn, "BUILD MODEL m4 USING SimCLR OPTIONS (max_epoch=1) AS SELECT * FROM mnist_train", OptionError,
        words=["Unknown option 'max_epoch'", "did you mean 'max_epochs'", "learning_rate"], line=1,
    )


def test_search_with_a_model_never_converted_into_that_table(tutorial_conn):
    error = assert_fails_cleanly(
        tutorial_conn,
        "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg'\nUSING my_image_search_model\nAS SELECT * FROM mnist_train",
        ObjectNotFoundError,
        words=["has not embedded table 'mnist_train'", "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_train')"],
        line=3,
    )
    assert error.col == 18


def test_search_with_a_missing_query_image(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn,
        "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/nope.jpg' USING my_image_search_model AS SELECT * FROM mnist_test",
        ObjectNotFoundError, words=["Query image 'thanosql-dataset/mnist_data/test/nope.jpg' does not exist"], line=1,
    )


def test_missing_image_file_fails_build_model_and_leaves_no_model(scratch_conn):
    home = scratch_conn.settings.home
    csv = home / "broken.csv"
    csv.write_text(
        "image_path,filename,label\n"
        "thanosql-dataset/mnist_data/train/6782.jpg,6782.jpg,5\n"
        "thanosql-dataset/mnist_data/train/1810.jpg,1810.jpg,5\n"
        "thanosql-dataset/mnist_data/train/gone.jpg,gone.jpg,1\n"
    )
    scratch_conn.execute("COPY broken FROM 'broken.csv'")
    error = assert_fails_cleanly(
        scratch_conn, "BUILD MODEL broken_model USING SimCLR OPTIONS (max_epochs=1)\nAS SELECT * FROM broken", DataError,
        words=["1 of 3 image paths", "gone.jpg", "name no file"], line=2,
    )
    assert error.col == 4 and error.snippet.endswith("^^^^^^")  # found while training, placed at the query that chose the images


def test_missing_image_file_fails_convert_and_keeps_the_old_embeddings(scratch_conn):
    home = scratch_conn.settings.home
    (home / "thanosql-dataset/mnist_data/test/5099.jpg").unlink()
    assert_fails_cleanly(
        scratch_conn,
        "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_test', image_col='image_path') AS SELECT * FROM mnist_test",
        DataError, words=["5099.jpg", "name no file"], line=1,
    ).col == 73  # at image_col, where written


def test_an_image_error_points_into_its_own_statement_of_a_script(scratch_conn):
    (scratch_conn.settings.home / "thanosql-dataset/mnist_data/test/5099.jpg").unlink()
    with pytest.raises(DataError) as caught:
        scratch_conn.execute_script(
            "SELECT count(*) FROM (SELECT * FROM mnist_train) AS t;\n"
            "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_test') AS (\n  SELECT * FROM mnist_test\n)"
        )
    assert (caught.value.line, caught.value.col) == (3, 3), str(caught.value)


def test_corrupt_image_file_fails_convert_cleanly(scratch_conn):
    home = scratch_conn.settings.home
    (home / "thanosql-dataset/mnist_data/test/5099.jpg").write_bytes(b"not a jpeg at all")
    assert_fails_cleanly(
        scratch_conn,
        "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test",
        DataError, words=["5099.jpg", "not an image"],
    )


def test_unsupported_statement(tutorial_conn):
    assert_fails_cleanly(tutorial_conn, "GRANT SELECT ON mnist_train TO someone", ThanoSQLError, words=["not supported"])


def test_a_failing_statement_in_a_script_stops_it_with_the_script_line(tutorial_conn):
    before = snapshot(tutorial_conn.settings.home)
    with pytest.raises(ObjectNotFoundError) as caught:
        tutorial_conn.execute_script(
            "SELECT * FROM mnist_train LIMIT 1;\n"
            "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg'\n"
            "USING my_image_search_model AS SELECT * FROM mnist_train;\n"
            "COPY never_created FROM 'thanosql-dataset/mnist_data/mnist_test.csv'"
        )
    assert caught.value.line == 3
    assert snapshot(tutorial_conn.settings.home) == before


SEARCH_923 = "SEARCH IMAGE images={} USING my_image_search_model AS SELECT * FROM mnist_test"


def test_search_with_a_query_image_that_is_not_an_image(tutorial_conn, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert_fails_cleanly(
        tutorial_conn, SEARCH_923.format(repr(str(text))), ThanoSQLError, words=["query image is unusable", "notes.txt"], line=1,
    )


def test_search_with_a_corrupt_query_image(tutorial_conn, tmp_path):
    corrupt = tmp_path / "half.jpg"
    corrupt.write_bytes((tutorial_conn.settings.home / "thanosql-dataset/mnist_data/test/923.jpg").read_bytes()[:40])
    assert_fails_cleanly(
        tutorial_conn, SEARCH_923.format(repr(str(corrupt))), ThanoSQLError, words=["query image is unusable", "half.jpg"], line=1,
    )


def test_search_with_an_empty_list_of_images(tutorial_conn):
    error = assert_fails_cleanly(
        tutorial_conn, "SELECT * FROM (\n" + SEARCH_923.format("[]") + ")", ThanoSQLError,
        words=["images= needs one image path or a non-empty list"], line=2,
    )
    assert error.col == 21


def test_create_table_using_a_folder_without_matching_files(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn,
        "CREATE TABLE pngs USING my_image_search_model OPTIONS (file_type=['.png']) FROM 'thanosql-dataset/mnist_data/test'",
        ObjectNotFoundError, words=["holds no .png files"], line=1,
    )


def test_create_table_using_a_missing_folder(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn,
        "CREATE TABLE pics USING my_image_search_model OPTIONS (file_type=['.jpg']) FROM 'no/such/folder'",
        ObjectNotFoundError, words=["Folder 'no/such/folder' does not exist"], line=1,
    )


def test_create_table_using_with_file_type_not_a_list(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn,
        "CREATE TABLE pics USING my_image_search_model OPTIONS (file_type='.jpg') FROM 'thanosql-dataset/mnist_data/test'",
        OptionError, words=["file_type"], line=1,
    )


def test_copy_append_and_overwrite_together(tutorial_conn):
    assert_fails_cleanly(
        tutorial_conn,
        "COPY mnist_test OPTIONS (overwrite=True, append=True) FROM 'thanosql-dataset/mnist_data/mnist_test.csv'",
        OptionError, words=["not both"], line=1,
    )
