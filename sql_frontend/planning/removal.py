"""Planning DELETE MODEL and DROP TABLE: what goes with an object, and what refuses to let it go.

An object's *dependents* are the objects a statement made from it that would need it to be
rebuilt: models trained on a table or starting from a model, embeddings and predictions read
from a table. Removing an object takes with it what is stored in it (a table's embedding
columns and their collections, a model's embedding columns), refuses while dependents remain,
and with CASCADE (DROP TABLE) removes them too: models are deleted, embeddings dropped, and
tables made by a statement keep their rows as plain data (`SavedTableSpec`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import sqlglot
from sqlglot import exp

from resources import CatalogResource, WarehouseResource
from sql_frontend.language.dialect import DeleteModel
from sql_frontend.language.names import object_name, referenced_tables
from sql_frontend.language.positions import locate
from sql_frontend.planning.plans import Remove
from thanosql.errors import DependentObjectsError, ObjectNotFoundError, SQLError
from thanosql_assets.defs.removal import RemovalRequest
from thanosql_assets.defs.specs import (
    EmbeddingSpec,
    ModelSpec,
    PredictionSpec,
    SavedTableSpec,
    UploadedModelSpec,
    spec_from_dict,
)

# Tables the workspace keeps for itself where they share a database with the user's tables.
PROTECTED_TABLES = ("thanosql_objects", "thanosql_api_tokens")
PROTECTED_PREFIX = "__thanosql"


@dataclass
class Workspace:
    """The catalog's objects, read once per statement."""

    models: dict[str, ModelSpec | UploadedModelSpec]
    embeddings: dict[str, EmbeddingSpec]
    predictions: dict[str, PredictionSpec]
    saved: dict[str, SavedTableSpec]

    @classmethod
    def read(cls, catalog: CatalogResource, warehouse: WarehouseResource) -> Workspace:
        specs = {(entry.kind, entry.name): spec_from_dict(entry.kind, entry.spec) for entry in catalog.list()}
        of = lambda kind: {name: spec for (k, name), spec in specs.items() if k == kind}  # noqa: E731
        saved = {name: spec for name, spec in of("table").items() if isinstance(spec, SavedTableSpec)}
        for name, definition in warehouse.views().items():  # views made outside ThanoSQL too
            if name not in saved:
                saved[name] = SavedTableSpec(name, "", tuple(_read_by(definition, warehouse.dialect)), view=True)
        return cls(models=of("model"), embeddings=of("embedding"), predictions=of("prediction"), saved=saved)


def _read_by(definition: str, dialect: str) -> list[str]:
    """The tables a view's definition (its CREATE VIEW, or its query) reads; [] when it cannot be parsed."""
    try:
        parsed = sqlglot.parse_one(definition, read=dialect)
    except sqlglot.errors.ParseError:
        return []
    query = parsed.expression if isinstance(parsed, exp.Create) else parsed
    return [object_name(table.this) for table in referenced_tables(query)] if query is not None else []


