"""Rows of searched tables held in this process, so that a top-k SEARCH of a simple shape reads no table.

The tutorial's query, `SELECT image_path, <similarity> FROM (SEARCH ... AS SELECT * FROM t) ORDER
BY <similarity> DESC LIMIT 4`, asks Qdrant for candidate images and then needs only the rows of
those images. Reading them from the table store is a statement per query, most of the query's
time. While the store promises that its tables stay as they are (`WarehouseResource.held`: an
embedded DuckDB file that this process holds and has not written since), a copy of the table's
rows taken in that epoch *is* the table, and the candidates' rows are looked up in memory.

A snapshot holds every column but the table's embedding columns, the positions of each image
key's rows, and which rows have no embedding (their similarity is NULL, which `DESC` ranks
first, as in PostgreSQL). It is taken once the table's top-k searches in one epoch have spent
as long reading rows by statement as copying the table would take, so a query now and then (a
notebook cell, after which the store is released to other processes) does not pay for copying
the table, and a burst of queries pays once.

`DirectShape` says which queries it serves: the SEARCH's query selects columns of its one table
(`*` or names, no filter), and the outer query selects columns and similarities, ranked by one
similarity, with LIMIT/OFFSET and nothing else. Other shapes run as one statement over the
candidates (`candidates`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlglot import exp

from resources import Generation, WarehouseResource
from resources.warehouse import parse_generations, quote
from sql_frontend.execution.candidates import covers_top_k
from sql_frontend.language.names import object_name
from thanosql.errors import QueryError

# Taking a snapshot costs about this much per row; it is taken once the top-k searches of the
# table in one epoch have spent as long reading rows by statement (never more than twice the
# best choice in hindsight, whether the searches stop there or go on).
BUILD_SECONDS_PER_ROW = 2e-6
MAX_ROWS = 5_000_000  # larger tables are always read by statement
_ROW = "__thanosql_row"
_NONE = np.zeros(0, dtype=np.int64)
_GENERATION = "__thanosql_generation"


@dataclass(frozen=True)
class RowSnapshot:
    """A table's rows as of one epoch of the store, for one of its embedding columns."""

    epoch: int
    generation: dict[str, str]  # the embedding column's record when the rows were read
    rows: pd.DataFrame  # every column but the embedding columns, in the table's order
    keys: pd.Index  # the distinct image keys of the rows with an embedding
    grouped: np.ndarray  # positions of those rows, grouped by key: key i's are grouped[starts[i]:starts[i + 1]]
    starts: np.ndarray
    unembedded: np.ndarray  # positions of the rows without an embedding in this column
    embedded: np.ndarray  # bool per row: whether it has one

    @classmethod
    def of(cls, epoch: int, generation: dict[str, str], rows: pd.DataFrame, keys: pd.Series, embedded: np.ndarray) -> RowSnapshot:
        """`rows` (in table order) indexed by the image `keys` of the rows that are `embedded`."""
        with_embedding = np.flatnonzero(embedded)
        codes, distinct = pd.factorize(keys.to_numpy()[with_embedding])  # vectorized: a dict per key would cost seconds per million rows
        keyed = codes >= 0  # a row without an image key is no image's row: Qdrant never proposes it
        with_embedding, codes = with_embedding[keyed], codes[keyed]
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(distinct)))])
        index = pd.Index(distinct)
        index.get_indexer(index[:1])  # build its hash table now, not on the first search
        return cls(epoch, generation, rows, index, with_embedding[order], starts, np.flatnonzero(~embedded), embedded)

    def positions(self, keys: Sequence[str]) -> list[np.ndarray]:
        """The positions of each key's rows with an embedding (none for a key the table no longer has)."""
        found = []
        for key in keys:  # a few dozen keys: one hash lookup each costs less than a vectorized call's setup
            try:
                code = self.keys.get_loc(key)
            except KeyError:
                found.append(_NONE)
                continue
            found.append(self.grouped[self.starts[code] : self.starts[code + 1]])
        return found


