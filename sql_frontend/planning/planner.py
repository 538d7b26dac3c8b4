"""From a parsed statement to a plan: which assets to materialize, or which query to run.

Everything a statement needs is checked here, before anything runs: names, options, that the
tables and models it reads exist, that a SEARCH's model has embedded its table and its query
images exist, that it would not replace an object without overwrite=True, that its image column
exists. A statement that fails here has changed nothing; what runs after trusts the plan and
reports only what the data itself does wrong.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import sqlglot
from dagster._utils.schedules import is_valid_cron_string
from sqlglot import exp

from resources import CatalogResource, WarehouseResource, WorkspaceResource
from resources.catalog import CatalogEntry
from resources.model_source import TORCHVISION
from resources.warehouse import Generation, quote
from resources.workspace import suffix_set
from sql_frontend.language.dialect import (
    NESTED_STATEMENTS,
    BuildModel,
    ConvertUsing,
    CopyFrom,
    CreateTableUsing,
    DeleteModel,
    EvaluateUsing,
    FitModel,
    GetDataset,
    GetModel,
    ListObjects,
    PredictUsing,
    PrintMedia,
    SearchMedia,
    ThanoSQL,
    UploadModel,
    option_value,
)
from sql_frontend.language.names import object_name, referenced_tables
from sql_frontend.language.parser import ParsedStatement
from sql_frontend.language.positions import keyword_location, locate, span_location
from sql_frontend.planning.options import (
    CONVERT_OPTIONS,
    COPY_OPTIONS,
    CREATE_TABLE_USING_OPTIONS,
    EVALUATE_OPTIONS,
    GET_DATASET_OPTIONS,
    GET_MODEL_OPTIONS,
    PREDICT_OPTIONS,
    SEARCH_OPTIONS,
    UPLOAD_MODEL_OPTIONS,
    build_model_options,
    fit_model_options,
    validate_options,
)
from sql_frontend.planning.passthrough import PASSTHROUGH_TYPES, PassthroughPlanner
from sql_frontend.planning.plans import Evaluate, Materialize, Plan, Query
from sql_frontend.planning.query_errors import located
from sql_frontend.planning.read_only import check_limits, check_read_only
from sql_frontend.planning.removal import Workspace, dependents_of, existing_hint, plan_delete_model, plan_drop_table
from sql_frontend.planning.top_k import find_top_k
from thanosql.errors import (
    DataError,
    DependentObjectsError,
    InternalError,
    ObjectExistsError,
    ObjectNotFoundError,
    OptionError,
    PathNotAllowedError,
    QueryError,
    SQLError,
)
from thanosql_assets.defs.checks import require_column
from thanosql_assets.defs.datasets import DATASETS
from thanosql_assets.defs.embeddings import rebuild_run_config
from thanosql_assets.defs.evaluations import EvaluationRequest
from thanosql_assets.defs.labels import check_classes, check_known_labels, check_labels
from thanosql_assets.defs.materialize import MaterializationRequest
from thanosql_assets.defs.predictions import CONFIDENCE, PREDICTED, prediction_columns
from thanosql_assets.defs.specs import (
    QUERY_DIALECT,
    DatasetSpec,
    EmbeddingSpec,
    ModelSpec,
    PredictionSpec,
    SavedTableSpec,
    TableSpec,
    UploadedModelSpec,
    embedding_name,
    spec_from_dict,
    table_key,
)
from thanosql_assets.defs.table_files import INLINE_DIR, SPREADSHEET_SUFFIXES, TABLE_SUFFIXES, read_json_records
from thanosql_assets.defs.table_refresh import tables_reached
from thanosql_assets.defs.uploads import MODELS_DIR
from thanosql_assets.models.algorithms import ALGORITHMS, FAMILIES, Algorithm, algorithm_of, network_family
from thanosql_assets.models.classifiers.config import OPTION_ALIASES

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NAME_LENGTH = 63  # PostgreSQL's identifier limit
_STATEMENTS = (
    "GET THANOSQL DATASET, GET THANOSQL MODEL, COPY, BUILD MODEL, FIT MODEL, UPLOAD MODEL, CONVERT, CREATE TABLE ... USING, PREDICT, "
    "EVALUATE, SEARCH, PRINT, LIST, DELETE MODEL, DROP TABLE, SELECT, and PostgreSQL's INSERT, UPDATE, DELETE, "
    "CREATE TABLE [AS], CREATE VIEW and ALTER TABLE"
)
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # organization/model, as the Hugging Face Hub names models
_KIND_NAMES = {"simclr": "a SimCLR model (image embeddings)", "classifier": "a classifier"}
_KINDS_OF_MODEL = {"simclr": "an image-embedding model", "classifier": "a classifier"}  # followed by the algorithm's name
_KIND_USES = {
    "simclr": "SimCLR models embed and search images: CONVERT, CREATE TABLE ... USING and SEARCH.",
    "classifier": "Classifiers label images: PREDICT, EVALUATE, and CREATE TABLE ... USING for a folder of images.",
}


@dataclasses.dataclass(frozen=True)
class SearchTarget:
    """What a SEARCH reads: a model, the one table it embedded, and query images."""

    model: str
    table: str
    source: exp.Table | None  # the table in the SEARCH's AS query (None: it reads none, which the planner refuses)
    images: list[str]  # as written


def _huggingface_architecture(network: str) -> str:
    """The model class in an uploaded model's description ("Hugging Face ViTForImageClassification (...)"), else ""."""
    match = re.match(r"Hugging Face (\w+)", network)
    return match.group(1) if match else ""


def search_target(node: SearchMedia) -> SearchTarget:
    """The names a SEARCH node gives (unchecked: `Planner` checks them)."""
    images = option_value(node.args["images"])
    tables = referenced_tables(node.args["query"])
    return SearchTarget(
        model=object_name(node.this),
        table=object_name(tables[0].this) if tables else "",
        source=tables[0] if tables else None,
        images=[images] if isinstance(images, str) else images if isinstance(images, list) else [],
    )


def unsearchable(
    node: SearchMedia, target: SearchTarget, sql: str, catalog: CatalogResource, warehouse: WarehouseResource
) -> NoReturn:
    """Raise why `target.model` cannot search `target.table`: the model, the table or its embeddings are missing."""
    model, table = target.model, target.table
    entry = catalog.get("model", model)
    if entry is None:
        raise ObjectNotFoundError(
            f"Model {model!r} does not exist.",
            **locate(sql, node.this),
            hint=existing_hint("models", [entry.name for entry in catalog.list("model")]) + " BUILD MODEL creates one.",
        )
    check_model_kind(entry, "simclr", "SEARCH", locate(sql, node.this))
    if table not in warehouse.table_generations(fresh=True):
        if table in warehouse.views():
            raise ObjectNotFoundError(
                f"{table!r} is a view; SEARCH reads a table that CONVERT embedded.",
                **locate(sql, target.source),
                hint="SEARCH the table the view reads and put the view's conditions in the SEARCH's query "
                "(AS SELECT * FROM <table> WHERE ...).",
            )
        raise _no_table(table, target.source, sql, warehouse)
    convert_hint = f"Run CONVERT USING {model} OPTIONS (table_name='{table}') AS SELECT * FROM {table} first."
    if catalog.get("embedding", embedding_name(table, model)) is None:
        raise ObjectNotFoundError(
            f"Model {model!r} has not embedded table {table!r}: there is nothing to search.",
            **locate(sql, target.source),
            hint=convert_hint,
        )
    raise ObjectNotFoundError(
        f"Table {table!r} no longer has the embedding column of {model!r} (it was replaced after CONVERT).",
        **locate(sql, target.source),
        hint=convert_hint,
    )


