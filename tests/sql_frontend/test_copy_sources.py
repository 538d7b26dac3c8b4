"""COPY from every source: CSV, Parquet, JSON records, JSON Lines and folders (the ImageFolder
layout gives labels), with column names made lowercase identifiers, through the Python API on the
tutorial's workspace; bad sources are refused and change nothing."""

from __future__ import annotations

import os
import pickle

import dagster as dg
import pandas as pd
import pytest

from resources import Settings
from tests.sql_frontend.test_bad_input_catalogue import refused, refused_naming
from thanosql.errors import DataError, OptionError, SQLError

ROWS = pd.DataFrame({"Image Path": ["a.jpg", "b.jpg", "c.jpg"], "Label": [3, 1, 4], "score": [0.5, 0.25, 1.0]})


def _metadata(conn, table: str) -> dict:
    instance = Settings.from_env(conn.settings.home).dagster_instance()
    return instance.get_latest_materialization_event(dg.AssetKey(["table", table])).asset_materialization.metadata


@pytest.mark.parametrize(
    "suffix, write",
    [
        (".parquet", lambda frame, path: frame.to_parquet(path, index=False)),
        (".json", lambda frame, path: frame.to_json(path, orient="records")),
        (".jsonl", lambda frame, path: frame.to_json(path, orient="records", lines=True)),
        (".csv", lambda frame, path: frame.to_csv(path, index=False)),
        (".pkl", lambda frame, path: frame.to_pickle(path)),
    ],
)
def test_copy_reads_each_format_with_lowercase_identifier_columns(scratch_conn, suffix, write):
    home = scratch_conn.settings.home
    write(ROWS, home / f"rows{suffix}")
    scratch_conn.execute(f"COPY rows FROM 'rows{suffix}'")
    table = scratch_conn.execute("SELECT * FROM rows ORDER BY label")
    assert list(table.columns) == ["image_path", "label", "score"]
    assert table.values.tolist() == [["b.jpg", 1, 0.25], ["a.jpg", 3, 0.5], ["c.jpg", 4, 1.0]]
    renamed = _metadata(scratch_conn, "rows")["renamed_columns"].value
    assert renamed == [f'"rows{suffix}": column \'Image Path\' is \'image_path\'', f'"rows{suffix}": column \'Label\' is \'label\'']


def test_append_takes_another_format_with_the_same_columns(scratch_conn):
    home = scratch_conn.settings.home
    ROWS.to_parquet(home / "rows.parquet", index=False)
    ROWS.assign(Label=[5, 9, 2]).to_json(home / "more.jsonl", orient="records", lines=True)
    scratch_conn.execute("COPY rows FROM 'rows.parquet'")
    scratch_conn.execute("COPY rows OPTIONS (append=True) FROM 'more.jsonl'")
    assert sorted(scratch_conn.execute("SELECT label FROM rows")["label"]) == [1, 2, 3, 4, 5, 9]


def test_a_folder_gives_a_row_per_file_and_imagefolder_labels(scratch_conn):
    home = scratch_conn.settings.home
    for label, names in {"cat": ["1.jpg", "2.jpg"], "dog": ["3.png"]}.items():
        for name in names:
            (home / "pets" / label).mkdir(parents=True, exist_ok=True)
            (home / "pets" / label / name).write_bytes(b"x")
    scratch_conn.execute("COPY pets FROM 'pets'")
    pets = scratch_conn.execute("SELECT * FROM pets ORDER BY filename")
    assert pets.values.tolist() == [["pets/cat/1.jpg", "1.jpg", "cat"], ["pets/cat/2.jpg", "2.jpg", "cat"], ["pets/dog/3.png", "3.png", "dog"]]
    (home / "flat").mkdir()
    (home / "flat" / "a.jpg").write_bytes(b"x")
    scratch_conn.execute("COPY flat FROM 'flat'")
    assert list(scratch_conn.execute("SELECT * FROM flat").columns) == ["image_path", "filename"]  # no class folders: no label


def _write(home, name: str, content: bytes) -> str:
    (home / name).write_bytes(content)
    return name


