"""Evaluating queries: SELECT (possibly over SEARCH subqueries), SEARCH and PRINT.

SEARCH reads the latest materialized assets only: the model version and Qdrant collection the
catalog names for (table, model). It embeds the query images with the very model version
that built the collection, then scores every row of its AS SELECT by cosine similarity,
adding one column `<model>_<algorithm>_similarity<i>` per query image.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlglot import exp

from resources import CatalogResource, ModelRegistryResource, VectorStoreResource, WarehouseResource, WorkspaceResource
from sql_frontend.dialect import ConvertUsing, PrintMedia, SearchMedia, option_value
from sql_frontend.errors import DataError, ObjectNotFoundError, SQLError, ThanoSQLError
from sql_frontend.positions import locate
from thanosql_assets.queries import object_name, referenced_tables, run_query
from thanosql_assets.specs import embedding_name

_KEY = "__thanosql_image_key"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
PRINT_ATTR = "thanosql.print_image"


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

    def run(self, statement: exp.Expression) -> pd.DataFrame:
        if isinstance(statement, PrintMedia):
            return self.print_rows(statement)
        if isinstance(statement, SearchMedia):
            return self.search(statement)
        return self.select(statement)

    # -- SELECT ---------------------------------------------------------------------------

    def select(self, query: exp.Expression) -> pd.DataFrame:
        query = query.copy()
        relations: dict[str, pd.DataFrame] = {}
        for index, subquery in enumerate(list(query.find_all(exp.Subquery))):
            inner = subquery.this
            if isinstance(inner, SearchMedia):
                name = f"__thanosql_search_{index}"
                relations[name] = self.search(inner)
                subquery.replace(exp.Table(this=exp.to_identifier(name), alias=subquery.args.get("alias")))
            elif isinstance(inner, ConvertUsing):
                raise SQLError(
                    "CONVERT inside a SELECT is not supported yet.",
                    **locate(self.sql, inner),
                    hint="Run the CONVERT statement on its own, then SELECT from its table.",
                )
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

    def search(self, node: SearchMedia) -> pd.DataFrame:
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
                hint="e.g. images='thanosql-dataset/mnist_data/test/923.jpg'",
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
        algorithm = model_entry.spec["algorithm"].lower()
        column = f"{model}_{algorithm}"
        convert_hint = f"Run CONVERT USING {model} OPTIONS (table_name='{table}') AS SELECT * FROM {table} first."
        if entry is None:
            raise ObjectNotFoundError(
                f"Model {model!r} has not embedded table {table!r}: there is nothing to search.",
                **locate(self.sql, tables[0]),
                hint=convert_hint,
            )
        if column not in self.warehouse.columns(table):
            raise ObjectNotFoundError(
                f"Table {table!r} no longer has the embedding column {column!r} (it was replaced after CONVERT).",
                **locate(self.sql, tables[0]),
                hint=convert_hint,
            )

        embedder = self.model_registry.load(model, entry.state["model_version"])
        query_vectors = embedder.embed(self._load_query_images(query_images, embedder.geometry, images_node))

        image_col = entry.spec["image_col"]
        keyed = query.copy()
        if not isinstance(keyed, exp.Select):
            keyed = exp.select("*").from_(keyed.subquery("q"))
        rows = run_query(keyed.select(exp.column(image_col).as_(_KEY)), self.warehouse)
        keys = rows.pop(_KEY).astype(str)
        for number, vector in enumerate(query_vectors, start=1):
            scores = self.vector_store.score_all(entry.state["collection"], vector)
            rows[f"{column}_similarity{number}"] = keys.map(scores).astype("float64")
        return rows

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

    def print_rows(self, node: PrintMedia) -> pd.DataFrame:
        rows = self.run(node.args["query"])
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


def _available(what: str, names: list[str]) -> str:
    return f"Existing {what}: {', '.join(names)}." if names else f"There are no {what} yet."
