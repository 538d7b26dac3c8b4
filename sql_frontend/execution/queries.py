"""Evaluating planned queries: SELECT (possibly over SEARCH, PREDICT and LIST subqueries), SEARCH, PRINT and LIST.

SEARCH reads the latest materialized assets only: the table records which collection and
model version its embedding column comes from (its generation). SEARCH embeds the query images
with that model version and adds one column `<model>_<algorithm>_similarity<i>` per query image:
the cosine similarity (in [-1, 1]) between that image and the row's image.

Plans:
- Alone, or under a query that does not rank by similarity, SEARCH scores every row of its
  `AS SELECT` (an exhaustive scan of the collection).
- Under `SELECT ... FROM (SEARCH ...) [WHERE ...] ORDER BY <similarity> DESC LIMIT k [OFFSET o]`
  (the tutorial's PRINT query) it is a top-k operator: Qdrant finds the m images most similar to
  the query image, the SEARCH's own query and the outer query run over just their rows and the
  rows without an embedding (NULL similarity, which DESC ranks first), and m grows (x4) until
  the k-th result is strictly more similar than the least similar candidate, so no row left out
  could have made the top k. The result is the one the exhaustive plan gives. The rows come
  from one statement per round (`candidates`), or from this process's copy of the table where
  the store promises it is current and the query's shape allows (`row_snapshots`).

The planner has checked names, tables, models and query image paths; what can still go wrong
here is the data (an unreadable query image) or another process switching a table's embeddings
while a query reads it, in which case the query starts again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlglot import exp

from resources import (
    CatalogResource,
    CollectionNotFound,
    DatasetSourceResource,
    Generation,
    ModelRegistryResource,
    ModelSourceResource,
    StaleGeneration,
    VectorStoreResource,
    WarehouseResource,
    WorkspaceResource,
)
from sql_frontend.execution import listing, row_snapshots
from sql_frontend.execution.candidates import (
    CANDIDATES,
    EMBEDDED,
    KEY,
    SEARCH_RELATION,
    candidates_parameters,
    candidates_statement,
    covers_top_k,
)
from sql_frontend.execution.results import PRINT_ATTR
from sql_frontend.language.dialect import ListObjects, PredictUsing, PrintMedia, SearchMedia
from sql_frontend.language.names import object_name, with_postgres_output_names
from sql_frontend.language.positions import locate
from sql_frontend.planning.options import PREDICT_OPTIONS, validate_options
from sql_frontend.planning.planner import embedding_column, search_target, unsearchable
from sql_frontend.planning.query_errors import located
from sql_frontend.planning.top_k import TopK, find_top_k
from thanosql.errors import DataError, QueryError, SQLError
from thanosql_assets.defs.predictions import predicted_rows, serving_classifier
from thanosql_assets.models.vectors import l2_normalize

_VECTORS = "__thanosql_vectors"
_GENERATION = "__thanosql_generation"
_RANK = "__thanosql_rank"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MAX_ATTEMPTS = 5  # a query restarts when a CONVERT switches a table it reads; it gives up after this many
FIRST_CANDIDATES = 32  # images asked of Qdrant on a top-k plan's first round, at least 4x k
PREDICT_RELATION = "__thanosql_predict_{}"
LIST_RELATION = "__thanosql_list_{}"


@dataclass
class PreparedSearch:
    """A SEARCH with its table's generation read and its query images embedded."""

    query: exp.Expression  # the SEARCH's AS SELECT
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

    @property
    def similarity_columns(self) -> list[str]:
        return [self.similarity_column(number) for number in range(1, len(self.query_vectors) + 1)]