@dataclass
class _Removal:
    """The closure of one removal: what goes, what stays as plain data, and who objected."""

    workspace: Workspace
    cascade: bool
    models: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    embeddings: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    made_by_removed: dict[str, SavedTableSpec] = field(default_factory=dict)  # tables whose maker goes
    # Dependents found without CASCADE: (description, the table each lives in, what it needs that goes)
    objections: list[tuple[str, str | None, str]] = field(default_factory=list)
    objecting_models: list[str] = field(default_factory=list)  # the models among them

    def remove_model(self, name: str) -> None:
        if name in self.models:
            return
        self.models.append(name)
        for other, spec in self.workspace.models.items():
            if isinstance(spec, ModelSpec) and spec.start_model == name and other != name:
                self._dependent(f"model {other} (it starts from {name})", name, lambda other=other: self.remove_model(other), model=other)
        for catalog_name, embedding in self.workspace.embeddings.items():
            if embedding.model == name:
                self._remove_embedding(catalog_name, embedding)
        for table, prediction in self.workspace.predictions.items():
            if prediction.model == name:
                self._remove_prediction(table, prediction)

    def drop_table(self, name: str) -> None:
        """Drop table (or view) `name`."""
        dropped = self.views if name in self.workspace.saved and self.workspace.saved[name].view else self.tables
        if name in dropped:
            return
        dropped.append(name)
        for view, spec in self.workspace.saved.items():
            if spec.view and name in spec.tables and view != name:
                self._dependent(f"view {view} (it reads {name})", name, lambda view=view: self.drop_table(view), table=view)
        for model, spec in self.workspace.models.items():
            if isinstance(spec, ModelSpec) and name in spec.tables:
                self._dependent(f"model {model} (trained on {name})", name, lambda model=model: self.remove_model(model), model=model)
        for catalog_name, embedding in self.workspace.embeddings.items():
            if embedding.table == name:
                self._remove_embedding(catalog_name, embedding)
            elif name in embedding.tables:
                self._dependent(
                    f"column {embedding.column} of table {embedding.table} (CONVERT read {name})",
                    name,
                    lambda catalog_name=catalog_name, embedding=embedding: self._remove_embedding(catalog_name, embedding),
                    table=embedding.table,
                )
        for table, prediction in self.workspace.predictions.items():
            if table == name:
                self._remove_prediction(table, prediction)
            elif name in prediction.tables:
                self._dependent(
                    f"table {table} (PREDICT read {name})",
                    name,
                    lambda table=table, prediction=prediction: self._remove_prediction(table, prediction),
                    table=table,
                )

    def _dependent(self, description: str, needs: str, remove: Callable[[], None], model: str | None = None, table: str | None = None) -> None:
        if self.cascade:
            remove()
        elif description not in [known for known, _, _ in self.objections]:
            self.objections.append((description, table, needs))
            if model is not None:
                self.objecting_models.append(model)

    def remaining_objections(self) -> list[tuple[str, str]]:
        """The dependents that stay, and what each needs: those in a table or view the statement drops anyway go with it."""
        gone = set(self.tables) | set(self.views)
        return [(description, needs) for description, table, needs in self.objections if table is None or table not in gone]

    def _remove_embedding(self, catalog_name: str, embedding: EmbeddingSpec) -> None:
        if catalog_name in self.embeddings:
            return
        self.embeddings.append(catalog_name)
        if embedding.folder or embedding.table not in embedding.tables:  # the statement made the table
            self.made_by_removed[embedding.table] = SavedTableSpec(embedding.table, embedding.statement, embedding.tables)

    def _remove_prediction(self, table: str, prediction: PredictionSpec) -> None:
        if table in self.predictions:
            return
        self.predictions.append(table)
        self.made_by_removed[table] = SavedTableSpec(table, prediction.statement, prediction.tables)

    def request(self) -> RemovalRequest:
        """The request, with the lineage of every table that stays pointing at tables that stay."""
        gone = set(self.tables) | set(self.views)
        saved = {name: spec for name, spec in self.made_by_removed.items() if name not in gone}
        saved.update({name: spec for name, spec in self.workspace.saved.items() if name not in gone and set(spec.tables) & gone})
        saved = {name: replace(spec, tables=tuple(table for table in spec.tables if table not in gone)) for name, spec in saved.items()}
        return RemovalRequest(
            models=tuple(self.models),
            tables=tuple(self.tables),
            views=tuple(self.views),
            embeddings=tuple(self.embeddings),
            predictions=tuple(self.predictions),
            saved=tuple(saved.values()),
        )


def check_not_protected(name: str, node: exp.Expression, sql: str, hint: str) -> None:
    """Refuse a table the workspace keeps for itself (its catalog, a staging table), at `node`."""
    if name in PROTECTED_TABLES or name.startswith(PROTECTED_PREFIX):
        raise SQLError(f"Table {name!r} belongs to the workspace itself (its catalog or staging), not to its data.", **locate(sql, node), hint=hint)


def dependents_of(workspace: Workspace, table: str) -> list[str]:
    """What a change of `table`'s shape would break: the objects made from it, and its embedding columns."""
    removal = _Removal(workspace, cascade=False)
    removal.drop_table(table)
    columns = [f"its embedding column {workspace.embeddings[name].column}" for name in removal.embeddings]
    return [description for description, _, _ in removal.objections] + columns


