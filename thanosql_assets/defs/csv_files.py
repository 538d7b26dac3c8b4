"""COPY's CSV files as one Arrow table: every row of every file, or an error naming the line.

The structure is checked with Python's `csv` module, which knows line numbers (a row with too
few or too many values, an unterminated quote, a file without a header row); pyarrow then infers
the column types. Appended files must have the first file's columns, and their values must fit
the first file's types: a text value in an integer column is an error, not a column turned text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from thanosql.errors import DataError

_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")
_FILE_LIKE = re.compile(r"[/\\]|\.(jpe?g|png|bmp|gif|tiff?|webp|csv)$", re.IGNORECASE)
# A long value is still one value: the csv module's default cap (128 KiB) would call it invalid.
csv.field_size_limit(2**31 - 1)
_LEADING_ZERO = r"^\s*[+-]?0\d"
_LONG_INTEGER = r"^\s*[+-]?\d{16,}\s*$"
_HEADER_HINT = "COPY needs a first line of column names, e.g. image_path,filename,label."


def read_csv_files(files: Sequence[tuple[str, Path]]) -> pa.Table:
    """(as written in the statement, path) of each file, in order -> the rows of all of them.

    Raises DataError naming the file and line of the first problem; nothing is read partially.
    """
    read = [_read_one(source, path) for source, path in files]
    first = read[0]
    return pa.concat_tables([first.typed, *(_conform(file, first.typed.schema, first.source) for file in read[1:])])


@dataclass(frozen=True)
class _CsvFile:
    source: str  # as the statement names it
    typed: pa.Table  # the values with inferred types
    text: pa.Table  # the same values as written
    lines: list[int]  # the line each row starts on


def _read_one(source: str, path: Path) -> _CsvFile:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(f'COPY: "{source}" line {line} is not UTF-8 text.', hint="Save the file as UTF-8 CSV.") from None
    if not text.strip():
        raise DataError(f'COPY: "{source}" is empty.', hint=_HEADER_HINT)
    header, lines = _check_structure(source, text)
    typed = _parse(text, pa_csv.ConvertOptions(strings_can_be_null=False))
    as_text = _parse(text, pa_csv.ConvertOptions(column_types={name: pa.string() for name in header}, strings_can_be_null=False))
    columns = [_exact_column(typed.column(name), as_text.column(name)) for name in header]
    return _CsvFile(source, pa.table(columns, names=header), as_text, lines)


def _parse(text: str, convert_options: pa_csv.ConvertOptions) -> pa.Table:
    return pa_csv.read_csv(io.BytesIO(text.encode()), parse_options=pa_csv.ParseOptions(newlines_in_values=True), convert_options=convert_options)


def _exact_column(typed: pa.ChunkedArray, text: pa.ChunkedArray) -> pa.ChunkedArray:
    """The inferred column, unless its type would change what the file says: text stays text when
    numbers have leading zeros (ids, zip codes) or are integers too long for a 64-bit integer
    (which pyarrow would round to a float); a column without rows is text."""
    if pa.types.is_null(typed.type):
        return text
    if pa.types.is_integer(typed.type) or pa.types.is_floating(typed.type):
        patterns = [_LEADING_ZERO] + ([] if pa.types.is_integer(typed.type) else [_LONG_INTEGER])
        if any(pc.any(pc.match_substring_regex(text, pattern)).as_py() for pattern in patterns):
            return text
    return typed


def _check_structure(source: str, text: str) -> tuple[list[str], list[int]]:
    """The header and the line each row starts on (a quoted value may span lines); raises
    DataError at the first line that is not a row of the header's width."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row_start = 1
    lines = []
    try:
        header = next(reader)
        _check_header(source, header)
        row_start = reader.line_num + 1
        for row in reader:
            if row and len(row) != len(header):
                raise DataError(
                    f'COPY: "{source}" line {row_start} has {len(row)} value{"s" if len(row) != 1 else ""}; '
                    f'the header has {len(header)} columns ({", ".join(header)}).',
                    hint="Every line needs one value per column (quote values that contain commas); nothing was copied.",
                )
            if row:
                lines.append(row_start)
            row_start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(
            f'COPY: "{source}" line {row_start} is not valid CSV: {error}.',
            hint="Close every quoted value with a double quote; write a quote inside one as two quotes.",
        ) from None
    return header, lines


def _check_header(source: str, header: list[str]) -> None:
    names = [name.strip() for name in header]
    if any(not name for name in names):
        raise DataError(f'COPY: "{source}" line 1 has an empty column name.', hint=_HEADER_HINT)
    # Paths and file names are data; so is a line of numbers only (`year,2019` is a header).
    data_like = [name for name in names if _FILE_LIKE.search(name)] or (names if all(_NUMBER.match(name) for name in names) else [])
    if data_like:
        raise DataError(
            f'COPY: "{source}" line 1 looks like data ({data_like[0]!r}), not column names: the file has no header row.',
            hint=_HEADER_HINT + " Add that line at the top of the file.",
        )
    reserved = [name for name in names if name.lower().startswith("__thanosql")]
    if reserved:
        raise DataError(f'COPY: "{source}" line 1: column name {reserved[0]!r} is reserved for ThanoSQL.', hint="Rename that column.")
    folded = [name.lower() for name in names]  # the table store folds them: Label and label clash
    duplicates = sorted({name for name in names if folded.count(name.lower()) > 1})
    if duplicates:
        raise DataError(f'COPY: "{source}" line 1 names column {duplicates[0]!r} twice.', hint="Give every column its own name.")


def _conform(file: _CsvFile, schema: pa.Schema, first_source: str) -> pa.Table:
    """An appended file's rows with the table's columns and types, or DataError naming the first
    value that does not fit: its text must read as the table's type (no `true` in an integer
    column, no `007` where the table has numbers); whole numbers may join a float column."""
    table, source = file.typed, file.source
    if sorted(table.column_names) != sorted(schema.names):
        missing = [name for name in schema.names if name not in table.column_names]
        extra = [name for name in table.column_names if name not in schema.names]
        raise DataError(
            f'COPY ... append: "{source}" has other columns than the table ("{first_source}")'
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; not in the table: {', '.join(extra)}" if extra else "")
            + ".",
            hint=f"An appended file needs the table's columns: {', '.join(schema.names)} (or use overwrite=True to replace the table).",
        )
    columns = []
    for field in schema:
        column = table.column(field.name)
        if column.type == field.type or pa.types.is_string(field.type) or (pa.types.is_integer(column.type) and pa.types.is_floating(field.type)):
            columns.append(column.cast(field.type))
            continue
        values = file.text.column(field.name).to_pylist()
        row = next((i for i, value in enumerate(values) if not _reads_as(value, field.type)), 0)
        raise DataError(
            f'COPY ... append: "{source}" line {file.lines[row] if file.lines else 2}: {field.name} = {values[row] if values else None!r} '
            f"is not of the table's type {field.type}.",
            hint=f"Fix that value, or replace the table with overwrite=True if {field.name} should hold {column.type} values.",
        )
    return pa.table(columns, schema=schema)


def _reads_as(text: str, type_: pa.DataType) -> bool:
    """Whether a value as written is one of `type_` as COPY infers types."""
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        if re.match(_LEADING_ZERO, text) or re.match(r"^\s*$", text):
            return False
    try:
        pa.array([text]).cast(type_)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
