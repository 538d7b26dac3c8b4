"""COPY's CSV reading: every row lands, or the error names the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from thanosql.errors import DataError
from thanosql_assets.defs.csv_files import read_csv_files

HEADER = "image_path,filename,label\n"


def _files(tmp_path: Path, **contents: str) -> list[tuple[str, Path]]:
    files = []
    for name, text in contents.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        files.append((path.name, path))
    return files


def test_every_row_of_every_file_lands_with_inferred_types(tmp_path):
    table = read_csv_files(_files(tmp_path, a=HEADER + "a/1.jpg,1.jpg,5\na/2.jpg,2.jpg,3\n", b=HEADER + "a/3.jpg,3.jpg,7\n"))
    assert table.num_rows == 3 and table.column("label").to_pylist() == [5, 3, 7]
    assert str(table.schema.field("label").type) == "int64"


def test_quoted_values_may_hold_commas_and_newlines(tmp_path):
    table = read_csv_files(_files(tmp_path, a='x,y\n"a, b","line\nbreak"\n'))
    assert table.to_pylist() == [{"x": "a, b", "y": "line\nbreak"}]


def test_a_header_only_file_is_an_empty_table_of_text_columns(tmp_path):
    table = read_csv_files(_files(tmp_path, a=HEADER))
    assert table.num_rows == 0 and table.column_names == ["image_path", "filename", "label"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("a/0.jpg,0.jpg,1\na/1.jpg,1.jpg,5\n", ["line 1 looks like data", "no header row"]),
        ("a,b,c\n1,2,3\n4,5\n", ["line 3 has 2 values", "3 columns"]),
        ("a,b,c\n1,2,3\n4,5,6,7\n", ["line 3 has 4 values"]),
        ("", ["is empty"]),
        ("\n\n", ["is empty"]),
        ('a,b\n1,"unterminated\nmore\n', ["line 2", "not valid CSV"]),
        ("a,,c\n1,2,3\n", ["empty column name"]),
        ("a,b,a\n1,2,3\n", ["'a' twice"]),
        ("1,2\n3,4\n", ["looks like data"]),
    ],
    ids=["no-header", "short-row", "long-row", "empty", "blank-lines", "unterminated-quote", "empty-name", "duplicate-name", "numeric-header"],
)
def test_a_file_that_would_lose_rows_is_refused_naming_the_line(tmp_path, text, words):
    with pytest.raises(DataError) as caught:
        read_csv_files(_files(tmp_path, a=text))
    for word in words:
        assert word in str(caught.value)
    assert caught.value.hint


def test_non_utf8_text_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"x\nok\ncaf\xe9\n")
    with pytest.raises(DataError, match="line 3 is not UTF-8"):
        read_csv_files([("latin1.csv", path)])


def test_an_appended_file_must_have_the_tables_columns(tmp_path):
    files = _files(tmp_path, a=HEADER + "a/1.jpg,1.jpg,5\n", b="image_path,filename,label,extra\na/3.jpg,3.jpg,7,x\n")
    with pytest.raises(DataError, match="not in the table: extra"):
        read_csv_files(files)


def test_an_appended_file_matches_the_tables_columns_by_their_stored_names(tmp_path):
    files = _files(tmp_path, a=HEADER + "a/1.jpg,1.jpg,5\n", b="Label, Image Path,FILENAME\n7,a/3.jpg,3.jpg\n")
    table = read_csv_files(files)
    assert table.column_names == ["image_path", "filename", "label"]
    assert table.column("image_path").to_pylist() == ["a/1.jpg", "a/3.jpg"] and table.column("label").to_pylist() == [5, 7]


def test_an_appended_file_matches_same_names_before_stored_ones(tmp_path):
    # "a b" and "a_b" are both stored as a_b at first sight: the file's own "a_b" is the table's "a_b".
    table = read_csv_files(_files(tmp_path, a="a b,a_b\n1,2\n", b="a_b,a b\n20,10\n"))
    assert table.column("a b").to_pylist() == [1, 10] and table.column("a_b").to_pylist() == [2, 20]


def test_an_appended_value_must_fit_the_tables_type(tmp_path):
    files = _files(tmp_path, a=HEADER + "a/1.jpg,1.jpg,5\n", b=HEADER + "a/3.jpg,3.jpg,7\na/4.jpg,4.jpg,seven\n")
    with pytest.raises(DataError, match=r"b.csv\" line 3: label = 'seven' is not of the table's type int64"):
        read_csv_files(files)


def test_appended_values_are_converted_to_the_tables_types(tmp_path):
    files = _files(tmp_path, a="x,y\n1.5,a\n", b="x,y\n2,b\n")
    table = read_csv_files(files)
    assert table.column("x").to_pylist() == [1.5, 2.0]


def test_appended_empty_fields_are_null_in_a_column_of_numbers(tmp_path):
    table = read_csv_files(_files(tmp_path, a="x,y\n1,a\n", b="x,y\n,b\n"))
    assert table.column("x").to_pylist() == [1, None] and str(table.schema.field("x").type) == "int64"


def test_numbers_keep_their_text_when_a_number_type_would_change_it(tmp_path):
    table = read_csv_files(_files(tmp_path, a="id,big,n,x\n00123,12345678901234567890123,7,0.5\n042,1,8,1.25\n"))
    assert table.column("id").to_pylist() == ["00123", "042"]  # leading zeros kept
    assert table.column("big").to_pylist() == ["12345678901234567890123", "1"]  # not rounded to a float
    assert table.column("n").to_pylist() == [7, 8] and table.column("x").to_pylist() == [0.5, 1.25]


@pytest.mark.parametrize(
    "appended, line, value",
    [("x,y\n1,a\n007,b\n", 3, "'007'"), ("x,y\ntrue,a\n", 2, "'true'"), ('x,y\n1,"two\nlines"\n\n1.5,c\n', 5, "'1.5'")],
    ids=["leading-zero", "bool", "after-a-multiline-value"],
)
def test_an_appended_value_is_checked_as_written_at_its_line(tmp_path, appended, line, value):
    files = _files(tmp_path, a="x,y\n1,a\n", b=appended)
    with pytest.raises(DataError, match=rf'b.csv" line {line}: x = {value}'):
        read_csv_files(files)


def test_headers_may_hold_numbers_but_not_only_numbers(tmp_path):
    assert read_csv_files(_files(tmp_path, a="year,2019\n2020,5\n")).column_names == ["year", "2019"]
    with pytest.raises(DataError, match="looks like data"):
        read_csv_files(_files(tmp_path, b="2019,2020\n1,2\n"))


def test_names_differing_only_in_case_are_one_column_twice(tmp_path):
    with pytest.raises(DataError, match="twice"):
        read_csv_files(_files(tmp_path, a="Label,label\n1,2\n"))


def test_long_values_and_old_mac_line_endings_are_read(tmp_path):
    long = "x" * 200_000
    table = read_csv_files(_files(tmp_path, a=f"a,b\r{long},1\r"))
    assert table.column("a").to_pylist() == [long]


def _long_file(tmp_path: Path, last_line: str, rows: int = 120_000) -> Path:
    """A file longer than pyarrow's first block (1 MiB), whose last line is `last_line`."""
    path = tmp_path / "long.csv"
    path.write_text("id,label,score\n" + "".join(f"{i},{i % 10},{i / 7:.3f}\n" for i in range(1, rows)) + last_line)
    return path


