"""From a parsed statement to a plan: which assets to materialize, or which query to run.

Everything a statement needs is checked here, before anything runs: names, options, that the
tables and model it reads exist, that it would not replace an object without overwrite=True,
that its image column exists. A statement that fails here has changed nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._utils.schedules import is_valid_cron_string
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
from sql_frontend.errors import ObjectExistsError, ObjectNotFoundError, OptionError, PathNotAllowedError, SQLError
from sql_frontend.options import (
    CONVERT_OPTIONS,
    COPY_OPTIONS,
    CREATE_TABLE_USING_OPTIONS,
    GET_DATASET_OPTIONS,
    validate_options,
)
from sql_frontend.parser import ParsedStatement
from sql_frontend.positions import locate
from thanosql_assets.datasets.registry import DATASETS
from thanosql_assets.embeddings.assets import rebuild_run_config
from thanosql_assets.models.algorithms import ALGORITHMS
from thanosql_assets.queries import object_name, referenced_tables
from thanosql_assets.search.engine import QueryEngine
from thanosql_assets.specs import (
    DatasetSpec,
    EmbeddingSpec,
    ModelSpec,
    Spec,
    TableSpec,
    embedding_name,
    spec_from_dict,
    table_key,
)


@dataclass(frozen=True)
class Materialize:
    """Define `specs` (new or changed objects) and materialize the assets in `selection`."""

    specs: list[Spec]
    selection: list[dg.AssetKey]
    announce: str | None = None
    result_query: str | None = None  # rows to return once done (CONVERT shows its table)
    run_config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    """Evaluate a query; CONVERT subqueries in it are materialized first and read as their result rows."""

    expression: exp.Expression
    announce: str | None = None
    converts: list[tuple[exp.Subquery, Materialize]] = field(default_factory=list)


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
            converts = [
                (subquery, self._convert(subquery.this))
                for subquery in node.find_all(exp.Subquery)
                if isinstance(subquery.this, ConvertUsing)
            ]
            return Query(node, announce="Searching..." if searches else None, converts=converts)
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
        if options["overwrite"] and options["append"]:
            raise OptionError(
                "COPY takes overwrite=True or append=True, not both.",
                **self._option_at(node, "append"),
                hint="overwrite replaces the table with the file; append adds the file's rows to it.",
            )
        source_node = node.args["source"]
        source = source_node.this
        path = self._resolve(source_node)
        if not path.is_file():
            raise ObjectNotFoundError(
                f'File "{source}" does not exist (looked at {path}).',
                **self._at(source_node),
                hint="Relative paths start at the workspace directory; GET THANOSQL DATASET downloads the tutorial files.",
            )
        sources: tuple[str, ...] = (source,)
        if self._warehouse.table_exists(name):
            current = self._catalog.get("table", name)
            if options["append"]:
                if current is None:
                    raise ObjectExistsError(
                        f"Table {name!r} was not made by COPY, so COPY cannot add to it.",
                        **self._at(node.this),
                        hint="COPY into a new table, or into one COPY created.",
                    )
                sources = (*current.spec["sources"], source)
            elif not options["overwrite"]:
                raise ObjectExistsError(
                    f"Table {name!r} already exists.",
                    **self._at(node.this),
                    hint="Add OPTIONS (overwrite=True) to replace it, OPTIONS (append=True) to add rows, or COPY into another table name.",
                )
        datasets = tuple(dict.fromkeys(d for d in (self._dataset_of(self._workspace.root / s) for s in sources) if d))
        spec = TableSpec(name=name, sources=sources, datasets=datasets)
        # Embeddings read from this table are brought up to date in the same run (new images only).
        downstream = [
            key
            for entry in self._catalog.list("embedding")
            if not entry.spec.get("folder") and name in entry.spec.get("tables", ())
            for key in (spec_from_dict("embedding", entry.spec).asset_key, spec_from_dict("embedding", entry.spec).collection_key)
        ]
        return Materialize([spec], [spec.asset_key, *downstream])

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
        if options["schedule"] is not None and not is_valid_cron_string(options["schedule"]):
            raise OptionError(
                f"schedule {options['schedule']!r} is not a cron string.",
                **self._option_at(node, "schedule"),
                hint="Five fields: minute hour day-of-month month day-of-week, e.g. schedule='0 3 * * *' (03:00 every day).",
            )
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
            run_config=rebuild_run_config(spec),
        )

    def _create_table_using(self, node: CreateTableUsing) -> Plan:
        name = object_name(node.this)
        model = object_name(node.args["model"])
        model_entry = self._catalog.get("model", model)
        if model_entry is None:
            raise ObjectNotFoundError(f"Model {model!r} does not exist.", **self._at(node.args["model"]), hint="Create it with BUILD MODEL first.")
        options = validate_options(
            node.args.get("options"), CREATE_TABLE_USING_OPTIONS, statement="CREATE TABLE ... USING", sql=self._sql
        )
        file_types = options["file_type"]
        if not file_types or not all(isinstance(t, str) and t.strip(".") for t in file_types):
            raise OptionError(
                "file_type needs one or more file suffixes.",
                **self._option_at(node, "file_type"),
                hint="e.g. file_type=['.jpg', '.png']",
            )
        source_node = node.args["source"]
        folder = self._resolve(source_node)
        if not folder.is_dir():
            raise ObjectNotFoundError(
                f"Folder {source_node.this!r} does not exist (looked at {folder}).",
                **self._at(source_node),
                hint="Relative paths start at the workspace directory.",
            )
        suffixes = {t.lower() if t.startswith(".") else f".{t.lower()}" for t in file_types}
        if not any(path.is_file() and path.suffix.lower() in suffixes for path in folder.rglob("*")):
            raise ObjectNotFoundError(
                f"Folder {source_node.this!r} holds no {', '.join(sorted(suffixes))} files.",
                **self._at(source_node),
                hint="Check the folder and file_type.",
            )
        if self._warehouse.table_exists(name):
            current = self._catalog.get("embedding", embedding_name(name, model))
            if not options["overwrite"]:
                raise ObjectExistsError(
                    f"Table {name!r} already exists.",
                    **self._at(node.this),
                    hint="Add overwrite=True to OPTIONS to scan the folder again (only new images are embedded), or choose another name.",
                )
            if current is None or not current.spec.get("folder"):
                raise ObjectExistsError(
                    f"Table {name!r} exists and was not made from a folder by {model!r}; CREATE TABLE ... USING will not replace it.",
                    **self._at(node.this),
                    hint="Choose another table name.",
                )
        spec = EmbeddingSpec(
            table=name,
            model=model,
            algorithm=model_entry.spec["algorithm"],
            image_col=options["image_col"],
            folder=source_node.this,
            file_types=tuple(file_types),
        )
        return Materialize([spec], [table_key(name), spec.asset_key, spec.collection_key])

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
        columns = list(self._warehouse.query(f"SELECT * FROM ({query.sql(dialect=self._warehouse.dialect)}) AS q LIMIT 0").columns)
        if column not in columns:
            raise ObjectNotFoundError(
                f"{option} {column!r} is not a column of the query's rows (columns: {', '.join(columns)}).",
                **(self._option_at(node, option) or self._at(query)),
                hint=f"Set OPTIONS ({option}='<column with image paths>').",
            )

    def _resolve(self, node: exp.Expression) -> Path:
        """The path a string literal names, with the literal's position on errors."""
        try:
            return self._workspace.resolve(node.this)
        except PathNotAllowedError as error:
            raise PathNotAllowedError(error.bare_message, **self._at(node), hint=error.hint) from None

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