@pytest.mark.parametrize(
    "name, content, error, words",
    [
        ("empty.parquet", b"", DataError, ["empty"]),
        ("empty.json", b"", DataError, ["empty"]),
        ("binary.parquet", b"\x00\x01 not parquet", DataError, ["not a Parquet file", "to_parquet"]),
        ("text.json", b"[1, 2", DataError, ["not JSON records", "orient"]),
        ("mixed.json", b'[{"a": 1}, {"a": "one"}]', DataError, ["mixes values", "'a'"]),
        ("lines.jsonl", b'{"a": 1}\nnot json\n', DataError, ["not JSON Lines"]),
        ("table.xml", b"<rows/>", SQLError, [".parquet", "folders"]),
        ("picture.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", DataError, ["line 1 is not UTF-8", "UTF-8 CSV"]),
        ("blank.csv", b"\xef\xbb\xbf \n\n", DataError, ["is empty", "column names"]),
        ("series.pkl", pickle.dumps(pd.Series([1, 2])), DataError, ["pickled Series", "DataFrame"]),
        ("list.pkl", pickle.dumps([1, 2]), DataError, ["pickled list"]),
        ("truncated.pkl", pickle.dumps(ROWS)[:40], DataError, ["not a pickled pandas DataFrame"]),
    ],
)
def test_bad_sources_are_refused_and_change_nothing(scratch_conn, name, content, error, words):
    _write(scratch_conn.settings.home, name, content)
    refused_naming(scratch_conn, f"COPY bad FROM '{name}'", words, error)
    assert "bad" not in set(scratch_conn.execute("SELECT table_name FROM (LIST TABLE) AS t")["table_name"])


