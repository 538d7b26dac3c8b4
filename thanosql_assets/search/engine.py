"""Evaluating queries: SELECT (possibly over SEARCH subqueries), SEARCH and PRINT.

SEARCH reads the latest materialized assets only: the model version and Qdrant collection the
catalog names for (table, model). It embeds the query images with the model version that built
the collection and adds one column `<model>_<algorithm>_similarity<i>` per query image: the
cosine similarity (in [-1, 1]) between that image and the row's image.

Plans:
- Alone, or under a query that does not rank by similarity, SEARCH scores every row of its
  `AS SELECT` (an exhaustive scan of the collection).
- Under `SELECT ... FROM (SEARCH ...) [WHERE ...] ORDER BY <similarity> DESC LIMIT k [OFFSET o]`
  (the tutorial's PRINT query) it is a top-k operator: Qdrant finds the m images most similar
  to the query image, their rows are fetched by key (an index lookup), the SEARCH's own query
  and the outer query run over just those rows, and m grows (x4) until the k-th result is
  strictly more similar than the least similar candidate, so no row left out could have made
  the top k. The result is the one the exhaustive plan gives.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
from sqlglot import exp

from resources import (
    CatalogResource,
    Generation,
    ModelRegistryResource,
    StaleGeneration,
    VectorStoreResource,
    WarehouseResource,
    WorkspaceResource,
)
from resources.vector_store import CollectionNotFound
from resources.warehouse import CandidatesStatement
from sql_frontend.dialect import ConvertUsing, PrintMedia, SearchMedia, option_value
from sql_frontend.errors import DataError, ObjectNotFoundError, PathNotAllowedError, SQLError, ThanoSQLError
from sql_frontend.positions import locate
from thanosql_assets.models.algorithms import ALGORITHMS
from thanosql_assets.queries import object_name, referenced_tables, run_query
from thanosql_assets.specs import embedding_name

_KEY = "__thanosql_image_key"
_CANDIDATES = "__thanosql_candidates"
_GENERATION = "__thanosql_generation"
_RANK = "__thanosql_rank"
_SEARCH_RELATION = "__thanosql_search_{}"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
PRINT_ATTR = "thanosql.print_image"
MAX_ATTEMPTS = 5  # a query restarts when a CONVERT switches a table it reads; it gives up after this many
FIRST_CANDIDATES = 32  # images asked of Qdrant on a top-k plan's first round, at least 4x k


@dataclass
class PreparedSearch:
    """A SEARCH checked against the catalog, with its query images embedded."""

    query: exp.Expression  # the SEARCH's AS SELECT
    source: exp.Table  # the one table it reads
    table: str
    image_col: str
    generation: Generation  # the collection and model version the rows' embeddings come from
    prefix: str  # <model>_<algorithm>
    query_vectors: np.ndarray

    @property
    def collection(self) -> str:
        return self.generation.collection

    def similarity_column(self, number: int) -> str:
        return f"{self.prefix}_similarity{number}"


@dataclass
class TopK:
    subquery: exp.Subquery
    search: SearchMedia
    column: str  # the similarity column the outer query ranks by
    needed: int  # LIMIT + OFFSET


class QueryEngine:
    def __init__(
        self,
        *,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        vector_store: VectorStoreResource,
        sql: str = "",
    ):
        self.workspace = workspace
        self.warehouse = warehouse
        self.catalog = catalog
        self.model_registry = model_registry
        self.vector_store = vector_store
        self.sql = sql
        self._tables: dict[str, dict[str, Generation]] | None = None  # table -> its embedding generations, read once per attempt
        self._fresh = False  # whether to read them from the table store rather than this process's memory
        self.last_plan = ""  # "exhaustive" or "top-k (... candidates)", for tests and EXPLAIN-like output

    def run(self, statement: exp.Expression, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        """Evaluate a query; one that a CONVERT switched under (see `generation`) starts again."""
        for attempt in range(MAX_ATTEMPTS):
            self._tables = None
            self._fresh = attempt > 0
            try:
                return self._run(statement, relations)
            except (StaleGeneration, CollectionNotFound):
                # Another process switched a table's embeddings (and maybe dropped the collection
                # this process knew): read the tables again and start over.
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    @property
    def tables(self) -> dict[str, dict[str, Generation]]:
        if self._tables is None:
            self._tables = self.warehouse.table_generations(fresh=self._fresh)
        return self._tables

    def _run(self, statement: exp.Expression, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        if isinstance(statement, PrintMedia):
            return self.print_rows(statement, relations)
        if isinstance(statement, SearchMedia):
            self.last_plan = "exhaustive"
            return self.search_all(self.prepare(statement))
        return self.select(statement, relations)

    # -- SELECT ---------------------------------------------------------------------------

    def select(self, query: exp.Expression, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        query = query.copy()
        relations = dict(relations or {})
        for subquery in query.find_all(exp.Subquery):
            if isinstance(subquery.this, ConvertUsing):
                raise SQLError(
                    "CONVERT inside a SELECT runs only as a statement of its own or from the SQL frontend.",
                    **locate(self.sql, subquery.this),
                )
        top_k = self._top_k(query)
        if top_k is not None:
            return self._select_top_k(query, top_k, relations)
        self.last_plan = "exhaustive"
        for index, subquery in enumerate([s for s in query.find_all(exp.Subquery) if isinstance(s.this, SearchMedia)]):
            name = _SEARCH_RELATION.format(index)
            relations[name] = self.search_all(self.prepare(subquery.this))
            subquery.replace(_relation(name, subquery.args.get("alias")))
        self.check_tables(query, known=set(relations))
        return run_query(query, self.warehouse, relations)

    def check_tables(self, query: exp.Expression, known: set[str] = frozenset()) -> None:
        existing = None
        for table in referenced_tables(query):
            name = object_name(table.this)
            if name in known:
                continue
            existing = existing if existing is not None else set(self.tables)
            if name not in existing and not self._fresh:  # maybe created by another process since
                self._fresh, self._tables = True, None
                existing = set(self.tables)
            if name not in existing:
                raise ObjectNotFoundError(
                    f"Table {name!r} does not exist.",
                    **locate(self.sql, table),
                    hint=_available("tables", sorted(existing)) + " COPY creates tables from CSV files.",
                )

    # -- SEARCH ---------------------------------------------------------------------------

    def prepare(self, node: SearchMedia) -> PreparedSearch:
        """Check a SEARCH against the tables and embed its query images; raises with positions.

        What to read comes from the table itself: its embedding column records the collection
        and model version that filled it (the catalog is consulted only to explain an error).
        """
        model_node = node.this
        model = object_name(model_node)
        if node.args["kind"] != "IMAGE" or node.args["param"].this.lower() != "images":
            raise SQLError(
                f"SEARCH {node.args['kind']} {node.args['param'].this}= is not supported.",
                **locate(self.sql, node.args["param"]),
                hint="Search by image with SEARCH IMAGE images='file.jpg' (or images=['a.jpg', 'b.jpg']).",
            )
        images_node = node.args["images"]
        query_images = option_value(images_node)
        if isinstance(query_images, str):
            query_images = [query_images]
        if not query_images or not all(isinstance(image, str) and image for image in query_images):
            raise SQLError(
                "images= needs one image path or a non-empty list of image paths.",
                **locate(self.sql, images_node),
                hint="e.g. images='thanosql-dataset/mnist_data/test/923.jpg' or images=['a.jpg', 'b.jpg']",
            )

        query = node.args["query"]
        tables = referenced_tables(query)
        if len(tables) != 1:
            raise SQLError(
                f"SEARCH ... AS SELECT must read exactly one table (the embedding table); this query reads {len(tables)}.",
                **locate(self.sql, query),
                hint="Search one table, e.g. AS SELECT * FROM mnist_test; join or filter in an outer SELECT.",
            )
        table = object_name(tables[0].this)
        generation = self._generation(table, model)
        if generation is None and not self._fresh:  # maybe embedded by another process since
            self._fresh, self._tables = True, None
            generation = self._generation(table, model)
        if generation is None:
            self._explain_unsearchable(model_node, tables[0], model, table)
        prefix = generation.column
        embedder = self.model_registry.load(model, generation.model_version)
        vectors = embedder.embed(self._load_query_images(query_images, embedder.geometry, images_node))
        return PreparedSearch(
            query=query,
            source=tables[0],
            table=table,
            image_col=generation.image_col,
            generation=generation,
            prefix=prefix,
            query_vectors=vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12),
        )

    def _generation(self, table: str, model: str) -> Generation | None:
        columns = self.tables.get(table, {})
        return next((columns[f"{model}_{a.column_suffix}"] for a in ALGORITHMS.values() if f"{model}_{a.column_suffix}" in columns), None)

    def _explain_unsearchable(self, model_node: exp.Expression, source: exp.Table, model: str, table: str) -> NoReturn:
        """Why `model` cannot search `table`: the model, the table or its embeddings are missing."""
        if self.catalog.get("model", model) is None:
            raise ObjectNotFoundError(
                f"Model {model!r} does not exist.",
                **locate(self.sql, model_node),
                hint=_available("models", [entry.name for entry in self.catalog.list("model")]) + " BUILD MODEL creates one.",
            )
        self.check_tables(source)
        convert_hint = f"Run CONVERT USING {model} OPTIONS (table_name='{table}') AS SELECT * FROM {table} first."
        if self.catalog.get("embedding", embedding_name(table, model)) is None:
            raise ObjectNotFoundError(
                f"Model {model!r} has not embedded table {table!r}: there is nothing to search.",
                **locate(self.sql, source),
                hint=convert_hint,
            )
        raise ObjectNotFoundError(
            f"Table {table!r} no longer has the embedding column of {model!r} (it was replaced after CONVERT).",
            **locate(self.sql, source),
            hint=convert_hint,
        )

    def search_all(self, search: PreparedSearch) -> pd.DataFrame:
        """Every row of the SEARCH's query, with a similarity column per query image."""
        rows = self._read(_with_key(search.query, search.image_col), search)
        keys = rows.pop(_KEY).astype(str)
        for number, vector in enumerate(search.query_vectors, start=1):
            scores = self.vector_store.score_all(search.collection, vector)
            rows[search.similarity_column(number)] = keys.map(scores).astype("float64")
        return rows

    def _read(self, query: exp.Select, search: PreparedSearch, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run `query`, checking in the same statement that the table is still of the search's generation."""
        checked = query.select(self.warehouse.generation_expression(search.table).as_(_GENERATION), copy=True)
        rows = run_query(checked, self.warehouse, relations)
        comments = rows.pop(_GENERATION)
        self.warehouse.check_generation(comments.iloc[0] if len(rows) else None, search.generation)
        return rows

    def _top_k(self, query: exp.Expression) -> TopK | None:
        """The top-k plan applies to SELECT ... FROM (SEARCH ...) [WHERE] ORDER BY <similarity> DESC LIMIT k."""
        if not isinstance(query, exp.Select):
            return None
        from_ = query.args.get("from_")
        subquery = from_.this if from_ else None
        if not (isinstance(subquery, exp.Subquery) and isinstance(subquery.this, SearchMedia)):
            return None
        if any(query.args.get(arg) for arg in ("joins", "group", "having", "distinct", "qualify", "laterals", "with_")):
            return None
        if any(True for _ in query.find_all(exp.AggFunc, exp.Window)):
            return None
        order, limit = query.args.get("order"), query.args.get("limit")
        if not order or not limit:
            return None
        first = order.expressions[0]
        if not (first.args.get("desc") and isinstance(first.this, exp.Column)):
            return None
        column = first.this.name
        match = re.fullmatch(r"(.+)_similarity(\d+)", column, re.IGNORECASE)
        images = option_value(subquery.this.args["images"])
        count = 1 if isinstance(images, str) else len(images or [])
        if not match or not 1 <= int(match.group(2)) <= count:
            return None
        limit_value = _int_literal(limit.args.get("expression"))
        offset = query.args.get("offset")
        offset_value = _int_literal(offset.args.get("expression")) if offset else 0
        if limit_value is None or offset_value is None:
            return None
        return TopK(subquery, subquery.this, column, limit_value + offset_value)

    def _select_top_k(self, query: exp.Select, top_k: TopK, relations: dict[str, Any]) -> pd.DataFrame:
        search = self.prepare(top_k.search)
        ranked_by = int(re.fullmatch(r".+_similarity(\d+)", top_k.column, re.IGNORECASE).group(1)) - 1
        if top_k.column.lower() != search.similarity_column(ranked_by + 1).lower():
            raise ObjectNotFoundError(
                f"Column {top_k.column!r} is not a similarity column of this SEARCH (it makes {search.prefix}_similarity1...).",
                **locate(self.sql, query.args["order"]),
                hint=f"ORDER BY {search.similarity_column(1)} DESC",
            )
        offset = query.args.get("offset")
        skip = _int_literal(offset.args.get("expression")) if offset else 0
        # The outer query's first `needed` rows, with the similarity they are ranked by: enough
        # to know whether candidates outside Qdrant's answer could have made the top k.
        outer = query.copy()
        outer.args["from_"].this.replace(_relation(_SEARCH_RELATION.format(0), top_k.subquery.args.get("alias")))
        outer.set("offset", None)
        outer.set("limit", exp.Limit(expression=exp.Literal.number(top_k.needed)))
        self.check_tables(outer, known={*relations, _SEARCH_RELATION.format(0)})
        outer = outer.select(exp.column(top_k.column).as_(_RANK), copy=False)
        outer = outer.select(self.warehouse.generation_expression(search.table).as_(_GENERATION), copy=False)
        inner = _with_key(search.query, search.image_col)
        source = next(t for t in inner.find_all(exp.Table) if object_name(t.this) == search.table)
        source.replace(_relation(_CANDIDATES, exp.TableAlias(this=exp.to_identifier(source.alias_or_name))))
        dialect = self.warehouse.dialect
        # One statement per round: the candidates' rows (an index lookup by image key), the
        # SEARCH's own query over them, their similarities joined on the key, the outer query.
        sql = self.warehouse.candidates_statement(
            CandidatesStatement(
                table=search.table,
                image_col=search.image_col,
                key=_KEY,
                candidates=_CANDIDATES,
                relation=_SEARCH_RELATION.format(0),
                similarity_columns=[search.similarity_column(n) for n in range(1, len(search.query_vectors) + 1)],
                inner_sql=inner.sql(dialect=dialect),
                outer_sql=outer.sql(dialect=dialect),
            )
        )
        total = self.vector_store.count(search.collection)
        wanted = max(FIRST_CANDIDATES, 4 * top_k.needed)
        while True:
            hits = self.vector_store.search(search.collection, search.query_vectors[ranked_by], limit=min(wanted, max(total, 1)))
            keys = [hit.key for hit in hits]
            scores = [[hit.score for hit in hits]]
            for number, vector in enumerate(search.query_vectors):
                if number != ranked_by:
                    by_key = self.vector_store.scores(search.collection, vector, keys)
                    scores.insert(number, [by_key.get(key) for key in keys])
            rows = self.warehouse.query(sql, relations, parameters=self.warehouse.candidates_parameters(keys, scores))
            self.warehouse.check_generation(rows.pop(_GENERATION).iloc[0] if len(rows) else None, search.generation)
            exhausted = len(hits) >= total or len(hits) < wanted
            if exhausted or (len(rows) == top_k.needed and hits and rows[_RANK].iloc[-1] > hits[-1].score):
                self.last_plan = f"top-k ({len(hits)} of {total} images)"
                return rows.drop(columns=[_RANK]).iloc[skip:].reset_index(drop=True)
            wanted *= 4

    def _load_query_images(self, images: list[str], geometry, images_node: exp.Expression):
        from thanosql_assets.models.images import load_images

        try:
            paths = [self.workspace.resolve(image) for image in images]
        except PathNotAllowedError as error:
            raise PathNotAllowedError(error.bare_message, **locate(self.sql, images_node), hint=error.hint) from None
        missing = [image for image, path in zip(images, paths) if not path.is_file()]
        if missing:
            raise ObjectNotFoundError(
                f"Query image {missing[0]!r} does not exist" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "") + ".",
                **locate(self.sql, images_node),
                hint=f"Relative paths start at the workspace directory {self.workspace.root}.",
            )
        try:
            return load_images(paths, geometry)
        except DataError as error:
            raise SQLError(f"A query image is unusable: {error.message}", **locate(self.sql, images_node), hint=error.hint) from None

    # -- PRINT ----------------------------------------------------------------------------

    def print_rows(self, node: PrintMedia, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        rows = self._run(node.args["query"], relations)
        column = self._image_column(rows)
        if column is None:
            raise ThanoSQLError(
                f"PRINT IMAGE found no column of image paths among {', '.join(rows.columns) or 'no columns'}.",
                hint="Select the image path column, e.g. SELECT image_path, ... in PRINT IMAGE AS (...).",
            )
        rows.attrs[PRINT_ATTR] = {
            "column": column,
            "paths": [str(self.workspace.resolve(str(value))) for value in rows[column]],
        }
        return rows

    def _image_column(self, rows: pd.DataFrame) -> str | None:
        if "image_path" in rows.columns:
            return "image_path"
        for column in rows.columns:
            values = rows[column].dropna()
            if len(values) and all(isinstance(v, str) and Path(v).suffix.lower() in IMAGE_SUFFIXES for v in values):
                return column
        return None


def _relation(name: str, alias: exp.TableAlias | None) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name), alias=alias)


def _with_key(query: exp.Expression, image_col: str) -> exp.Expression:
    """The query with the image key added as a hidden column, to map rows to Qdrant points."""
    keyed = query.copy() if isinstance(query, exp.Select) else exp.select("*").from_(query.subquery("q"))
    return keyed.select(exp.column(image_col).as_(_KEY), copy=False)


def _int_literal(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return int(node.this)
    return None


def _available(what: str, names: list[str]) -> str:
    return f"Existing {what}: {', '.join(names)}." if names else f"There are no {what} yet."