@dataclass(frozen=True)
class DirectShape:
    """How the outer query's columns come from a snapshot: (output name, snapshot column or similarity number)."""

    outputs: tuple[tuple[str, str | int], ...]


class _Held:
    """This process's snapshots and top-k search counts, per store location and epoch."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshots: dict[tuple[str, str, str], RowSnapshot] = {}
        self.spent: dict[tuple[str, str, str], tuple[int, float]] = {}  # -> (epoch, seconds reading rows by statement)


_held = _Held()


def snapshot_for(
    warehouse: WarehouseResource, epoch: int | None, generation: Generation, embedding_columns: Sequence[str], rows: int
) -> RowSnapshot | None:
    """The snapshot of `generation`'s table and column for this epoch (taken now if its searches
    have spent as long reading by statement as taking `rows` rows would), or None: read by statement."""
    if epoch is None:
        return None
    location = warehouse.location
    key = (location, generation.table, generation.column)
    with _held.lock:
        for stale in [k for k, kept in _held.snapshots.items() if k[0] == location and kept.epoch != epoch]:
            del _held.snapshots[stale]  # the table may have changed since: free the memory now
        snapshot = _held.snapshots.get(key)
        if snapshot is not None and snapshot.epoch == epoch:
            return snapshot if snapshot.generation == generation.as_dict() else None
        seen_epoch, spent = _held.spent.get(key, (epoch, 0.0))
    if (spent if seen_epoch == epoch else 0.0) < rows * BUILD_SECONDS_PER_ROW:
        return None
    snapshot = _take(warehouse, epoch, generation, embedding_columns)
    if snapshot is not None:
        with _held.lock:
            _held.snapshots[key] = snapshot
    return snapshot if snapshot is not None and snapshot.generation == generation.as_dict() else None


def spent_reading(warehouse: WarehouseResource, epoch: int | None, generation: Generation, seconds: float) -> None:
    """Count `seconds` that a top-k search a snapshot could serve spent reading rows by statement."""
    if epoch is None:
        return
    key = (warehouse.location, generation.table, generation.column)
    with _held.lock:
        seen_epoch, spent = _held.spent.get(key, (epoch, 0.0))
        _held.spent[key] = (epoch, (spent if seen_epoch == epoch else 0.0) + seconds)


def _take(warehouse: WarehouseResource, epoch: int, generation: Generation, embedding_columns: Sequence[str]) -> RowSnapshot | None:
    """Read the table for a snapshot, in statements of one epoch (the caller holds the store)."""
    table, column = quote(generation.table), quote(generation.column)
    excluded = ", ".join(quote(name) for name in embedding_columns)
    generation_sql = warehouse.generation_expression(generation.table).sql(dialect=warehouse.dialect)
    try:
        if int(warehouse.query(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0]) > MAX_ROWS:
            return None
        comment = warehouse.query(f"SELECT {generation_sql} AS {_GENERATION}")[_GENERATION].iloc[0]
        rows = warehouse.query(f"SELECT rowid AS {_ROW}, * EXCLUDE ({excluded}) FROM {table}")
        # Apart, because selecting `column IS NULL` for every row reads every vector; the table's
        # statistics answer this filter without reading them when no row lacks one.
        missing = warehouse.query(f"SELECT rowid AS {_ROW} FROM {table} WHERE {column} IS NULL")[_ROW]
    except QueryError:
        # The columns known to this process are out of date (another process changed the table
        # before this epoch): the statement plan reads the table's state and says what changed.
        return None
    recorded = parse_generations(comment).get(generation.column)
    embedded = ~np.isin(rows.pop(_ROW).to_numpy(), missing.to_numpy())
    return RowSnapshot.of(epoch, recorded or {}, rows, rows[generation.image_col], embedded)


def direct_shape(
    query: exp.Select, search_query: exp.Expression, table: str, table_columns: Sequence[str], embedding_columns: Sequence[str],
    similarity_columns: Sequence[str], subquery_alias: str | None, rank_column: str
) -> DirectShape | None:
    """How to serve `query` (a top-k query over a SEARCH reading `table`) from a snapshot, or None."""
    if not isinstance(search_query, exp.Select) or _used_args(search_query) != {"expressions", "from_"}:
        return None
    source = search_query.args["from_"].this
    if not isinstance(source, exp.Table) or object_name(source.this) != table or _used_args(source) - {"this", "alias"}:
        return None  # a schema, a sample, joins...
    if source.args.get("alias") is not None and source.args["alias"].columns:
        return None  # t AS a(x, y) renames the columns
    inner: list[tuple[str, str | int]] = []  # the SEARCH's columns: (name, table column)
    for projection in search_query.expressions:
        if isinstance(projection, exp.Star):
            if _used_args(projection):  # * EXCLUDE, * REPLACE, * RENAME
                return None
            inner.extend((name, name) for name in table_columns)
            continue
        named = _column_of(projection, table_columns, {source.alias_or_name})
        if named is None:
            return None
        inner.append(named)
    inner.extend((name, number) for number, name in enumerate(similarity_columns))
    if len({name.lower() for name, _ in inner}) != len(inner):
        return None
    if _used_args(query) - {"expressions", "from_", "order", "limit", "offset"} or len(query.args["order"].expressions) != 1:
        return None
    inner_names = [name for name, _ in inner]
    outputs: list[tuple[str, str | int]] = []
    for projection in query.expressions:
        if isinstance(projection, exp.Star):
            if _used_args(projection):
                return None
            outputs.extend(inner)
            continue
        named = _column_of(projection, inner_names, {subquery_alias} if subquery_alias else set())
        if named is None:
            return None
        name, source_name = named
        outputs.append((name, dict(inner)[source_name]))
    names = [name.lower() for name, _ in outputs]  # DuckDB would rename a second `x` or `X` to x_1
    if len(set(names)) != len(names) or any(source in embedding_columns for _, source in outputs):
        return None
    if rank_column not in similarity_columns:
        return None
    return DirectShape(tuple(outputs))


def _used_args(node: exp.Expression) -> set[str]:
    return {name for name, value in node.args.items() if value not in (None, [], False)}


def _column_of(projection: exp.Expression, columns: Sequence[str], qualifiers: set[str]) -> tuple[str, str] | None:
    """(output name, column) of a projection that is a column of `columns`, maybe renamed; else None."""
    alias = None
    if isinstance(projection, exp.Alias):
        alias, projection = projection.alias, projection.this
    if not isinstance(projection, exp.Column) or projection.args.get("db") or projection.args.get("catalog"):
        return None
    if projection.table and projection.table not in qualifiers:
        return None
    identifier = projection.this
    if not isinstance(identifier, exp.Identifier):
        return None
    if identifier.quoted:
        matches = [column for column in columns if column == identifier.name]
    else:
        matches = [column for column in columns if column.lower() == identifier.name.lower()]
    if len(matches) != 1:
        return None
    return (alias or matches[0], matches[0])


@dataclass(frozen=True)
class RankedRows:
    positions: list[int]
    scores: list[float]  # NaN for rows without an embedding
    complete: bool  # whether no candidate left out could have made the top rows


def rank(snapshot: RowSnapshot, keys: Sequence[str], scores: Sequence[float], needed: int, nulls_first: bool, exhausted: bool) -> RankedRows:
    """The first `needed` rows by similarity among the candidates (`keys` with their `scores`,
    best first) and the rows without an embedding."""
    unembedded = [(int(position), float("nan")) for position in snapshot.unembedded[:needed]]
    ranked: list[tuple[int, float]] = [] if not nulls_first else list(unembedded)
    for found, score in zip(snapshot.positions(keys), scores):
        if len(ranked) >= needed:
            break
        ranked.extend((int(position), score) for position in found)
    if not nulls_first:
        ranked.extend(unembedded)
    ranked = ranked[:needed]
    last = ranked[-1][1] if ranked else None
    complete = covers_top_k(len(ranked), needed, last, scores[-1] if scores else None, nulls_first, exhausted)
    return RankedRows([position for position, _ in ranked], [score for _, score in ranked], complete)
