"""COPY's CSV files as one Arrow table: every row of every file, or an error naming the line.

The structure is checked with Python's `csv` module, which knows line numbers (a row with too
few or too many values, an unterminated quote, a file without a header row); pyarrow then infers
the column types. Appended files must have the first file's columns, and their values must fit
the first file's types: a text value in an integer column is an error, not a column turned text.

A file is streamed, never held as text: the structure check reads it line by line, pyarrow reads
it in blocks into the typed table (the one copy in memory), and only the columns typed as numbers
are read again as text, to keep ids with leading zeros and overlong integers as written. The text
of other columns, and the line a row starts on, are read back only to explain an error.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from thanosql.errors import DataError

_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]+")

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


@dataclass
class StreamedCsv:
    """One CSV file, checked line by line, read a block at a time with the types of its first block.

    `reader()` gives the rows as Arrow record batches for the table store to consume as they come,
    so the file is never whole in memory. Should a later block not fit those types (a text value
    in a column of numbers), reading stops with `types_changed` set: the caller reads the file
    whole instead, with types inferred from all of it, as `read_csv_files` does.
    """

    source: str
    path: Path
    header: list[str]  # the column names as the file writes them
    names: list[str]  # the table's column names, in the file's order
    column_types: dict[str, pa.DataType]  # columns of numbers kept as text (leading zeros, overlong integers)
    types_changed: bool = False

    def reader(self) -> pa.RecordBatchReader:
        inner = pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(column_names=self.names, skip_rows=1),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(strings_can_be_null=False, column_types=self.column_types),
        )

        def batches():
            try:
                yield from inner
            except pa.ArrowInvalid:
                self.types_changed = True
                raise

        return pa.RecordBatchReader.from_batches(inner.schema, batches())


def stream_csv_file(source: str, path: Path, names: Callable[[list[str]], list[str]]) -> StreamedCsv | None:
    """The file, checked (DataError at the first bad line), as a `StreamedCsv` whose columns are
    `names(header)`; None when its first block leaves a column's type open (no value in it yet)."""
    if _blank(path):
        raise DataError(f'COPY: "{source}" is empty.', hint=_HEADER_HINT)
    header = _check_structure(source, path)
    options = dict(read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1), parse_options=pa_csv.ParseOptions(newlines_in_values=True))
    with pa_csv.open_csv(path, convert_options=pa_csv.ConvertOptions(strings_can_be_null=False), **options) as probe:
        schema = probe.schema
    if any(pa.types.is_null(field.type) for field in schema):
        return None
    numeric = [field for field in schema if pa.types.is_integer(field.type) or pa.types.is_floating(field.type)]
    text = set()
    if numeric:
        as_text = pa_csv.ConvertOptions(
            include_columns=[field.name for field in numeric], column_types={field.name: pa.string() for field in numeric}, strings_can_be_null=False
        )
        with pa_csv.open_csv(path, convert_options=as_text, **options) as reader:
            for batch in reader:
                for field in numeric:
                    patterns = [_LEADING_ZERO] + ([] if pa.types.is_integer(field.type) else [_LONG_INTEGER])
                    if field.name not in text and any(pc.any(pc.match_substring_regex(batch.column(field.name), p)).as_py() for p in patterns):
                        text.add(field.name)
    new_names = names(header)
    return StreamedCsv(source, path, header, new_names, {new_names[header.index(name)]: pa.string() for name in text})


@dataclass(frozen=True)
class _CsvFile:
    source: str  # as the statement names it
    path: Path
    typed: pa.Table  # the values with inferred types

    def text_column(self, name: str) -> list[str]:
        """The values of column `name` as written."""
        return _parse(self.path, pa_csv.ConvertOptions(include_columns=[name], column_types={name: pa.string()}, strings_can_be_null=False)).column(name).to_pylist()

    def line_of_row(self, index: int) -> int:
        """The line row `index` (0-based, after the header) starts on."""
        with _text(self.path) as file:
            reader = csv.reader(file)
            next(reader, None)
            row_start, row = reader.line_num + 1, -1
            for values in reader:
                if values:
                    row += 1
                    if row == index:
                        return row_start
                row_start = reader.line_num + 1
        return row_start


def _text(path: Path):
    return path.open(encoding="utf-8-sig", newline="")


def _read_one(source: str, path: Path) -> _CsvFile:
    if _blank(path):
        raise DataError(f'COPY: "{source}" is empty.', hint=_HEADER_HINT)
    header = _check_structure(source, path)
    typed = _parse(path, pa_csv.ConvertOptions(strings_can_be_null=False))
    numeric = [name for name in header if pa.types.is_integer(typed.column(name).type) or pa.types.is_floating(typed.column(name).type)]
    undecided = numeric + [name for name in header if pa.types.is_null(typed.column(name).type)]
    if undecided:
        as_text = _parse(path, pa_csv.ConvertOptions(include_columns=undecided, column_types={name: pa.string() for name in undecided}, strings_can_be_null=False))
        for name in undecided:
            exact = _exact_column(typed.column(name), as_text.column(name))
            if exact is not typed.column(name):
                typed = typed.set_column(typed.schema.get_field_index(name), name, exact)
    return _CsvFile(source, path, typed)