def check_model_kind(entry: CatalogEntry, kind: str, use: str, where: dict) -> None:
    """Refuse a model that is not of `kind` ("simclr" or "classifier") where `use` needs one."""
    actual = algorithm_of(entry.spec["algorithm"])
    if actual.kind != kind:
        raise SQLError(
            f"Model {entry.name!r} is {_KINDS_OF_MODEL[actual.kind]} ({actual.name}); {use} needs {_KIND_NAMES[kind]}.",
            **where,
            hint=_KIND_USES[actual.kind],
        )


def embedding_column(tables: Mapping[str, Mapping[str, Generation]], table: str, model: str) -> Generation | None:
    """The generation of `model`'s embedding column in `table` (`tables`: `table_generations()`), or None."""
    columns = tables.get(table, {})
    return next((columns[name] for a in ALGORITHMS.values() if (name := f"{model}_{a.column_suffix}") in columns), None)


def changes_objects(statement: exp.Expression) -> bool:
    """Whether a statement may create or change objects: anything but a query (EVALUATE is one),
    a query with a CONVERT, or a PREDICT or SEARCH that saves a table."""
    if isinstance(statement, (PredictUsing, SearchMedia)):
        return any(entry.this.this.lower() == "table_name" for entry in (statement.args.get("options") or exp.Tuple()).expressions)
    is_query = isinstance(statement, (SearchMedia, PrintMedia, EvaluateUsing, exp.Query))
    return not is_query or any(True for _ in statement.find_all(ConvertUsing))


class Planner:
    """Plans statements against one workspace's catalog, tables and files."""

    def __init__(self, *, workspace: WorkspaceResource, warehouse: WarehouseResource, catalog: CatalogResource):
        self.workspace = workspace
        self.warehouse = warehouse
        self.catalog = catalog

    @classmethod
    def for_resources(cls, resources: dict) -> "Planner":
        return cls(workspace=resources["workspace"], warehouse=resources["warehouse"], catalog=resources["catalog"])

    def plan(self, statement: ParsedStatement) -> Plan:
        return _StatementPlanner(self, statement.sql, statement.start, statement.text).plan(statement.expression)