class QueryEngine:
    def __init__(
        self,
        *,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        vector_store: VectorStoreResource,
        model_source: ModelSourceResource,
        dataset_source: DatasetSourceResource,
        sql: str = "",
        start: int = 0,
    ):
        self.workspace = workspace
        self.warehouse = warehouse
        self.catalog = catalog
        self.model_registry = model_registry
        self.vector_store = vector_store
        self.model_source = model_source
        self.dataset_source = dataset_source
        self.sql = sql  # the statement's script, for error positions
        self.start = start  # where the statement begins in it
        self._tables: dict[str, dict[str, Generation]] | None = None  # this attempt's view of the tables' generations
        self._fresh = False  # whether this attempt reads them from the store rather than this process's memory
        # "exhaustive", "top-k (m of n images)" or "top-k (m of n images), rows held in memory" (`row_snapshots`),
        # for tests and EXPLAIN-like output
        self.last_plan = ""

    def run(self, statement: exp.Expression, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        """Evaluate a planned query; one that a CONVERT switched under (see `Generation`) starts again."""
        for attempt in range(MAX_ATTEMPTS):
            self._tables, self._fresh = None, attempt > 0
            try:
                return self._run(statement, relations)
            except QueryError as error:
                raise located(error, self.sql, statement, self.start) from None
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
        if isinstance(statement, PredictUsing):
            self.last_plan = "exhaustive"
            return self.predict(statement)
        if isinstance(statement, ListObjects):
            return self.list_objects(statement)
        return self.select(statement, relations)

    # -- SELECT ---------------------------------------------------------------------------

    def select(self, query: exp.Expression, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        written = query
        query = with_postgres_output_names(query)
        relations = dict(relations or {})
        if not any(isinstance(node.this, (PredictUsing, ListObjects)) for node in query.find_all(exp.Subquery, exp.CTE)):
            top_k = find_top_k(query)
            if top_k is not None:  # the tutorial's query: nothing to rewrite first
                return self._select_top_k(query, top_k, relations)
        if query is written:  # subqueries are replaced by their rows below: never in the plan's own tree
            query = query.copy()
        for index, subquery in enumerate([s for s in query.find_all(exp.Subquery) if isinstance(s.this, PredictUsing)]):
            name = PREDICT_RELATION.format(index)
            relations[name] = self.predict(subquery.this)
            subquery.replace(_relation(name, subquery.args.get("alias")))
        for index, subquery in enumerate([s for s in query.find_all(exp.Subquery) if isinstance(s.this, ListObjects)]):
            name = LIST_RELATION.format(index)
            relations[name] = self.list_objects(subquery.this)
            subquery.replace(_relation(name, subquery.args.get("alias")))
        for index, cte in enumerate([c for c in query.find_all(exp.CTE) if isinstance(c.this, (ListObjects, PredictUsing))]):
            name = f"__thanosql_with_{index}"  # WITH m AS (LIST MODEL) ...: the rows, under the CTE's name
            relations[name] = self.list_objects(cte.this) if isinstance(cte.this, ListObjects) else self.predict(cte.this)
            cte.set("this", exp.select("*").from_(name))
        top_k = find_top_k(query)
        if top_k is not None:
            return self._select_top_k(query, top_k, relations)
        self.last_plan = "exhaustive"
        for index, subquery in enumerate([s for s in query.find_all(exp.Subquery, exp.CTE) if isinstance(s.this, SearchMedia)]):
            name = SEARCH_RELATION.format(index)
            relations[name] = self.search_all(self.prepare(subquery.this))
            if isinstance(subquery, exp.CTE):  # WITH hits AS (SEARCH ...): the rows, under the CTE's name
                subquery.set("this", exp.select("*").from_(name))
            else:
                subquery.replace(_relation(name, subquery.args.get("alias")))
        return self.warehouse.query(query.sql(dialect=self.warehouse.dialect), relations)

    def list_objects(self, node: ListObjects) -> pd.DataFrame:
        """LIST MODEL, LIST TABLE, LIST THANOSQL MODEL or LIST THANOSQL DATASET (`listing`)."""
        kind = node.args["kind"]
        if kind == "MODEL":
            return listing.list_models(self.catalog)
        if kind == "TABLE":
            return listing.list_tables(self.warehouse)
        if kind == "THANOSQL MODEL":
            return listing.list_published_models(self.model_source)
        return listing.list_datasets(self.dataset_source)

    # -- SEARCH ---------------------------------------------------------------------------

    def prepare(self, node: SearchMedia) -> PreparedSearch:
        """Read the generation of the table a SEARCH reads and embed its query images."""
        target = search_target(node)
        generation = embedding_column(self.tables, target.table, target.model)
        if generation is None and not self._fresh:  # replaced since the plan was made: maybe embedded again by now
            self._tables, self._fresh = None, True
            generation = embedding_column(self.tables, target.table, target.model)
        if generation is None:
            unsearchable(node, target, self.sql, self.catalog, self.warehouse)
        def listed() -> bool:  # read from the catalog only when the version is not loaded yet
            return self.catalog.lists_model_version(target.model, generation.model_version, generation.model_run)

        embedder = self.model_registry.load(target.model, generation.model_version, generation.model_run, listed=listed)
        images = self._load_query_images(target.images, embedder.geometry, node.args["images"])
        return PreparedSearch(
            query=node.args["query"],
            table=target.table,
            image_col=generation.image_col,
            generation=generation,
            prefix=generation.column,
            query_vectors=l2_normalize(embedder.embed(images)),
        )

    def search_all(self, search: PreparedSearch) -> pd.DataFrame:
        """Every row of the SEARCH's query, with a similarity column per query image.

        The rows' own embedding column holds their collection's vectors (the generation check
        proves it): the similarity is its dot product with each query vector, computed by the
        store in the statement that reads the rows, or from the vectors read with them. Rows
        without an embedding get NULL.
        """
        query = _as_select(search.query)
        vectors = exp.column(search.generation.column)
        dim = search.query_vectors.shape[1]
        parameters = {f"__thanosql_query_{number}": vector.tolist() for number, vector in enumerate(search.query_vectors, start=1)}
        products = [self.warehouse.inner_product(vectors.copy(), name, dim) for name in parameters]
        if all(product is not None for product in products):
            for number, product in enumerate(products, start=1):
                query = query.select(product.as_(search.similarity_column(number)), copy=False)
            return self._read(query, search, parameters)
        rows = self._read(query.select(vectors.as_(_VECTORS), copy=False), search)
        stored = rows.pop(_VECTORS)
        present = stored.notna().to_numpy()
        matrix = np.stack(stored[present].to_numpy()).astype(np.float32) if present.any() else np.zeros((0, dim), np.float32)
        for number, vector in enumerate(search.query_vectors, start=1):
            scores = np.full(len(rows), np.nan)
            scores[present] = matrix @ vector
            rows[search.similarity_column(number)] = scores
        return rows

    def _read(self, query: exp.Select, search: PreparedSearch, parameters: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run `query`, checking in the same statement that the table is still of the search's generation."""
        checked = query.select(self.warehouse.generation_expression(search.table).as_(_GENERATION), copy=True)
        rows = self.warehouse.query(checked.sql(dialect=self.warehouse.dialect), parameters=parameters)
        comments = rows.pop(_GENERATION)
        self.warehouse.check_generation(comments.iloc[0] if len(rows) else None, search.generation)
        return rows

    def _select_top_k(self, query: exp.Select, top_k: TopK, relations: dict[str, Any]) -> pd.DataFrame:
        search = self.prepare(top_k.search)
        with self.warehouse.held() as epoch:
            embedding_columns = list(self.tables.get(search.table, {}))
            shape = None if relations or epoch is None else self._direct_shape(query, top_k, search, embedding_columns)
            if shape is not None:
                rows = self.vector_store.count(search.collection)
                snapshot = row_snapshots.snapshot_for(self.warehouse, epoch, search.generation, embedding_columns, rows)
                if snapshot is not None:
                    return self._top_k_in_memory(top_k, search, shape, snapshot)
            started = time.perf_counter()
            result = self._top_k_by_statement(query, top_k, search, relations)
            if shape is not None:
                row_snapshots.spent_reading(self.warehouse, epoch, search.generation, time.perf_counter() - started)
            return result

    def _direct_shape(
        self, query: exp.Select, top_k: TopK, search: PreparedSearch, embedding_columns: list[str]
    ) -> row_snapshots.DirectShape | None:
        alias = top_k.subquery.args.get("alias")
        return row_snapshots.direct_shape(
            query,
            search.query,
            search.table,
            self.warehouse.columns(search.table),
            embedding_columns,
            search.similarity_columns,
            alias.name if alias else None,
            top_k.column,
        )

    def _rounds(self, search: PreparedSearch, top_k: TopK) -> Iterator[tuple[list[str], list[list[float | None]], bool]]:
        """The top-k plan's rounds of candidates: the images most similar to the ranking query
        image (Qdrant), 4x more each round, with every query image's similarity to each; and
        whether they are all the collection has."""
        total = self.vector_store.count(search.collection)
        wanted = max(FIRST_CANDIDATES, 4 * top_k.needed)
        while True:
            hits = self.vector_store.search(search.collection, search.query_vectors[top_k.image], limit=min(wanted, max(total, 1)))
            keys = [hit.key for hit in hits]
            scores = [[hit.score for hit in hits]]
            for number, vector in enumerate(search.query_vectors):
                if number != top_k.image:
                    by_key = self.vector_store.scores(search.collection, vector, keys)
                    scores.insert(number, [by_key.get(key) for key in keys])
            self.last_plan = f"top-k ({len(hits)} of {total} images)"
            yield keys, scores, len(hits) >= total or len(hits) < wanted
            wanted *= 4

    def _top_k_in_memory(
        self, top_k: TopK, search: PreparedSearch, shape: row_snapshots.DirectShape, snapshot: row_snapshots.RowSnapshot
    ) -> pd.DataFrame:
        """The top-k plan over this process's snapshot of the table (`row_snapshots`)."""
        for keys, scores, exhausted in self._rounds(search, top_k):
            ranked = row_snapshots.rank(snapshot, keys, scores[top_k.image], top_k.needed, top_k.nulls_first, exhausted)
            if ranked.complete:
                break
        self.last_plan += ", rows held in memory"
        positions = ranked.positions[top_k.skip :]
        rows = snapshot.rows.take(positions).reset_index(drop=True)
        embedded = snapshot.embedded[positions]
        by_key = [dict(zip(keys, image_scores)) for image_scores in scores]
        image_keys = rows[search.image_col].tolist() if positions else []
        columns = {}
        for name, source in shape.outputs:
            if isinstance(source, str):
                columns[name] = _as_read(rows[source])
            elif source == top_k.image:
                columns[name] = pd.Series(ranked.scores[top_k.skip :], dtype="float64")
            else:
                values = [by_key[source].get(key) if has else None for key, has in zip(image_keys, embedded)]
                columns[name] = pd.Series(values, dtype="float64")
        return pd.DataFrame(columns, index=pd.RangeIndex(len(positions)))

    def _top_k_by_statement(self, query: exp.Select, top_k: TopK, search: PreparedSearch, relations: dict[str, Any]) -> pd.DataFrame:
        """The top-k plan as one statement per round over the candidates' rows (`candidates`)."""
        # The outer query's first `needed` rows, with the similarity they are ranked by: enough
        # to know whether candidates outside Qdrant's answer could have made the top k.
        outer = query.copy()
        outer.args["from_"].this.replace(_relation(SEARCH_RELATION.format(0), top_k.subquery.args.get("alias")))
        outer.set("offset", None)
        outer.set("limit", exp.Limit(expression=exp.Literal.number(top_k.needed)))
        outer = outer.select(exp.column(top_k.column).as_(_RANK), copy=False)
        outer = outer.select(self.warehouse.generation_expression(search.table).as_(_GENERATION), copy=False)
        inner = _as_select(search.query).select(
            exp.column(search.image_col).as_(KEY), exp.column(search.generation.column).is_(exp.null()).not_().as_(EMBEDDED), copy=False
        )
        for source in [t for t in inner.find_all(exp.Table) if object_name(t.this) == search.table]:  # each branch of a UNION
            alias = source.args.get("alias") or exp.TableAlias(this=exp.to_identifier(source.name))  # t AS a(x, y) keeps its names
            source.replace(_relation(CANDIDATES, alias.copy()))
        dialect = self.warehouse.dialect
        sql = candidates_statement(
            self.warehouse,
            table=search.table,
            image_col=search.image_col,
            embedding_col=search.generation.column,
            inner_sql=inner.sql(dialect=dialect),
            outer_sql=outer.sql(dialect=dialect),
            similarity_columns=search.similarity_columns,
        )
        for keys, scores, exhausted in self._rounds(search, top_k):
            rows = self.warehouse.query(sql, relations, parameters=candidates_parameters(keys, scores))
            comments = rows.pop(_GENERATION)
            self.warehouse.check_generation(comments.iloc[0] if len(rows) else None, search.generation)
            last = rows[_RANK].iloc[-1] if len(rows) else None
            weakest = scores[top_k.image][-1] if keys else None
            if covers_top_k(len(rows), top_k.needed, last, weakest, top_k.nulls_first, exhausted):
                return rows.drop(columns=[_RANK]).iloc[top_k.skip :].reset_index(drop=True)
        raise AssertionError("unreachable: the rounds end with every image")

    def _load_query_images(self, images: list[str], geometry, images_node: exp.Expression) -> np.ndarray:
        from thanosql_assets.models.images import load_images

        try:
            return load_images([self.workspace.resolve(image) for image in images], geometry)
        except DataError as error:
            raise SQLError(f"A query image is unusable: {error.message}", **locate(self.sql, images_node), hint=error.hint) from None

    # -- PREDICT --------------------------------------------------------------------------

    def predict(self, node: PredictUsing) -> pd.DataFrame:
        """The rows of a PREDICT's query with the serving version's predictions added."""
        options = validate_options(node.args.get("options"), PREDICT_OPTIONS, statement="PREDICT", sql=self.sql)
        rows = self.select(node.args["query"].copy())
        classifier, _version = serving_classifier(self.catalog, self.model_registry, object_name(node.this), options["labels"])
        return predicted_rows(rows, classifier, self.workspace, options["image_col"], options["batch_size"], options["top_k"])[0]

    # -- PRINT ----------------------------------------------------------------------------

    def print_rows(self, node: PrintMedia, relations: dict[str, Any] | None = None) -> pd.DataFrame:
        rows = self._run(node.args["query"], relations)
        column = self._image_column(rows)
        if column is None:
            raise SQLError(
                f"PRINT IMAGE found no column of image paths among {', '.join(rows.columns) or 'no columns'}.",
                **locate(self.sql, node.args["query"]),
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


def _as_read(column: pd.Series) -> pd.Series:
    """A column of a snapshot's rows typed as reading just these rows would type it: DuckDB gives a
    nullable integer or boolean column only where it holds a NULL (the snapshot read them all)."""
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype) and hasattr(column.dtype, "numpy_dtype") and not column.hasnans:
        if column.dtype.kind in "iub":
            return column.astype(column.dtype.numpy_dtype)
    return column


def _as_select(query: exp.Expression) -> exp.Select:
    """A copy of `query` to add columns to (a set operation becomes a subquery of a SELECT *)."""
    return query.copy() if isinstance(query, exp.Select) else exp.select("*").from_(query.subquery("q"))