@pytest.mark.parametrize(
    "last_line",
    [
        pytest.param("120000,3,1.5\n", id="plain"),
        pytest.param("0120000,3,1.5\n", id="leading-zero-late"),
    ],
)
def test_a_streamed_file_has_the_types_of_the_whole_file(tmp_path, last_line):
    import pyarrow as pa

    from thanosql_assets.defs.csv_files import stream_csv_file

    path = _long_file(tmp_path, last_line)
    streamed = stream_csv_file(path.name, path, lambda header: header)
    whole = read_csv_files([(path.name, path)])
    batches = streamed.reader()
    table = pa.Table.from_batches(list(batches), schema=batches.schema)
    assert table.schema == whole.schema and table.equals(whole)


@pytest.mark.parametrize("last_line", [pytest.param("seven,3,1.5\n", id="text"), pytest.param("12345678901234567890,3,1.5\n", id="overlong")])
def test_a_streamed_file_whose_end_does_not_fit_its_start_says_so(tmp_path, last_line):
    import pyarrow as pa

    from thanosql_assets.defs.csv_files import stream_csv_file

    path = _long_file(tmp_path, last_line)
    streamed = stream_csv_file(path.name, path, lambda header: header)
    with pytest.raises(pa.ArrowInvalid):
        streamed.reader().read_all()
    assert streamed.types_changed
    assert read_csv_files([(path.name, path)]).schema.field("id").type == pa.string()  # what COPY falls back to