class _RunsACommand:
    """A pickle that runs a shell command when loaded: what an untrusted pickle can do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_before_it_runs(scratch_conn, tmp_path):
    marker = tmp_path / "ran"
    frame = ROWS.assign(payload=[_RunsACommand(marker), None, None])
    (scratch_conn.settings.home / "evil.pkl").write_bytes(pickle.dumps(frame))
    message = str(refused(scratch_conn, "COPY evil FROM 'evil.pkl'", DataError))
    assert "posix.system" in message or "os.system" in message, message
    assert not marker.exists()


def test_copy_from_a_json_string_of_records(scratch_conn):
    records = ROWS.to_json(orient="records")
    scratch_conn.execute(f"COPY rows FROM '{records}'")
    table = scratch_conn.execute("SELECT * FROM rows ORDER BY label")
    assert table.values.tolist() == [["b.jpg", 1, 0.25], ["a.jpg", 3, 0.5], ["c.jpg", 4, 1.0]]
    scratch_conn.execute(f"COPY rows OPTIONS (append=True) FROM '{records}'")  # the same records again: a second source
    assert len(scratch_conn.execute("SELECT * FROM rows")) == 6
    error = refused(scratch_conn, """COPY other FROM '[{"a": 1}, {"a": "one"}]'""", DataError)
    assert "not a list of records" in str(error) and "mixes values" in str(error) and "orient" in error.hint
    error = refused(scratch_conn, """COPY other FROM '{"a": 1}'""", DataError)  # an object, not a list of them
    assert "it starts with '{', not with [" in error.bare_message and (error.line, error.col) == (1, 17)


def test_an_empty_folder_or_other_columns_on_append_are_refused(scratch_conn):
    home = scratch_conn.settings.home
    (home / "nothing").mkdir()
    assert "holds no files" in str(refused(scratch_conn, "COPY bad FROM 'nothing'", DataError))
    ROWS.to_parquet(home / "rows.parquet", index=False)
    scratch_conn.execute("COPY rows FROM 'rows.parquet'")
    ROWS.drop(columns="score").to_json(home / "fewer.json", orient="records")
    message = str(refused(scratch_conn, "COPY rows OPTIONS (append=True) FROM 'fewer.json'", DataError))
    assert "the table's columns" in message and "image_path, label" in message


def test_appended_sources_of_any_format_match_columns_by_name_and_read_empty_fields_as_null(scratch_conn):
    home = scratch_conn.settings.home
    (home / "ab.csv").write_text("a,b\n1,2\n")
    (home / "ba.csv").write_text("b,a\n3,4\n")
    (home / "ba.json").write_text('[{"b": 5, "a": 6}]')
    (home / "gaps.csv").write_text("a,b\n,7\n")
    scratch_conn.execute("COPY ab FROM 'ab.csv'")
    for source in ("ba.csv", "ba.json", "gaps.csv"):  # the CSV files alone, then with a JSON file among them
        scratch_conn.execute(f"COPY ab OPTIONS (append=True) FROM '{source}'")
    rows = scratch_conn.execute("SELECT a, b FROM ab")
    assert rows.astype(object).where(rows.notna(), None).values.tolist() == [[1, 2], [4, 3], [6, 5], [None, 7]]


def _workbook(path, **sheets: pd.DataFrame):
    with pd.ExcelWriter(path) as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)


def test_copy_reads_a_spreadsheet_and_asks_which_sheet_when_it_has_several(scratch_conn):
    home = scratch_conn.settings.home
    _workbook(home / "one.xlsx", rows=ROWS)
    scratch_conn.execute("COPY rows FROM 'one.xlsx'")
    assert scratch_conn.execute("SELECT label FROM rows ORDER BY label")["label"].tolist() == [1, 3, 4]
    _workbook(home / "two.xlsx", first=ROWS, second=ROWS.assign(Label=[7, 8, 9]))
    message = str(refused(scratch_conn, "COPY two FROM 'two.xlsx'", DataError))
    assert "2 sheets (first, second)" in message and "sheet='first'" in message
    scratch_conn.execute("COPY two OPTIONS (sheet='second') FROM 'two.xlsx'")
    assert scratch_conn.execute("SELECT label FROM two ORDER BY label")["label"].tolist() == [7, 8, 9]
    scratch_conn.execute("COPY two OPTIONS (append=True, sheet='first') FROM 'two.xlsx'")
    assert scratch_conn.execute("SELECT label FROM two ORDER BY label")["label"].tolist() == [1, 3, 4, 7, 8, 9]
    assert "sheet='first'" in _definitions_description(scratch_conn, "two")


def _definitions_description(conn, table: str) -> str:
    from resources import build_resources
    from thanosql_assets.defs.objects import build_definitions, catalog_specs

    resources = build_resources(conn.settings)
    graph = build_definitions(catalog_specs(resources["catalog"]), resources).resolve_asset_graph()
    return graph.get(dg.AssetKey(["table", table])).description


@pytest.mark.parametrize(
    "sql, error, words",
    [
        ("COPY bad OPTIONS (sheet='nope') FROM 'book.xlsx'", DataError, ["no sheet 'nope'", "first, second"]),
        ("COPY bad OPTIONS (sheet='first') FROM 'mixed.xlsx'", DataError, ["mixes values", "int, str"]),
        ("COPY bad OPTIONS (sheet='first') FROM 'rows.csv'", OptionError, ["sheet", "not one"]),
        ("COPY bad FROM 'fake.xlsx'", DataError, ["not a spreadsheet"]),
    ],
)
def test_bad_spreadsheets_are_refused_and_change_nothing(scratch_conn, sql, error, words):
    home = scratch_conn.settings.home
    _workbook(home / "book.xlsx", first=ROWS, second=ROWS)
    _workbook(home / "mixed.xlsx", first=pd.DataFrame({"a": [1, "one", 2]}))
    ROWS.to_csv(home / "rows.csv", index=False)
    (home / "fake.xlsx").write_bytes(b"PK not a zip really")
    refused_naming(scratch_conn, sql, words, error)


def test_when_the_third_of_five_statements_fails_the_first_two_stay_done_and_the_rest_do_not_run(scratch_conn):
    copy = "COPY {} FROM 'thanosql-dataset/mnist_data/mnist_test.csv'"
    script = ";\n".join([copy.format("first"), copy.format("second"), "SELECT * FROM missing", copy.format("fourth"), copy.format("fifth")])
    with pytest.raises(SQLError) as caught:
        scratch_conn.execute_script(script)
    assert caught.value.line == 3 and "missing" in str(caught.value)
    tables = set(scratch_conn.execute("SELECT table_name FROM (LIST TABLE) AS t")["table_name"])
    assert {"first", "second"} <= tables and not {"fourth", "fifth"} & tables


def test_a_large_csv_streams_and_falls_back_to_a_whole_read_when_its_end_changes_a_type(scratch_conn):
    home = scratch_conn.settings.home
    rows = "".join(f"{i},{i % 10}\n" for i in range(1, 120_000))
    (home / "streamed.csv").write_text("ID,label\n" + rows)
    (home / "changing.csv").write_text("ID,label\n" + rows + "seven,3\n")
    scratch_conn.execute("COPY streamed FROM 'streamed.csv'")
    scratch_conn.execute("COPY changing FROM 'changing.csv'")
    types = scratch_conn.execute(
        "SELECT table_name, data_type FROM information_schema.columns WHERE column_name = 'id' AND table_name IN ('streamed', 'changing') ORDER BY 1"
    )
    assert types.values.tolist() == [["changing", "VARCHAR"], ["streamed", "BIGINT"]]
    assert scratch_conn.execute("SELECT count(*) AS n FROM changing")["n"].item() == 120_000
    assert _metadata(scratch_conn, "streamed")["renamed_columns"].value == ['"streamed.csv": column \'ID\' is \'id\'']
