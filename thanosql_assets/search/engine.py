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
from typing import Any

import numpy as np
import pandas as pd
from sqlglot import exp

from resources import CatalogResource, Generation, StaleGeneration, ModelRegistryResource, VectorStoreResource, WarehouseResource, WorkspaceResource
from sql_frontend.dialect import ConvertUsing, PrintMedia, SearchMedia, option_value
from sql_frontend.errors import DataError, ObjectNotFoundError, SQLError, ThanoSQLError
from sql_frontend.positions import locate
from thanosql_assets.queries import object_name, referenced_tables, run_query
from thanosql_assets.specs import embedding_name

_KEY = "__thanosql_image_key"
_CANDIDATES = "__thanosql_candidates"
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
        self.last_plan = ""  # "exhaustive" or "top-k (... candidates)", for tests and EXPLAIN-like output

    def run(self, statement: exp.Expression, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        """Evaluate a query; one that a CONVERT switched under (see `generation`) starts again."""
        for _ in range(MAX_ATTEMPTS - 1):
            try:
                return self._run(statement, relations)
            except StaleGeneration:
                continue
        return self._run(statement, relations)

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
            existing = existing if existing is not None else set(self.warehouse.tables())
            if name not in existing:
                raise ObjectNotFoundError(
                    f"Table {name!r} does not exist.",
                    **locate(self.sql, table),
                    hint=_available("tables", sorted(existing)) + " COPY creates tables from CSV files.",
                )

    # -- SEARCH ---------------------------------------------------------------------------

    def prepare(self, node: SearchMedia) -> PreparedSearch:
        """Check a SEARCH against the catalog and embed its query images; raises with positions."""
        model_node = node.this
        model = object_name(model_node)
        model_entry = self.catalog.get("model", model)
        if model_entry is None:
            raise ObjectNotFoundError(
                f"Model {model!r} does not exist.",
                **locate(self.sql, model_node),
                hint=_available("models", [entry.name for entry in self.catalog.list("model")]) + " BUILD MODEL creates one.",
            )
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
        self.check_tables(query)
        table = object_name(tables[0].this)
        entry = self.catalog.get("embedding", embedding_name(table, model))
        prefix = f"{model}_{model_entry.spec['algorithm'].lower()}"
        convert_hint = f"Run CONVERT USING {model} OPTIONS (table_name='{table}') AS SELECT * FROM {table} first."
        if entry is None:
            raise ObjectNotFoundError(
                f"Model {model!r} has not embedded table {table!r}: there is nothing to search.",
                **locate(self.sql, tables[0]),
                hint=convert_hint,
            )
        if prefix not in self.warehouse.columns(table):
            raise ObjectNotFoundError(
                f"Table {table!r} no longer has the embedding column {prefix!r} (it was replaced after CONVERT).",
                **locate(self.sql, tables[0]),
                hint=convert_hint,
            )
        # The table records which collection and model version its embedding column comes from;
        # every later read checks that it still does (see `generation`).
        generation = self.warehouse.generations(table).get(prefix)
        if generation is None:
            raise ObjectNotFoundError(
                f"Table {table!r} has a column {prefix!r} but no record of the CONVERT that filled it.",
                **locate(self.sql, tables[0]),
                hint=convert_hint,
            )
        embedder = self.model_registry.load(model, generation.model_version)
        vectors = embedder.embed(self._load_query_images(query_images, embedder.geometry, images_node))
        return PreparedSearch(
            query=query,
            source=tables[0],
            table=table,
            image_col=generation.image_col,
            generation=generation,
            prefix=prefix,
            query_vectors=vectors,
        )

    def search_all(self, search: PreparedSearch) -> pd.DataFrame:
        """Every row of the SEARCH's query, with a similarity column per query image."""
        rows = run_query(_with_key(search.query, search.image_col), self.warehouse, expect=search.generation)
        keys = rows.pop(_KEY).astype(str)
        for number, vector in enumerate(search.query_vectors, start=1):
            scores = self.vector_store.score_all(search.collection, vector)
            rows[search.similarity_column(number)] = keys.map(scores).astype("float64")
        return rows

    def search_candidates(self, search: PreparedSearch, ranked_by: int, hits) -> pd.DataFrame:
        """The SEARCH's rows for the images in `hits` (Qdrant's answer for query image `ranked_by`)."""
        keys = [hit.key for hit in hits]
        candidates = self.warehouse.rows_with_keys(search.table, search.image_col, keys, expect=search.generation)
        query = search.query.copy()
        source = next(t for t in query.find_all(exp.Table) if object_name(t.this) == search.table)
        source.replace(_relation(_CANDIDATES, exp.TableAlias(this=exp.to_identifier(source.alias_or_name))))
        rows = run_query(_with_key(query, search.image_col), self.warehouse, {_CANDIDATES: candidates})
        row_keys = rows.pop(_KEY).astype(str)
        for number, vector in enumerate(search.query_vectors, start=1):
            if number - 1 == ranked_by:
                scores = {hit.key: hit.score for hit in hits}
            else:
                scores = self.vector_store.scores(search.collection, vector, sorted(set(row_keys)))
            rows[search.similarity_column(number)] = row_keys.map(scores).astype("float64")
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
        name = _SEARCH_RELATION.format(0)
        outer = query.copy()
        outer.args["from_"].this.replace(_relation(name, top_k.subquery.args.get("alias")))
        self.check_tables(outer, known={*relations, name})
        # Rank check: the outer query's top `needed` similarities, whatever its projection.
        check = outer.copy()
        check.set("expressions", [exp.column(top_k.column)])
        check.set("offset", None)
        check.set("limit", exp.Limit(expression=exp.Literal.number(top_k.needed)))
        total = self.vector_store.count(search.collection)
        wanted = max(FIRST_CANDIDATES, 4 * top_k.needed)
        while True:
            hits = self.vector_store.search(search.collection, search.query_vectors[ranked_by], limit=min(wanted, max(total, 1)))
            relations[name] = self.search_candidates(search, ranked_by, hits)
            exhausted = len(hits) >= total or len(hits) < wanted
            ranked = run_query(check, self.warehouse, relations)[top_k.column]
            if exhausted or (len(ranked) == top_k.needed and hits and ranked.iloc[-1] > hits[-1].score):
                self.last_plan = f"top-k ({len(hits)} of {total} images)"
                return run_query(outer, self.warehouse, relations)
            wanted *= 4

    def _load_query_images(self, images: list[str], geometry, images_node: exp.Expression):
        from thanosql_assets.models.images import load_images

        paths = [self.workspace.resolve(image) for image in images]
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