def plan_delete_model(node: DeleteModel, sql: str, catalog: CatalogResource, warehouse: WarehouseResource) -> Remove:
    name = object_name(node.this)
    workspace = Workspace.read(catalog, warehouse)
    if name not in workspace.models:
        if node.args.get("exists"):
            return Remove(None, announce=f"Model {name!r} does not exist; nothing to delete.")
        raise ObjectNotFoundError(
            f"Model {name!r} does not exist.",
            **locate(sql, node.this),
            hint=existing_hint("models", sorted(workspace.models)),
        )
    removal = _Removal(workspace, cascade=False)
    removal.remove_model(name)
    if removal.objections:
        raise DependentObjectsError(
            f"Model {name!r} is needed by {_listed([description for description, _, _ in removal.objections])}.",
            **locate(sql, node.this),
            hint="Delete those models first: "
            + "; ".join(f"DELETE MODEL {model}" for model in removal.objecting_models)
            + ". A model that starts from another retrains from it.",
        )
    return Remove(removal.request(), announce=f"Deleting model {name}...")


def plan_drop_table(node: exp.Drop, sql: str, catalog: CatalogResource, warehouse: WarehouseResource) -> Remove:
    tables = list(node.args.get("tables") or [node.this])
    kind = (node.args.get("kind") or "").upper()
    if kind not in ("TABLE", "VIEW"):
        raise SQLError(
            f"DROP {kind} statements are not supported.".replace("  ", " "),
            **locate(sql, node),
            hint="DROP TABLE removes a table, DROP VIEW a view; DELETE MODEL removes a model.",
        )
    existing = warehouse.table_generations(fresh=True) if kind == "TABLE" else warehouse.views()
    other = warehouse.views() if kind == "TABLE" else warehouse.table_generations(fresh=True)
    what = kind.lower()
    workspace = Workspace.read(catalog, warehouse)
    removal = _Removal(workspace, cascade=bool(node.args.get("cascade")))
    for table in tables:
        name = object_name(table.this)
        if table.args.get("db") or table.args.get("catalog"):
            raise SQLError(
                "Tables live in the workspace's own schema: name them without a schema.",
                **locate(sql, table),
                hint=f"DROP {kind} {table.name}",
            )
        check_not_protected(name, table, sql, "DROP TABLE removes tables that COPY, CONVERT, PREDICT or CREATE TABLE made.")
        if name in other:
            raise SQLError(
                f"{name!r} is a {'view' if kind == 'TABLE' else 'table'}, not a {what}.",
                **locate(sql, table),
                hint=f"DROP {'VIEW' if kind == 'TABLE' else 'TABLE'} {name}",
            )
        if name not in existing:
            if node.args.get("exists"):
                continue
            raise ObjectNotFoundError(
                f"{what.capitalize()} {name!r} does not exist.",
                **locate(sql, table),
                hint=existing_hint(f"{what}s", sorted(existing)) + f" DROP {kind} IF EXISTS does nothing when it does not.",
            )
        removal.drop_table(name)
    objections = removal.remaining_objections()
    if objections:
        needed = [needs for _, needs in objections]
        first = next((table for table in tables if object_name(table.this) == needed[0]), tables[0])  # the caret: where the first is needed
        name = object_name(first.this)
        descriptions = [description for description, _ in objections]
        raise DependentObjectsError(
            f"{what.capitalize()} {name!r} is needed by {_listed(descriptions)}."
            if set(needed) == {name}
            else f"Those {what}s are needed by {_listed(descriptions)}.",
            **locate(sql, first),
            hint=f"Add CASCADE to remove them too (models are deleted, embedding columns dropped, tables made from {name} keep "
            "their rows as plain data)"
            + (f", or delete the models first: {'; '.join(f'DELETE MODEL {model}' for model in removal.objecting_models)}." if removal.objecting_models else "."),
        )
    if not removal.tables and not removal.views:
        return Remove(None, announce=f"{what.capitalize()} {object_name(tables[0].this)!r} does not exist; nothing to drop.")
    return Remove(removal.request(), announce=f"Dropping {what} {', '.join(object_name(table.this) for table in tables)}...")


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def existing_hint(what: str, names: list[str]) -> str:
    """The start of a hint that lists the objects of a kind there are."""
    return f"Existing {what}: {', '.join(names)}." if names else f"There are no {what} yet."