class _StatementPlanner:
    """The planning of one statement (`sql`: its script, for error positions)."""

    def __init__(self, planner: Planner, sql: str, start: int = 0, text: str = ""):
        self._workspace, self._warehouse, self._catalog = planner.workspace, planner.warehouse, planner.catalog
        self._sql = sql
        self._start = start  # where the statement begins in `sql`
        self._text = text or sql  # the statement as written

    def plan(self, node: exp.Expression) -> Plan:
        handlers = {
            GetDataset: self._get_dataset,
            GetModel: self._get_model,
            CopyFrom: self._copy,
            BuildModel: self._build_model,
            FitModel: self._fit_model,
            UploadModel: self._upload_model,
            ConvertUsing: self._convert,
            CreateTableUsing: self._create_table_using,
            PredictUsing: self._predict,
            EvaluateUsing: self._evaluate,
            DeleteModel: lambda node: plan_delete_model(node, self._sql, self._catalog, self._warehouse),
            exp.Drop: lambda node: plan_drop_table(node, self._sql, self._catalog, self._warehouse),
        }
        for node_type, handler in handlers.items():
            if isinstance(node, node_type):
                return handler(node)
        if isinstance(node, (SearchMedia, PrintMedia, ListObjects, exp.Query)):
            return self._query(node)
        if isinstance(node, PASSTHROUGH_TYPES):
            return PassthroughPlanner(self._sql, self._text, self._catalog, self._warehouse, self._check_tables, self._check_new_name).plan(node)
        keyword = str(node.this) if isinstance(node, exp.Command) else node.sql(dialect=ThanoSQL).split(" ", 1)[0]
        raise SQLError(
            f"{keyword.upper()} statements are not supported.",
            **(self._at(node) or span_location(self._sql, self._start, self._start)),
            hint=f"ThanoSQL runs {_STATEMENTS}.",
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
        return Materialize(MaterializationRequest((spec,), (spec.asset_key,)))

    def _get_model(self, node: GetModel) -> Plan:
        model_id = node.this.this.strip()
        if not _HUB_ID.fullmatch(model_id):
            raise SQLError(
                f"{model_id[:100]!r} is not a Hugging Face model id.",
                **self._at(node.this),
                hint="Name it as the Hub does, 'organization/model', e.g. GET THANOSQL MODEL 'google/vit-base-patch16-224' AS vit, "
                "or torchvision's ImageNet weights as 'torchvision/resnet18'.",
            )
        network = None
        if model_id.lower().startswith(TORCHVISION):
            network = self._torchvision_network(model_id.removeprefix(model_id[: len(TORCHVISION)]), node.this)
            model_id = TORCHVISION + network
        alias = node.args.get("alias")
        name = object_name(alias) if alias else re.sub(r"\W+", "_", model_id.rsplit("/", 1)[-1]).strip("_").lower()
        self._check_new_name(name, alias or node.this, "Model")
        options = validate_options(node.args.get("options"), GET_MODEL_OPTIONS, statement="GET THANOSQL MODEL", sql=self._sql)
        self._check_model_is_new(name, node, options, again="fetch it again")
        entry = self._catalog.get("model", name)
        if entry is not None and entry.spec.get("origin") != model_id:
            raise ObjectExistsError(
                f"Model {name!r} exists and is not {model_id}; GET THANOSQL MODEL will not replace it.",
                **self._at(alias or node.this),
                hint=f"Name the model otherwise: GET THANOSQL MODEL '{model_id}' AS another_name.",
            )
        if network is None:
            spec = UploadedModelSpec(name=name, framework="huggingface", source=f"{MODELS_DIR}/{name}", origin=model_id)
        else:
            ours = next((algorithm.name for algorithm in ALGORITHMS.values() if algorithm.network == network), None)
            spec = UploadedModelSpec(
                name=name, framework="pytorch", source=f"{MODELS_DIR}/{name}", origin=model_id, network=network, base_algorithm=ours
            )
        return Materialize(MaterializationRequest((spec,), (spec.asset_key,)), announce=f"Getting model {model_id}...")

    def _torchvision_network(self, written: str, node: exp.Expression) -> str:
        """The torchvision classification network `written` names: its torchvision name (resnet18)
        or the BUILD MODEL algorithm built on it (ResNet18), any case."""
        algorithm = ALGORITHMS.get(written.lower())
        if algorithm is not None and algorithm.network:
            return algorithm.network
        import torchvision  # only here: a GET of torchvision weights is worth its import time

        networks = torchvision.models.list_models(module=torchvision.models)
        if written.lower() not in networks:
            close = difflib.get_close_matches(written.lower(), networks, n=3)
            raise ObjectNotFoundError(
                f"torchvision has no classification network {written!r}.",
                **self._at(node),
                hint=(f"Did you mean {', '.join(TORCHVISION + name for name in close)}? " if close else "")
                + "Name one of torchvision.models.list_models(module=torchvision.models), e.g. 'torchvision/resnet18'.",
            )
        return written.lower()

    def _copy(self, node: CopyFrom) -> Plan:
        name = object_name(node.this)
        self._check_new_name(name, node.this, "Table")
        options = validate_options(node.args.get("options"), COPY_OPTIONS, statement="COPY", sql=self._sql)
        if options["overwrite"] and options["append"]:
            raise OptionError(
                "COPY takes overwrite=True or append=True, not both.",
                **self._option_at(node, "append"),
                hint="overwrite replaces the table with the file; append adds the file's rows to it.",
            )
        source_node = node.args["source"]
        source = source_node.this
        inline = None  # COPY t FROM '<json records>': the records, written to `source` once everything is checked
        if source.lstrip().startswith(("[", "{")) and not _is_file(self._resolve(source_node)):
            inline, source = source, self._inline_json_path(source, source_node)
        path = self._resolve(source_node, source)
        if not path.exists() and inline is None:
            raise ObjectNotFoundError(
                f'"{source}" does not exist (looked at {path}).',
                **self._at(source_node),
                hint="Relative paths start at the workspace directory; GET THANOSQL DATASET downloads the tutorial files.",
            )
        if path.is_file() and path.suffix.lower() not in TABLE_SUFFIXES:
            raise SQLError(
                f'COPY reads {", ".join(TABLE_SUFFIXES)} files and folders, not "{source}".',
                **self._at(source_node),
                hint="Save the table as CSV, Parquet, JSON records, JSON Lines, a spreadsheet or a pickled DataFrame, or COPY a folder of files.",
            )
        if options["sheet"] is not None and path.suffix.lower() not in SPREADSHEET_SUFFIXES:
            raise OptionError(
                f'sheet names a sheet of an .xlsx or .xls file; "{source}" is not one.',
                **self._option_at(node, "sheet"),
                hint="Leave sheet out.",
            )
        sources: tuple[str, ...] = (source,)
        sheets: tuple[str, ...] = (options["sheet"] or "",)
        self._check_not_view(name, self._at(node.this), "COPY")
        if self._warehouse.table_exists(name):
            current = self._catalog.get("table", name)
            if options["append"]:
                if current is None or "sources" not in current.spec:
                    changed = current is not None and current.spec.get("statement", "").startswith("COPY")
                    raise ObjectExistsError(
                        f"Table {name!r} was {'changed by SQL statements since COPY made it' if changed else 'not made by COPY'}, "
                        "so COPY cannot add to it.",
                        **self._at(node.this),
                        hint=f"COPY the file into a new table, then INSERT INTO {name} SELECT * FROM that table.",
                    )
                sheets = (*current.spec.get("sheets", ()), *[""] * (len(current.spec["sources"]) - len(current.spec.get("sheets", ()))), *sheets)
                sources = (*current.spec["sources"], source)
            derived = [
                entry.spec for entry in self._catalog.list("embedding")
                if entry.spec.get("table") == name and not entry.spec.get("folder") and name not in entry.spec.get("tables", ())
            ]
            if derived:
                raise ObjectExistsError(
                    f"Table {name!r} is CONVERT's output from {', '.join(derived[0]['tables'])}; a COPY over it would be "
                    "undone when that table changes.",
                    **self._at(node.this),
                    hint="COPY into another table name.",
                )
            if self._catalog.get("prediction", name) is not None:
                raise ObjectExistsError(
                    f"Table {name!r} holds PREDICT's results; COPY will not replace it.",
                    **self._at(node.this),
                    hint="COPY into another table name.",
                )
            if not options["overwrite"] and not options["append"]:
                raise ObjectExistsError(
                    f"Table {name!r} already exists.",
                    **self._at(node.this),
                    hint="Add OPTIONS (overwrite=True) to replace it, OPTIONS (append=True) to add rows, or COPY into another table name.",
                )
        datasets = tuple(dict.fromkeys(d for d in (self._dataset_of(self._workspace.root / s) for s in sources) if d))
        spec = TableSpec(name=name, sources=sources, datasets=datasets, sheets=sheets if any(sheets) else ())
        if inline is not None:
            self._write_inline(inline, source, source_node)
        # The table's asset also brings the embeddings that read it up to date (see `table_asset`).
        return Materialize(MaterializationRequest((spec,), (spec.asset_key,)))

    def _inline_json_path(self, text: str, node: exp.Expression) -> str:
        """COPY t FROM '<json records>': the records, checked; they are kept in the workspace as a file
        named by their content (so the table's asset reads them again as any COPY source): its relative path."""
        try:
            read_json_records(text)
        except ValueError as error:
            raise DataError(
                f"COPY: the JSON string is not a list of records ({str(error).strip().splitlines()[0][:200]}).",
                **self._at(node),
                hint='Pass DataFrame.to_json(orient="records"): [{"column": value, ...}, ...], one object per row.',
            ) from None
        return f"{INLINE_DIR}/{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"

    def _write_inline(self, text: str, relative: str, node: exp.Expression) -> None:
        target = self._resolve(node, relative)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
            staged.write_text(text, encoding="utf-8")
            staged.replace(target)

    def _build_model(self, node: BuildModel) -> Plan:
        name = object_name(node.this)
        self._check_new_name(name, node.this, "Model")
        algorithm_node = node.args["algorithm"]
        algorithm = ALGORITHMS.get(algorithm_node.this.lower())
        if algorithm is None:
            raise ObjectNotFoundError(
                f"Unknown algorithm {algorithm_node.this!r}.",
                **self._at(algorithm_node),
                hint=f"Available: {', '.join(a.name for a in ALGORITHMS.values())}.",
            )
        options = validate_options(
            node.args.get("options"), build_model_options(algorithm), statement=f"BUILD MODEL ... USING {algorithm.name}",
            sql=self._sql, aliases=OPTION_ALIASES,
        )
        self._check_model_is_new(name, node, options)
        query, tables = self._source_query(node)
        self._check_training_rows(node, query, options)
        base_model = options.get("base_model")
        if base_model is not None:
            self._model_entry(base_model, node, "simclr", "base_model", option="base_model")
            if base_model == name:
                raise OptionError(f"Model {name!r} cannot start from itself.", **self._option_at(node, "base_model"), hint="Name a SimCLR model of the workspace.")
            if options["input_size"] is not None:
                raise OptionError(
                    "input_size comes from base_model: the classifier sees images as its SimCLR model does.",
                    **self._option_at(node, "input_size"),
                    hint="Leave input_size out, or build without base_model.",
                )
        if algorithm.kind == "classifier":
            self._check_pretrained(name, algorithm, node, options)
            if base_model is None and "self_training" in self._written_options(node) and options["self_training"]:
                raise OptionError(
                    "self_training learns from the unlabelled training images of base_model, which this statement does not name.",
                    **self._option_at(node, "self_training"),
                    hint="Add base_model='<a SimCLR model>', or leave self_training out.",
                )
            labels = self._check_labels(node, query, options)
            self._located_data_error(node, "label_col", query, lambda: check_classes(labels, options["label_col"], "the query's rows"))
        spec = self._model_spec(name, algorithm, query, tables, options, algorithm.config(**self._training_options(algorithm, options)), base_model)
        return Materialize(MaterializationRequest((spec,), (spec.asset_key,)), announce="Building model...")

    def _check_pretrained(self, name: str, algorithm: Algorithm, node: BuildModel, options: dict) -> None:
        """pretrained=True: torchvision's ImageNet weights of `algorithm`'s network; pretrained='m': a
        classifier of the workspace of the same network family (its classes may differ: a new head trains)."""
        pretrained = options["pretrained"]
        if pretrained is False:
            return
        if options["base_model"] is not None:
            raise OptionError(
                "base_model and pretrained are two starting points; a model has one.",
                **self._option_at(node, "pretrained"),
                hint="base_model starts from a SimCLR model's encoder, pretrained from a classifier's weights: keep one.",
            )
        if pretrained is True:
            size = options["input_size"]
            if algorithm.family == "vit" and size not in (None, 224):
                raise OptionError(
                    f"ViT's pretrained weights take 224 px images, not input_size={size}.",
                    **self._option_at(node, "input_size"),
                    hint="Leave input_size out (images are resized to 224 px), or train ViT from scratch.",
                )
            return
        entry = self._model_entry(pretrained, node, "classifier", "pretrained", option="pretrained")
        where = self._option_at(node, "pretrained")
        if pretrained == name:
            raise OptionError(f"Model {name!r} cannot start from itself.", **where, hint="Name another classifier of the workspace.")
        if entry.state.get("zero_shot"):
            raise OptionError(
                f"Model {pretrained!r} is a zero-shot (CLIP) model: it has no classes of its own to fine-tune.",
                **where,
                hint="Start from an image classifier (uploaded, fetched with GET THANOSQL MODEL, or trained).",
            )
        if options["input_size"] is not None:
            raise OptionError(
                f"input_size comes from the pretrained model: {name} sees images as {pretrained} does.",
                **self._option_at(node, "input_size"),
                hint="Leave input_size out.",
            )
        # A torchvision network (trained here, or uploaded weights) must be the algorithm's own; a
        # Hugging Face architecture, of its family (ViTForImageClassification with USING ViT).
        trained = ALGORITHMS.get(entry.spec["algorithm"].lower())
        network = trained.network if trained else entry.spec.get("network")
        architecture = network or entry.state.get("architecture") or _huggingface_architecture(entry.state.get("network", ""))
        fits = network == algorithm.network if network else network_family(architecture) == algorithm.family
        if not fits:
            family = network_family(architecture)
            same = [a.name for a in ALGORITHMS.values() if a.kind == "classifier" and (a.network == network if network else a.family == family)]
            raise OptionError(
                f"Model {pretrained!r} is a {architecture or 'network of unknown architecture'}, not a {algorithm.name}: "
                f"BUILD MODEL ... USING {algorithm.name} cannot start from it.",
                **where,
                hint=f"Write USING {' or '.join(same)}." if same
                else f"pretrained='name' fine-tunes models of BUILD MODEL's architectures ({', '.join(FAMILIES)}); predict with {pretrained} as it is.",
            )
        self._check_no_cycle(name, pretrained, where)

    def _check_no_cycle(self, name: str, start: str, where: dict) -> None:
        """Refuse when model `start` itself starts, through any chain of models, from `name`."""
        seen, current = set(), start
        while current is not None and current not in seen:
            seen.add(current)
            entry = self._catalog.get("model", current)
            options = (entry.spec.get("options") or {}) if entry else {}
            pretrained = options.get("pretrained")
            current = options.get("base_model") or (pretrained if isinstance(pretrained, str) else None)
            if current == name:
                raise OptionError(
                    f"Model {start!r} was trained from {name!r}: {name} cannot start from it in turn.",
                    **where,
                    hint="Start from another model, or build this one under a new name.",
                )

    def _fit_model(self, node: FitModel) -> Plan:
        name = object_name(node.this)
        self._check_new_name(name, node.this, "Model")
        base_node = node.args["model"]
        base = object_name(base_node)
        entry = self._model_entry(base, base_node, None, "FIT MODEL")
        if base == name:
            raise SQLError(
                f"FIT MODEL makes a new model from {base!r}: give it another name.",
                **self._at(node.this),
                hint=f"To train {base} again as a new version, use BUILD MODEL {base} ... OPTIONS (overwrite=True).",
            )
        algorithm = algorithm_of(entry.spec["algorithm"])
        if "source" in entry.spec:
            raise SQLError(
                f"Model {base!r} was uploaded ({algorithm.name}); FIT MODEL trains further models that BUILD MODEL trained.",
                **self._at(base_node),
                hint="Use it with PREDICT, EVALUATE or CREATE TABLE ... USING.",
            )
        options = validate_options(
            node.args.get("options"), fit_model_options(algorithm), statement=f"FIT MODEL (a {algorithm.name} model)",
            sql=self._sql, aliases=OPTION_ALIASES, fixed=(frozenset(spec.name for spec in build_model_options(algorithm)), base),
        )
        self._check_model_is_new(name, node, options)
        # Training options not written keep the values the base model trained with; so do its columns.
        written = {OPTION_ALIASES.get(key, key) for key in self._written_options(node)}
        base_spec = spec_from_dict("model", entry.spec)
        options.update({key: getattr(base_spec, key) for key in ("image_col", "label_col") if key not in written})
        query, tables = self._source_query(node)
        self._check_training_rows(node, query, options)
        if algorithm.kind == "classifier":
            labels = self._check_labels(node, query, options)
            self._located_data_error(
                node, "label_col", query, lambda: check_known_labels(labels, entry.state["classes"], base, options["label_col"])
            )
        base_training = base_spec.training
        training = dataclasses.replace(base_training, **{key: options[key] for key in written if hasattr(base_training, key)})
        spec = self._model_spec(name, algorithm, query, tables, options, training, base, fit=True)
        return Materialize(MaterializationRequest((spec,), (spec.asset_key,)), announce="Training model...")

    def _upload_model(self, node: UploadModel) -> Plan:
        name = object_name(node.this)
        self._check_new_name(name, node.this, "Model")
        options = validate_options(node.args.get("options"), UPLOAD_MODEL_OPTIONS, statement="UPLOAD MODEL", sql=self._sql)
        self._check_model_is_new(name, node, options, again="register it again")
        framework = options["framework"]
        if framework is None:
            raise OptionError(
                "UPLOAD MODEL needs OPTIONS (framework=...): what the source is.",
                **self._at(node.args.get("options") or node.this),
                hint="framework='huggingface' for a save_pretrained directory, framework='pytorch' (with algorithm='ResNet18', ...) for torchvision weights.",
            )
        entry = self._catalog.get("model", name)
        if entry is not None and "source" not in entry.spec:
            raise ObjectExistsError(
                f"Model {name!r} was trained with BUILD MODEL; UPLOAD MODEL will not replace it.",
                **self._at(node.this),
                hint="Upload under another name.",
            )
        source_node = node.args["source"]
        path = self._resolve(source_node)
        if not path.exists():
            raise ObjectNotFoundError(
                f"{source_node.this!r} does not exist (looked at {path}).",
                **self._at(source_node),
                hint="Relative paths start at the workspace directory.",
            )
        network, base_algorithm = None, options["algorithm"]
        if framework == "huggingface":
            if base_algorithm is not None:
                raise OptionError(
                    "algorithm is for framework='pytorch': a Hugging Face model says its own architecture.",
                    **self._option_at(node, "algorithm"),
                    hint="Leave algorithm out.",
                )
            if not path.is_dir():
                raise ObjectNotFoundError(
                    f"{source_node.this!r} is a file; a Hugging Face model is a directory (config.json, weights, preprocessor_config.json).",
                    **self._at(source_node),
                    hint="Name the directory model.save_pretrained(...) wrote.",
                )
        else:
            classifiers = [a.name for a in ALGORITHMS.values() if a.kind == "classifier"]
            algorithm = ALGORITHMS.get((base_algorithm or "").lower())
            if algorithm is None or algorithm.kind != "classifier":
                raise OptionError(
                    "framework='pytorch' needs algorithm=: the torchvision architecture of the weights."
                    if base_algorithm is None else f"Unknown classifier algorithm {base_algorithm!r}.",
                    **(self._option_at(node, "algorithm") or self._option_at(node, "framework")),
                    hint=f"Available: {', '.join(classifiers)}.",
                )
            if not path.is_file():
                raise ObjectNotFoundError(
                    f"{source_node.this!r} is a directory; framework='pytorch' takes a weights file (a state dict saved with torch.save).",
                    **self._at(source_node),
                    hint="Name the .pth file, or use framework='huggingface' for a save_pretrained directory.",
                )
            network, base_algorithm = algorithm.network, algorithm.name
        spec = UploadedModelSpec(name=name, framework=framework, source=source_node.this, network=network, base_algorithm=base_algorithm)
        return Materialize(MaterializationRequest((spec,), (spec.asset_key,)), announce="Uploading model...")

    def _model_spec(
        self, name: str, algorithm: Algorithm, query: exp.Expression, tables: list[str], options: dict, training, base_model: str | None, fit: bool = False
    ) -> ModelSpec:
        return ModelSpec(
            name=name,
            algorithm=algorithm.name,
            query=query.sql(dialect=ThanoSQL),
            tables=tuple(tables),
            image_col=options["image_col"],
            label_col=options["label_col"],
            holdout=options["holdout"],
            schedule=options["schedule"],
            on_error=options["on_error"],
            base_model=base_model,
            fit=fit,
            pretrained=options.get("pretrained", False),
            self_training=options.get("self_training", True),
            training=training,
        )

    @staticmethod
    def _training_options(algorithm: Algorithm, options: dict) -> dict:
        fields = {item.name for item in dataclasses.fields(algorithm.config)}
        return {key: value for key, value in options.items() if key in fields}

    def _check_model_is_new(self, name: str, node: exp.Expression, options: dict, again: str = "train it again") -> None:
        if self._catalog.get("model", name) is not None and not options["overwrite"]:
            raise ObjectExistsError(
                f"Model {name!r} already exists.",
                **self._at(node.this),
                hint=f"Add overwrite=True to its OPTIONS to {again} as a new version, or choose another name.",
            )

    def _check_training_rows(self, node: exp.Expression, query: exp.Expression, options: dict) -> None:
        self._check_column(node, query, "image_col", options["image_col"])
        if options["schedule"] is not None and not is_valid_cron_string(options["schedule"]):
            raise OptionError(
                f"schedule {options['schedule']!r} is not a cron string.",
                **self._option_at(node, "schedule"),
                hint="Five fields: minute hour day-of-month month day-of-week, e.g. schedule='0 3 * * *' (03:00 every day).",
            )

    def _check_labels(self, node: exp.Expression, query: exp.Expression, options: dict) -> list:
        """The distinct labels of the query's `label_col` (checked: no NULLs, not floats, one type)."""
        label_col = options["label_col"]
        if label_col == options.get("image_col") and "label_col" in self._written_options(node):  # else image_col is the mistake: checked with the images
            raise OptionError(
                f"label_col and image_col both name column {label_col!r}: the labels would be the image paths.",
                **self._option_at(node, "label_col"),
                hint="label_col names the column of classes, e.g. label_col='label'.",
            )
        self._check_column(node, query, "label_col", label_col)
        dialect = self._warehouse.dialect
        distinct = self._warehouse.query(f"SELECT {quote(label_col)} FROM ({query.sql(dialect=dialect)}) AS q GROUP BY 1")
        return self._located_data_error(node, "label_col", query, lambda: check_labels(distinct[label_col], label_col, "the query's rows"))

    def _located_data_error(self, node: exp.Expression, option: str, query: exp.Expression, check):
        """Run `check`; a DataError it raises is reported at `option` (or the query) of the statement."""
        try:
            return check()
        except DataError as error:
            raise OptionError(error.message, **(self._option_at(node, option) or self._at(query)), hint=error.hint) from None

    def _model_entry(self, name: str, node: exp.Expression, kind: str | None, use: str, option: str | None = None) -> CatalogEntry:
        """The catalog entry of model `name`, which `use` (a statement or an option) needs to be of `kind` (None: any)."""
        where = (self._option_at(node, option) if option else {}) or self._at(node)
        entry = self._catalog.get("model", name)
        if entry is None:
            models = [e.name for e in self._catalog.list("model") if kind is None or algorithm_of(e.spec["algorithm"]).kind == kind]
            plural = {None: "models", "simclr": "SimCLR models", "classifier": "classifiers"}[kind]
            raise ObjectNotFoundError(
                f"Model {name!r} does not exist.",
                **where,
                hint=(f"Existing {plural}: {', '.join(models)}. " if models else "")
                + ("BUILD MODEL ... USING SimCLR creates one." if kind == "simclr" else "Create it with BUILD MODEL first."),
            )
        if kind is not None:
            check_model_kind(entry, kind, use, where)
        return entry

    def _written_options(self, node: exp.Expression) -> list[str]:
        return [entry.this.this.lower() for entry in node.args.get("options").entries()] if node.args.get("options") else []

    def _convert(self, node: ConvertUsing) -> Materialize:
        model = object_name(node.this)
        model_entry = self._model_entry(model, node.this, "simclr", "CONVERT")
        options = validate_options(node.args.get("options"), CONVERT_OPTIONS, statement="CONVERT", sql=self._sql)
        query, written = self._source_query(node)
        table = options["table_name"] or (written[0] if len(written) == 1 else None)
        if table is None:
            raise OptionError(
                f"CONVERT needs OPTIONS (table_name='...') when its query reads {'no table' if not written else 'several tables'}.",
                **self._at(node.args["query"]),
                hint="table_name names the table that receives the embedding column.",
            )
        if options["table_name"]:
            self._check_new_name(table, node, "Table", option="table_name")
        if self._catalog.get("prediction", table) is not None:
            raise ObjectExistsError(
                f"Table {table!r} holds PREDICT's results, which PREDICT rewrites without embeddings.",
                **(self._option_at(node, "table_name") or self._at(node.args["query"])),
                hint="Give CONVERT another table_name: OPTIONS (table_name='my_embedded_table').",
            )
        if not options["table_name"] and table in self._warehouse.views():
            raise ObjectExistsError(
                f"{table!r} is a view: CONVERT without a table_name writes into the table it queries, and a view has no rows of its own.",
                **self._at(referenced_tables(query)[0]),
                hint=f"Write a new table of the view's rows: OPTIONS (table_name='embedded_{table}'), or CONVERT the table the view reads.",
            )
        self._check_not_view(table, self._option_at(node, "table_name") or self._at(node.args["query"]), "CONVERT")
        query, tables = self._through_views(query, written)  # after the checks of the names as written
        circle = sorted(set(tables) & tables_reached(self._catalog, table).keys()) if table not in tables else []
        if circle:
            raise ObjectExistsError(
                f"CONVERT would make table {table!r} from {circle[0]!r}, which is made from {table!r}: each would read the other.",
                **self._at(node.args["query"]),
                hint=f"Make {table} from the tables it was made from, or give CONVERT a new table_name.",
            )
        if table not in tables and self._warehouse.table_exists(table) and not self._made_by(table, model):
            raise ObjectExistsError(
                f"CONVERT would replace table {table!r}, which its query does not read.",
                **self._option_at(node, "table_name"),
                hint=f"Query that table to add the embedding column to it (AS SELECT * FROM {table}), or choose a new table_name."
                + " (A CONVERT with the same model that made it makes it again.)",
            )
        self._check_column(node, query, "image_col", options["image_col"])
        spec = EmbeddingSpec(
            table=table,
            model=model,
            algorithm=model_entry.spec["algorithm"],
            image_col=options["image_col"],
            query=query.sql(dialect=ThanoSQL),
            tables=tuple(tables),
            batch_size=options["batch_size"],
            on_error=options["on_error"],
            partitions=options["partitions"] or EmbeddingSpec.default_partitions(self._count_images(query.sql(dialect=ThanoSQL), options["image_col"])),
        )
        self._check_embedding_column_is_free(node, spec, query, tables)
        return Materialize(
            MaterializationRequest((spec,), (spec.asset_key, spec.collection_key), rebuild_run_config(spec)),
            result_query=f"SELECT * FROM {quote(table)} WHERE {quote(spec.column)} IS NOT NULL",
        )

    def _create_table_using(self, node: CreateTableUsing) -> Plan:
        name = object_name(node.this)
        self._check_new_name(name, node.this, "Table")
        model = object_name(node.args["model"])
        model_entry = self._model_entry(model, node.args["model"], None, "CREATE TABLE ... USING")
        classifies = algorithm_of(model_entry.spec["algorithm"]).kind == "classifier"
        if model_entry.state.get("zero_shot"):
            raise SQLError(
                f"Model {model!r} is a zero-shot (CLIP) model, which needs candidate labels; CREATE TABLE ... USING takes none.",
                **self._at(node.args["model"]),
                hint="Classify a table of image paths with PREDICT USING ... OPTIONS (labels=[...], table_name='...') AS SELECT ...",
            )
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
                f"Folder {source_node.this!r} " + ("is a file, not a folder." if folder.is_file() else f"does not exist (looked at {folder})."),
                **self._at(source_node),
                hint="Relative paths start at the workspace directory.",
            )
        files = self._workspace.files_under(folder, file_types)
        if not files:
            raise ObjectNotFoundError(
                f"Folder {source_node.this!r} holds no {', '.join(sorted(suffix_set(file_types)))} files.",
                **self._at(source_node),
                hint="Check the folder and file_type.",
            )
        self._check_not_view(name, self._at(node.this), "CREATE TABLE ... USING")
        if self._warehouse.table_exists(name):
            current = self._catalog.get(*(("prediction", name) if classifies else ("embedding", embedding_name(name, model))))
            if not options["overwrite"]:
                raise ObjectExistsError(
                    f"Table {name!r} already exists.",
                    **self._at(node.this),
                    hint=f"Add overwrite=True to OPTIONS to scan the folder again (only new images are {'classified' if classifies else 'embedded'}), or choose another name.",
                )
            if current is None or not current.spec.get("folder") or current.spec.get("model") != model:
                raise ObjectExistsError(
                    f"Table {name!r} exists and was not made from a folder by {model!r}; CREATE TABLE ... USING will not replace it.",
                    **self._at(node.this),
                    hint="Choose another table name.",
                )
        if classifies and options["partitions"] is not None:
            raise OptionError(
                "partitions applies to embeddings (a SimCLR model); a classifier's CREATE TABLE ... USING runs as one run.",
                **self._option_at(node, "partitions"),
                hint="Leave partitions out.",
            )
        if classifies:  # seed 004: a folder of images to labels
            if options["image_col"] in (PREDICTED, CONFIDENCE, "filename"):
                raise OptionError(
                    f"image_col={options['image_col']!r} is a column the table gets anyway.",
                    **self._option_at(node, "image_col"),
                    hint="Name the image column otherwise, e.g. image_col='image_path'.",
                )
            prediction = PredictionSpec(
                table=name, model=model, image_col=options["image_col"], folder=source_node.this, file_types=tuple(file_types),
                on_error=options["on_error"],
            )
            return Materialize(
                MaterializationRequest((prediction,), (prediction.asset_key,)), announce="Classifying images...", result_query=f"SELECT * FROM {quote(name)}"
            )
        spec = EmbeddingSpec(
            table=name,
            model=model,
            algorithm=model_entry.spec["algorithm"],
            image_col=options["image_col"],
            folder=source_node.this,
            file_types=tuple(file_types),
            on_error=options["on_error"],
            partitions=options["partitions"] or EmbeddingSpec.default_partitions(len(files)),
        )
        return Materialize(MaterializationRequest((spec,), (table_key(name), spec.asset_key, spec.collection_key)))

    def _query(self, node: exp.Expression) -> Query:
        """SELECT, SEARCH and PRINT: CONVERT subqueries, then every SEARCH's target and the similarity
        a top-k plan ranks by, then every other table read."""
        converts = [
            (holder, self._convert(holder.this)) for holder in node.find_all(exp.Subquery, exp.CTE) if isinstance(holder.this, ConvertUsing)
        ]
        searches = list(node.find_all(SearchMedia))
        for search in searches:
            self._check_search(search)
            nested = next(search.args["query"].find_all(SearchMedia, ConvertUsing, PredictUsing, ListObjects), None)
            if nested is not None:
                raise SQLError(
                    "The AS query of SEARCH reads a table; it cannot hold SEARCH, CONVERT, PREDICT or LIST.",
                    **keyword_location(self._sql, nested, NESTED_STATEMENTS[type(nested)]),
                    hint="Save those rows first (OPTIONS (table_name=...)), then SEARCH that table.",
                )
            if search is not node and search.args.get("options"):
                raise SQLError(
                    "OPTIONS belong to a SEARCH that is a statement of its own, not one inside a query.",
                    **self._at(search.args["options"]),
                    hint="Run the SEARCH alone with OPTIONS (table_name=...), then query the table it saved.",
                )
        save_as = self._search_table(node) if isinstance(node, SearchMedia) else None
        for prediction in node.find_all(PredictUsing):
            self._check_predict(prediction, nested=True)
        self._check_ranking(node.args["query"] if isinstance(node, PrintMedia) else node)
        self._check_tables(node, outside=(SearchMedia, ConvertUsing, PredictUsing))
        return Query(node, converts=converts, save_as=save_as)

    def _search_table(self, node: SearchMedia) -> SavedTableSpec | None:
        """SEARCH ... OPTIONS (table_name=...): the table its rows are saved as (checked), or None."""
        options = validate_options(node.args.get("options"), SEARCH_OPTIONS, statement="SEARCH", sql=self._sql)
        table = options["table_name"]
        if table is None:
            self._check_overwrite_saves(node, "SEARCH", options)
            return None
        self._check_new_name(table, node, "Table", option="table_name")
        where = self._option_at(node, "table_name")
        read = [object_name(t.this) for t in referenced_tables(node.args["query"])]
        if table in read:
            raise ObjectExistsError(f"SEARCH would replace table {table!r}, which its query reads.", **where, hint="Choose a new table_name.")
        if table in self._warehouse.relations():
            entry = self._catalog.get("table", table)
            if entry is None or not entry.spec.get("statement", "").upper().startswith("SEARCH"):
                raise ObjectExistsError(
                    f"Table {table!r} already exists and was not saved by SEARCH; SEARCH will not replace it.",
                    **where,
                    hint="Choose a new table_name, or DROP TABLE it first.",
                )
            if not options["overwrite"]:
                raise ObjectExistsError(f"Table {table!r} already exists.", **where, hint="Add overwrite=True to OPTIONS to replace it.")
            needed_by = dependents_of(Workspace.read(self._catalog, self._warehouse), table)
            if needed_by:
                raise DependentObjectsError(
                    f"Table {table!r} is needed by {', '.join(needed_by)}.", **where, hint="Choose a new table_name."
                )
        return SavedTableSpec(table, self._text, tuple(dict.fromkeys(read)))

    def _predict(self, node: PredictUsing) -> Plan:
        options, tables = self._check_predict(node)
        table = options["table_name"]
        if table is None:
            self._check_overwrite_saves(node, "PREDICT", options)
            return Query(node)
        self._check_new_name(table, node, "Table", option="table_name")
        where = self._option_at(node, "table_name")
        if table in tables:
            raise ObjectExistsError(
                f"PREDICT would replace table {table!r}, which its query reads.", **where, hint="Choose a new table_name for the predictions."
            )
        self._check_not_view(table, where, "PREDICT")
        if self._warehouse.table_exists(table):
            if self._catalog.get("prediction", table) is None:
                raise ObjectExistsError(
                    f"Table {table!r} already exists and was not made by PREDICT; PREDICT will not replace it.",
                    **where,
                    hint="Choose a new table_name for the predictions.",
                )
            if not options["overwrite"]:
                raise ObjectExistsError(
                    f"Table {table!r} already exists.", **where, hint="Add overwrite=True to OPTIONS to replace it, or choose another table_name."
                )
        spec = PredictionSpec(
            table=table,
            model=object_name(node.this),
            query=node.args["query"].sql(dialect=ThanoSQL),
            tables=tuple(tables),
            image_col=options["image_col"],
            batch_size=options["batch_size"],
            top_k=options["top_k"],
            labels=tuple(options["labels"] or ()),
        )
        return Materialize(
            MaterializationRequest((spec,), (spec.asset_key,)), announce="Predicting...", result_query=f"SELECT * FROM {quote(table)}"
        )

    def _check_predict(self, node: PredictUsing, nested: bool = False) -> tuple[dict, list[str]]:
        """A PREDICT's options, and the tables its query reads: its model is a classifier, its rows have
        the image column and none of the columns it adds, `top_k` is at most the number of classes."""
        entry = self._model_entry(object_name(node.this), node.this, "classifier", "PREDICT")
        options = validate_options(node.args.get("options"), PREDICT_OPTIONS, statement="PREDICT", sql=self._sql)
        if nested and options["table_name"] is not None:
            raise OptionError(
                "table_name saves a PREDICT statement's result; this PREDICT is inside another query.",
                **self._option_at(node, "table_name"),
                hint="Run PREDICT ... OPTIONS (table_name='...') AS SELECT ... on its own, then query that table.",
            )
        classes = self._prediction_classes(node, entry, options["labels"])
        if options["top_k"] is not None and options["top_k"] > len(classes):
            raise OptionError(
                f"top_k={options['top_k']} is more than the {len(classes)} classes model {object_name(node.this)!r} knows.",
                **self._option_at(node, "top_k"),
                hint=f"Use top_k={len(classes)} or less.",
            )
        query, tables = self._source_query(node)
        self._check_column(node, query, "image_col", options["image_col"])
        columns = self._warehouse.query_columns(query.sql(dialect=self._warehouse.dialect))
        taken = [column for column in prediction_columns(options["top_k"]) if column in columns]
        if taken:
            raise SQLError(
                f"The rows already have a column {taken[0]!r}, which PREDICT adds.",
                **self._at(query),
                hint=f"Select the columns by name and rename that one ({taken[0]} AS earlier_{taken[0]}).",
            )
        return options, tables

    def _prediction_classes(self, node: PredictUsing, entry: CatalogEntry, labels: list | None) -> list:
        """What PREDICT's model chooses from: its classes, or for a zero-shot (CLIP) model the
        `labels` option, which only such a model takes."""
        model = object_name(node.this)
        if not entry.state.get("zero_shot"):
            if labels is not None:
                raise OptionError(
                    f"labels names candidate labels for zero-shot (CLIP) models; {model!r} has its own classes.",
                    **self._option_at(node, "labels"),
                    hint="Leave labels out.",
                )
            return entry.state.get("classes", [])
        texts = [label.strip() for label in labels or [] if isinstance(label, str)]
        if labels is None or len(texts) != len(labels) or len(set(texts)) < 2 or not all(texts):
            raise OptionError(
                f"Model {model!r} is a zero-shot (CLIP) model: PREDICT needs labels=, at least two different names.",
                **(self._option_at(node, "labels") or self._at(node.this)),
                hint="e.g. PREDICT USING clip OPTIONS (labels=['cat', 'dog', 'bird']) AS SELECT ...",
            )
        return texts

    def _evaluate(self, node: EvaluateUsing) -> Plan:
        model = object_name(node.this)
        entry = self._model_entry(model, node.this, "classifier", "EVALUATE")
        if entry.state.get("zero_shot"):
            raise SQLError(
                f"Model {model!r} is a zero-shot (CLIP) model: it has no classes of its own to evaluate.",
                **self._at(node.this),
                hint="Measure it with PREDICT USING ... OPTIONS (labels=[...]) and compare predicted with your label column in a SELECT.",
            )
        options = validate_options(node.args.get("options"), EVALUATE_OPTIONS, statement="EVALUATE", sql=self._sql)
        query, _tables = self._source_query(node)
        self._check_column(node, query, "image_col", options["image_col"])
        labels = self._check_labels(node, query, options)
        if not labels:
            raise DataError("EVALUATE's query returned no rows: there is nothing to evaluate.", hint="Check the query's WHERE.")
        self._located_data_error(node, "label_col", query, lambda: check_known_labels(labels, entry.state["classes"], model, options["label_col"]))
        request = EvaluationRequest(
            model=model,
            query=query.sql(dialect=ThanoSQL),
            image_col=options["image_col"],
            label_col=options["label_col"],
            batch_size=options["batch_size"],
        )
        return Evaluate(node, request)

    # -- checks -------------------------------------------------------------------------------

    def _check_search(self, node: SearchMedia) -> None:
        if node.args["kind"] != "IMAGE" or node.args["param"].this.lower() != "images":
            raise SQLError(
                f"SEARCH {node.args['kind']} {node.args['param'].this}= is not supported.",
                **self._at(node.args["param"]),
                hint="Search by image with SEARCH IMAGE images='file.jpg' (or images=['a.jpg', 'b.jpg']).",
            )
        images_node = node.args["images"]
        target = search_target(node)
        if not target.images or not all(isinstance(image, str) and image for image in target.images):
            raise SQLError(
                "images= needs one image path or a non-empty list of image paths.",
                **self._at(images_node),
                hint="e.g. images='thanosql-dataset/mnist_data/test/923.jpg' or images=['a.jpg', 'b.jpg']",
            )
        query = node.args["query"]
        count = len(referenced_tables(query))
        if count != 1:
            raise SQLError(
                f"SEARCH ... AS SELECT must read exactly one table (the embedding table); this query reads {count}.",
                **self._at(query),
                hint="Search one table, e.g. AS SELECT * FROM mnist_test; join or filter in an outer SELECT.",
            )
        # Maybe embedded by another process since this process last looked: look again before refusing.
        if embedding_column(self._warehouse.table_generations(), target.table, target.model) is None and (
            embedding_column(self._warehouse.table_generations(fresh=True), target.table, target.model) is None
        ):
            unsearchable(node, target, self._sql, self._catalog, self._warehouse)
        prefix = embedding_column(self._warehouse.table_generations(), target.table, target.model).column
        taken = [column for column in self._warehouse.columns(target.table) if column.lower().startswith(f"{prefix}_similarity".lower())]
        if taken:
            raise SQLError(
                f"Table {target.table!r} has a column {taken[0]!r}, a name SEARCH gives its similarity columns.",
                **self._at(node.args["query"]),
                hint=f"Name the columns the SEARCH's query selects and give that one another name ({taken[0]} AS my_score).",
            )
        paths = [self._resolve(images_node, image) for image in target.images]
        missing = [(image, path) for image, path in zip(target.images, paths) if not path.is_file()]
        if missing:
            image, path = missing[0]
            raise ObjectNotFoundError(
                f"Query image {image!r} " + ("is a folder, not an image file" if path.is_dir() else "does not exist")
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "") + ".",
                **self._at(images_node),
                hint="Name one image file per query image: images='folder/a.jpg' or images=['a.jpg', 'b.jpg']; "
                f"relative paths start at the workspace directory {self._workspace.root}.",
            )

    def _check_ranking(self, query: exp.Expression) -> None:
        """A top-k plan ranks by one of its SEARCH's similarity columns (checked SEARCH: its table is embedded)."""
        top_k = find_top_k(query)
        if top_k is None:
            return
        target = search_target(top_k.search)
        prefix = embedding_column(self._warehouse.table_generations(), target.table, target.model).column
        if top_k.column.lower() != f"{prefix}_similarity{top_k.image + 1}".lower():
            raise ObjectNotFoundError(
                f"Column {top_k.column!r} is not a similarity column of this SEARCH (it makes {prefix}_similarity1...).",
                **self._at(query.args["order"]),
                hint=f"ORDER BY {prefix}_similarity1 DESC",
            )

    def _check_tables(self, query: exp.Expression, outside: tuple[type[exp.Expression], ...] = ()) -> None:
        """`query` only reads tables, and every table it reads exists (tables under `outside` nodes
        are checked by their own statement)."""
        check_read_only(query, self._sql)
        check_limits(query, self._sql)
        existing = None
        for table in referenced_tables(query, outside):
            name = object_name(table.this)
            existing = existing if existing is not None else set(self._warehouse.table_generations())
            if name not in existing:  # a view, or maybe created by another process since this process last looked
                existing = self._warehouse.relations()
            if name not in existing:
                raise _no_table(name, table, self._sql, self._warehouse)

    def _count_images(self, query: str, image_col: str) -> int:
        """The distinct image paths of the query's rows."""
        counted = f"SELECT count(DISTINCT {quote(image_col)}) AS images FROM ({query}) AS counted"
        return int(self._warehouse.query_from(counted, QUERY_DIALECT)["images"].iloc[0])

    def _source_query(self, node: exp.Expression) -> tuple[exp.Expression, list[str]]:
        query = node.args["query"]
        if any(True for _ in query.find_all(SearchMedia, ConvertUsing, PredictUsing, ListObjects)):
            raise SQLError(
                "The AS query of this statement cannot contain SEARCH, CONVERT, PREDICT or LIST.",
                **self._at(query),
                hint="Read from tables here; search in a separate statement.",
            )
        self._check_tables(query)
        return query, [object_name(table.this) for table in referenced_tables(query)]

    def _through_views(self, query: exp.Expression, tables: list[str]) -> tuple[exp.Expression, list[str]]:
        """The query with each view it reads written out as its defining query, and the tables it
        then reads: an embedding follows the tables themselves (a COPY into one brings it along)."""
        views = self._warehouse.views()
        if not views or not set(tables) & views.keys():
            return query, tables
        query = query.copy()
        for _ in range(len(views) + 1):  # a view may read views, never in a circle
            named = {object_name(node.this) for node in referenced_tables(query)} & views.keys()  # not a CTE's name
            reading = [node for node in query.find_all(exp.Table) if isinstance(node.this, exp.Identifier) and not node.args.get("db") and object_name(node.this) in named]
            if not reading:
                return query, [object_name(node.this) for node in referenced_tables(query)]
            for node in reading:
                name = object_name(node.this)
                defined = sqlglot.parse_one(views[name], read=self._warehouse.dialect)
                body = defined.expression if isinstance(defined, exp.Create) else defined
                for part in body.walk():  # positions in the view's text, not the statement's: errors point at the view's name
                    if part._meta:
                        part._meta.pop("start", None)
                        part._meta.pop("end", None)
                alias = (node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(name))).copy()
                if isinstance(defined, exp.Create) and isinstance(defined.this, exp.Schema) and not alias.columns:
                    alias.set("columns", [column.copy() for column in defined.this.expressions])  # CREATE VIEW w (x) AS ...
                node.replace(exp.Subquery(this=body, alias=alias))
        raise InternalError(f"The views read by this CONVERT read each other in a circle: {', '.join(sorted(views))}.")

    def _check_overwrite_saves(self, node: exp.Expression, statement: str, options: dict) -> None:
        """overwrite=True replaces a table the statement saves: without table_name it would do nothing."""
        if options["overwrite"]:
            raise OptionError(
                f"{statement} saves no table without table_name: overwrite=True would replace nothing.",
                **self._option_at(node, "overwrite"),
                hint=f"Add table_name='...' to save the rows as a table (overwrite=True replaces one an earlier {statement} saved), or leave overwrite out.",
            )

    def _made_by(self, table: str, model: str) -> bool:
        """Whether a CONVERT with `model` made `table` from a query over other tables: running one
        again makes the table again, with what reads it brought along."""
        entry = self._catalog.get("embedding", embedding_name(table, model))
        if entry is None:
            return False
        spec = spec_from_dict("embedding", entry.spec)
        return not spec.folder and table not in spec.tables

    def _check_embedding_column_is_free(self, node: ConvertUsing, spec: EmbeddingSpec, query: exp.Expression, tables: list[str]) -> None:
        """CONVERT writes `<model>_<algorithm>`: refuse when that name is a column of the user's, not an embedding."""
        embedded = {column for name in tables for column in self._warehouse.table_generations().get(name, {})}
        columns = self._warehouse.query_columns(query.sql(dialect=self._warehouse.dialect))
        if spec.column in columns and spec.column not in embedded:
            raise ObjectExistsError(
                f"The rows already have a column {spec.column!r} that is not {spec.model}'s embedding; CONVERT would overwrite it.",
                **self._at(node.args["query"]),
                hint=f"Rename that column in the query (SELECT ..., {spec.column} AS other_name ...) or in its table.",
            )

    def _check_column(self, node: exp.Expression, query: exp.Expression, option: str, column: str) -> None:
        try:
            columns = self._warehouse.query_columns(query.sql(dialect=self._warehouse.dialect))
        except QueryError as error:
            raise located(error, self._sql, query, self._start) from None
        require_column(column, columns, option=option, **(self._option_at(node, option) or self._at(query)))

    def _resolve(self, node: exp.Expression, path: str | None = None) -> Path:
        """The path a string literal names (or `path`, written there), with the literal's position on errors."""
        try:
            return self._workspace.resolve(node.this if path is None else path)
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

    def _at(self, node: exp.Expression | None) -> dict:
        return locate(self._sql, node)

    def _check_not_view(self, name: str, where: dict, statement: str) -> None:
        if name in self._warehouse.views():
            raise ObjectExistsError(
                f"{name!r} is a view; {statement} writes a table.",
                **where,
                hint=f"Choose another table name, or DROP VIEW {name} first.",
            )

    def _check_new_name(self, name: str, node: exp.Expression, what: str, option: str | None = None) -> None:
        """Names of objects a statement creates become asset keys, file and collection names: plain
        ones only; a table's (or view's) may not differ from another's only in case."""
        where = (self._option_at(node, option) if option else {}) or self._at(node)
        if _PLAIN_NAME.fullmatch(name) and len(name) <= MAX_NAME_LENGTH:
            if what in ("Table", "View"):
                # DuckDB takes "Quoted" and quoted for one table; the catalog and Dagster would not.
                twin = next((other for other in self._warehouse.relations() if other != name and other.lower() == name.lower()), None)
                if twin is not None:
                    raise ObjectExistsError(
                        f"{what} name {name!r} differs from existing {twin!r} only in case; the table store takes them for one.",
                        **where,
                        hint=f"Use the name {twin!r} as written, or choose another name.",
                    )
            return
        problem = f"is longer than {MAX_NAME_LENGTH} characters" if _PLAIN_NAME.fullmatch(name) else "may hold only letters, digits and underscores"
        raise SQLError(
            f"{what} name {name[:80]!r}{'...' if len(name) > 80 else ''} {problem}.",
            **where,
            hint=f"Name it like my_{what.lower()}_2: a letter or underscore first, then letters, digits or underscores, at most {MAX_NAME_LENGTH} characters.",
        )


def _is_file(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long to be a file's
        return False


def _no_table(name: str, node: exp.Expression, sql: str, warehouse: WarehouseResource) -> ObjectNotFoundError:
    return ObjectNotFoundError(
        f"Table {name!r} does not exist.",
        **locate(sql, node),
        hint=existing_hint("tables", sorted(warehouse.table_generations())) + " COPY creates tables from files (CSV, Parquet, JSON, spreadsheets) and folders.",
    )
