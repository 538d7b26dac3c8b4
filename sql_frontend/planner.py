"""From a parsed statement to a plan: which assets to materialize, or which query to run.

Everything a statement needs is checked here, before anything runs: names, options, that the
tables and model it reads exist, that it would not replace an object without overwrite=True,
that its image column exists. A statement that fails here has changed nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from sqlglot import exp

from sql_frontend.dialect import (
    BuildModel,
    ConvertUsing,
    CopyFrom,
    CreateTableUsing,
    GetDataset,
    PrintMedia,
    SearchMedia,
    ThanoSQL,
)
from sql_frontend.errors import ObjectExistsError, ObjectNotFoundError, OptionError, SQLError
from sql_frontend.options import CONVERT_OPTIONS, COPY_OPTIONS, GET_DATASET_OPTIONS, validate_options
from sql_frontend.parser import ParsedStatement
from sql_frontend.positions import locate
from thanosql_assets.datasets.registry import DATASETS
from thanosql_assets.models.algorithms import ALGORITHMS
from thanosql_assets.queries import object_name, referenced_tables
from thanosql_assets.search.engine import QueryEngine
from thanosql_assets.specs import DatasetSpec, EmbeddingSpec, ModelSpec, Spec, TableSpec


@dataclass(frozen=True)
class Materialize:
    """Define `specs` (new or changed objects) and materialize the assets in `selection`."""

    specs: list[Spec]
    selection: list[dg.AssetKey]
    announce: str | None = None
    result_query: str | None = None  # rows to return once done (CONVERT shows its table)


@dataclass(frozen=True)
class Query:
    expression: exp.Expression
    on_demand: bool  # SEARCH/PRINT run as a Dagster op over the latest assets
    announce: str | None = None


Plan = Materialize | Query


@dataclass
class Planner:
    resources: dict[str, object]
    statement: ParsedStatement = field(repr=False, default=None)

    def plan(self, statement: ParsedStatement) -> Plan:
        self.statement = statement
        node = statement.expression
        handlers = {
            GetDataset: self._get_dataset,
            CopyFrom: self._copy,
            BuildModel: self._build_model,
            ConvertUsing: self._convert,
            CreateTableUsing: self._create_table_using,
        }
        for node_type, handler in handlers.items():
            if isinstance(node, node_type):
                return handler(node)
        if isinstance(node, (SearchMedia, PrintMedia, exp.Query)):
            searches = isinstance(node, (SearchMedia, PrintMedia)) or any(True for _ in node.find_all(SearchMedia))
            if not searches:
                self._query_engine().check_tables(node)
            return Query(node, on_demand=searches, announce="Searching..." if searches else None)
        raise SQLError(
            f"{type(node).__name__.upper()} statements are not supported.",
            **self._at(node),
            hint="ThanoSQL runs GET THANOSQL DATASET, COPY, BUILD MODEL, CONVERT, SEARCH, PRINT and SELECT.",
        )

    # -- statements ---------------------------------------------------------------------------

    def _get_dataset(self, node: GetDataset) -> Plan:
        name = object_name(node.this)
        if name not in DATASETS:
            raise ObjectNotFoundError(
                f"There is no ThanoSQL dataset named {name!r}.",
                **self._at(node.this),
                hint=f"Available datasets: {', '.join(sorted(DATASETS))}.",
            )
        options = validate_options(node.args.get("options"), GET_DATASET_OPTIONS, statement="GET THANOSQL DATASET", sql=self._sql)
        target = self._workspace.datasets_dir / name
        if target.exists() and not options["overwrite"]:
            raise ObjectExistsError(
                f"Dataset {name!r} already exists in {target}.",
                **self._at(node.this),
                hint="Add OPTIONS (overwrite=True) to download it again and replace it.",
            )
        spec = DatasetSpec(name)
        return Materialize([spec], [spec.asset_key])

    def _copy(self, node: CopyFrom) -> Plan:
        name = object_name(node.this)
        options = validate_options(node.args.get("options"), COPY_OPTIONS, statement="COPY", sql=self._sql)
        source_node = node.args["source"]
        source = source_node.this
        path = self._workspace.resolve(source)
        if not path.is_file():
            raise ObjectNotFoundError(
                f'File "{source}" does not exist (looked at {path}).',
                **self._at(source_node),
                hint="Relative paths start at the workspace directory; GET THANOSQL DATASET downloads the tutorial files.",
            )
        if self._warehouse.table_exists(name) and not options["overwrite"]:
            raise ObjectExistsError(
                f"Table {name!r} already exists.",
                **self._at(node.this),
                hint="Add OPTIONS (overwrite=True) to replace it, or COPY into another table name.",
            )
        spec = TableSpec(name=name, source=source, dataset=self._dataset_of(path))
        return Materialize([spec], [spec.asset_key])

    def _build_model(self, node: BuildModel) -> Plan:
        name = object_name(node.this)
        algorithm_node = node.args["algorithm"]
        algorithm = ALGORITHMS.get(algorithm_node.this.lower())
        if algorithm is None:
            raise ObjectNotFoundError(
                f"Unknown algorithm {algorithm_node.this!r}.",
                **self._at(algorithm_node),
                hint=f"Available: {', '.join(a.name for a in ALGORITHMS.values())}.",
            )
        options = validate_options(
            node.args.get("options"), algorithm.options, statement=f"BUILD MODEL ... USING {algorithm.name}", sql=self._sql
        )
        if self._catalog.get("model", name) is not None and not options["overwrite"]:
            raise ObjectExistsError(
                f"Model {name!r} already exists.",
                **self._at(node.this),
                hint="Add overwrite=True to its OPTIONS to train it again as a new version, or choose another name.",
            )
        query, tables = self._source_query(node)
        self._check_column(node, query, "image_col", options["image_col"])
        options.pop("overwrite")
        spec = ModelSpec(
            name=name, algorithm=algorithm.name, query=query.sql(dialect=ThanoSQL), tables=tuple(tables), options=options
        )
        return Materialize([spec], [spec.asset_key], announce="Building model...")

    def _convert(self, node: ConvertUsing) -> Plan:
        model = object_name(node.this)
        model_entry = self._catalog.get("model", model)
        if model_entry is None:
            models = [entry.name for entry in self._catalog.list("model")]
            raise ObjectNotFoundError(
                f"Model {model!r} does not exist.",
                **self._at(node.this),
                hint=(f"Existing models: {', '.join(models)}. " if models else "") + "Create it with BUILD MODEL first.",
            )
        options = validate_options(node.args.get("options"), CONVERT_OPTIONS, statement="CONVERT", sql=self._sql)
        query, tables = self._source_query(node)
        table = options["table_name"] or (tables[0] if len(tables) == 1 else None)
        if table is None:
            raise OptionError(
                "CONVERT needs OPTIONS (table_name='...') when its query reads several tables.",
                **self._at(node.args["query"]),
                hint="table_name names the table that receives the embedding column.",
            )
        if table not in tables and self._warehouse.table_exists(table):
            raise ObjectExistsError(
                f"CONVERT would replace table {table!r}, which its query does not read.",
                **self._option_at(node, "table_name"),
                hint=f"Query that table to add the embedding column to it (AS SELECT * FROM {table}), or choose a new table_name.",
            )
        self._check_column(node, query, "image_col", options["image_col"])
        spec = EmbeddingSpec(
            table=table,
            model=model,
            algorithm=model_entry.spec["algorithm"],
            image_col=options["image_col"],
            query=query.sql(dialect=ThanoSQL),
            tables=tuple(tables),
        )
        return Materialize(
            [spec],
            [spec.asset_key, spec.collection_key],
            result_query=f'SELECT * FROM "{table}" WHERE "{spec.column}" IS NOT NULL',
        )

    def _create_table_using(self, node: CreateTableUsing) -> Plan:
        raise SQLError(
            "CREATE TABLE ... USING <model> FROM '<folder>' is not supported yet.",
            **self._at(node),
            hint="COPY a CSV of image paths into a table, then CONVERT USING the model.",
        )

    # -- helpers ------------------------------------------------------------------------------

    def _source_query(self, node: exp.Expression) -> tuple[exp.Expression, list[str]]:
        query = node.args["query"]
        if any(True for _ in query.find_all(SearchMedia, ConvertUsing)):
            raise SQLError(
                "The AS query of this statement cannot contain SEARCH or CONVERT.",
                **self._at(query),
                hint="Read from tables here; search in a separate statement.",
            )
        self._query_engine().check_tables(query)
        return query, [object_name(table.this) for table in referenced_tables(query)]

    def _check_column(self, node: exp.Expression, query: exp.Expression, option: str, column: str) -> None:
        columns = list(self._warehouse.query(f"SELECT * FROM ({query.sql(dialect=self._warehouse.dialect)}) LIMIT 0").columns)
        if column not in columns:
            raise ObjectNotFoundError(
                f"{option} {column!r} is not a column of the query's rows (columns: {', '.join(columns)}).",
                **(self._option_at(node, option) or self._at(query)),
                hint=f"Set OPTIONS ({option}='<column with image paths>').",
            )

    def _option_at(self, node: exp.Expression, option: str) -> dict:
        for entry in node.args.get("options").entries() if node.args.get("options") else []:
            if entry.this.this.lower() == option:
                return locate(self._sql, entry.args["value"])
        return {}

    def _dataset_of(self, path: Path) -> str | None:
        try:
            relative = path.resolve().relative_to(self._workspace.datasets_dir.resolve())
        except ValueError:
            return None
        name = relative.parts[0] if len(relative.parts) > 1 else None
        return name if name and self._catalog.get("dataset", name) else None

    def _query_engine(self) -> QueryEngine:
        return QueryEngine(sql=self._sql, **{key: self.resources[key] for key in QUERY_RESOURCES})

    def _at(self, node: exp.Expression | None) -> dict:
        return locate(self._sql, node)

    @property
    def _sql(self) -> str:
        return self.statement.sql

    @property
    def _workspace(self):
        return self.resources["workspace"]

    @property
    def _warehouse(self):
        return self.resources["warehouse"]

    @property
    def _catalog(self):
        return self.resources["catalog"]


QUERY_RESOURCES = ("workspace", "warehouse", "catalog", "model_registry", "vector_store")