def _blank(path: Path) -> bool:
    """Whether the file holds nothing but white space (and a byte-order mark), read a block at a time."""
    with path.open("rb") as file:
        first = True
        while block := file.read(1 << 16):
            if first:
                block, first = block.removeprefix(b"\xef\xbb\xbf"), False
            if block.strip():
                return False
    return True


def _parse(path: Path, convert_options: pa_csv.ConvertOptions) -> pa.Table:
    return pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(newlines_in_values=True), convert_options=convert_options)


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


def _check_structure(source: str, path: Path) -> list[str]:
    """The header; raises DataError at the first line that is not UTF-8 or not a row of the
    header's width (a quoted value may span lines)."""
    row_start = 1
    try:
        with _text(path) as file:
            reader = csv.reader(file, strict=True)
            header = next(reader)
            _check_header(source, header)
            width = len(header)
            row_start = reader.line_num + 1
            for row in reader:
                if row and len(row) != width:
                    raise DataError(
                        f'COPY: "{source}" line {row_start} has {len(row)} value{"s" if len(row) != 1 else ""}; '
                        f'the header has {width} columns ({", ".join(header)}).',
                        hint="Every line needs one value per column (quote values that contain commas); nothing was copied.",
                    )
                row_start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(
            f'COPY: "{source}" line {row_start} is not valid CSV: {error}.',
            hint="Close every quoted value with a double quote; write a quote inside one as two quotes.",
        ) from None
    except UnicodeDecodeError:
        raise DataError(f'COPY: "{source}" line {_undecodable_line(path)} is not UTF-8 text.', hint="Save the file as UTF-8 CSV.") from None
    return header


def _undecodable_line(path: Path) -> int:
    """The line of the first byte that is not UTF-8, read a block at a time."""
    decoder, line = codecs.getincrementaldecoder("utf-8")(), 1
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the last block
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                return line + block[: max(0, error.start - pending)].count(b"\n")
            line += block.count(b"\n")
    return line


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


def column_identifiers(columns: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Column names as the table stores them: lowercase identifiers (letters, digits, _; not
    starting with a digit; made unique with _2, _3...), and (old, new) for each that changed."""
    names, renamed = [], []
    for name in columns:
        new = _NOT_IDENTIFIER.sub("_", name.strip().lower()).strip("_") or "column"
        if new[0].isdigit():
            new = f"_{new}"
        base, number = new, 2
        while new in names:
            new, number = f"{base}_{number}", number + 1
        names.append(new)
        if new != name:
            renamed.append((name, new))
    return names, renamed


def _conform(file: _CsvFile, schema: pa.Schema, first_source: str) -> pa.Table:
    """An appended file's rows with the table's columns and types, or DataError naming the first
    value that does not fit: its text must read as the table's type (no `true` in an integer
    column, no `007` where the table has numbers); whole numbers may join a float column."""
    table, source = file.typed, file.source
    # The same names first, then as the table stores them: "Image Path" appends to image_path.
    same = [name for name in schema.names if name in table.column_names]
    rest_own = [name for name in table.column_names if name not in same]
    rest_wanted = [name for name in schema.names if name not in same]
    own = {**{name: name for name in same}, **dict(zip(column_identifiers(rest_own)[0], rest_own))}
    wanted = {**{name: name for name in same}, **dict(zip(column_identifiers(rest_wanted)[0], rest_wanted))}
    if sorted(own) != sorted(wanted):
        missing = [raw for name, raw in wanted.items() if name not in own]
        extra = [raw for name, raw in own.items() if name not in wanted]
        raise DataError(
            f'COPY ... append: "{source}" has other columns than the table ("{first_source}")'
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; not in the table: {', '.join(extra)}" if extra else "")
            + ".",
            hint=f"An appended file needs the table's columns: {', '.join(schema.names)} (or use overwrite=True to replace the table).",
        )
    columns = []
    key_of = {raw: name for name, raw in wanted.items()}
    for field in schema:
        name = key_of[field.name]
        column = table.column(own[name])
        if column.type == field.type or pa.types.is_string(field.type) or (pa.types.is_integer(column.type) and pa.types.is_floating(field.type)):
            columns.append(column.cast(field.type))
            continue
        values = file.text_column(own[name])
        row = next((i for i, value in enumerate(values) if value != "" and not _reads_as(value, field.type)), None)
        if row is None:  # only its empty fields held it back: NULLs, as the first COPY reads them
            columns.append(pa.array([None if value == "" else value for value in values], pa.string()).cast(field.type))
            continue
        raise DataError(
            f'COPY ... append: "{source}" line {file.line_of_row(row)}: {field.name} = {values[row]!r} '
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
