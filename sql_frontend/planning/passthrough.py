"""Planning the PostgreSQL statements ThanoSQL passes through to the table store: CREATE TABLE
[AS SELECT], CREATE VIEW, INSERT, UPDATE, DELETE and ALTER TABLE (RENAME, RENAME COLUMN, ADD and
DROP COLUMN).

Each changes one table (or view) of the user's, and is checked before it runs like any
statement: the tables it reads exist, its queries only read (no file, setting or other
statement hides in them), and it leaves alone what ThanoSQL keeps consistent itself: the
catalog's own tables, the embedding columns (CONVERT sets them from the collections), the
tables whose rows another statement rewrites (CONVERT's output, a folder's table), and, for
ALTER TABLE, the tables other objects were made from.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from resources import CatalogResource, WarehouseResource
from sql_frontend.language.dialect import NESTED_STATEMENTS, ConvertUsing, ListObjects, PredictUsing, SearchMedia
from sql_frontend.language.names import object_name, referenced_tables
from sql_frontend.language.positions import locate
from sql_frontend.planning.plans import ChangeTable
from sql_frontend.planning.read_only import check_read_only
from sql_frontend.planning.removal import Workspace, check_not_protected, dependents_of, existing_hint
from thanosql.errors import DependentObjectsError, ObjectExistsError, ObjectNotFoundError, SQLError
from thanosql_assets.defs.specs import SavedTableSpec, spec_from_dict
from thanosql_assets.defs.table_changes import TableChange

PASSTHROUGH_TYPES = (exp.Insert, exp.Update, exp.Delete, exp.Alter, exp.Create)
_VERBS = {exp.Insert: "inserted", exp.Update: "updated", exp.Delete: "deleted"}
_PROTECTED_HINT = "Statements change and read the tables that COPY, CONVERT, PREDICT or CREATE TABLE made."
_ALTER_ACTIONS = (exp.AlterRename, exp.RenameColumn, exp.ColumnDef, exp.Drop)


class PassthroughPlanner:
    """Plans one passthrough statement (`check_tables` and `check_new_name` are the planner's checks)."""

    def __init__(
        self,
        sql: str,
        text: str,
        catalog: CatalogResource,
        warehouse: WarehouseResource,
        check_tables: Callable[[exp.Expression], None],
        check_new_name: Callable[[str, exp.Expression, str], None],
    ):
        self._sql, self._text = sql, text
        self._catalog, self._warehouse = catalog, warehouse
        self._check_tables, self._check_new_name = check_tables, check_new_name

    def plan(self, node: exp.Expression) -> ChangeTable:
        self._check_reads(node)
        if isinstance(node, exp.Create):
            return self._create(node)
        table = _target(node)
        name = self._user_table(table)
        if isinstance(node, exp.Alter):
            return self._alter(node, table, name)
        self._check_rows_are_the_users(name, table)
        self._check_embedding_columns_untouched(node, name)
        node = self._with_moved_images_unembedded(node, name)
        spec, deletions = self._made_plain(name)
        change = TableChange(self._store_sql(node), name, _VERBS[type(node)], spec=spec, deletions=deletions)
        return ChangeTable(change)

    # -- statements ---------------------------------------------------------------------------

    def _create(self, node: exp.Create) -> ChangeTable:
        kind = (node.args.get("kind") or "").upper()
        if kind not in ("TABLE", "VIEW"):
            raise SQLError(f"CREATE {kind} statements are not supported.", **locate(self._sql, node), hint="CREATE TABLE and CREATE VIEW are.")
        if any(isinstance(prop, exp.TemporaryProperty) for prop in node.find_all(exp.TemporaryProperty)):
            raise SQLError(
                "A temporary table would vanish with the statement's own connection.",
                **locate(self._sql, node),
                hint="CREATE TABLE without TEMPORARY; DROP TABLE it when done.",
            )
        table = node.this.this if isinstance(node.this, exp.Schema) else node.this
        name = self._user_table(table)
        self._check_new_name(name, table, kind.capitalize())
        tables, views = self._warehouse.table_generations(fresh=True), self._warehouse.views()
        if name in tables or name in views:
            if node.args.get("exists"):
                return ChangeTable(None, announce=f"{'View' if name in views else 'Table'} {name!r} already exists; nothing created.")
            replaceable = kind == "VIEW" and name in views and node.args.get("replace")
            if not replaceable:
                raise ObjectExistsError(
                    f"{'View' if name in views else 'Table'} {name!r} already exists.",
                    **locate(self._sql, table),
                    hint=f"Choose another name, or DROP {'VIEW' if name in views else 'TABLE'} {name} first.",
                )
        query = node.args.get("expression")
        if kind == "VIEW" and not isinstance(query, exp.Query):
            raise SQLError("CREATE VIEW needs AS SELECT ...", **locate(self._sql, node), hint="CREATE VIEW v AS SELECT ... FROM table")
        read = [object_name(t.this) for t in referenced_tables(query)] if query is not None else []
        spec = SavedTableSpec(name, self._text, tuple(dict.fromkeys(read)), view=kind == "VIEW")
        return ChangeTable(TableChange(self._store_sql(node), name, "created", spec=spec))

    def _alter(self, node: exp.Alter, table: exp.Table, name: str) -> ChangeTable:
        if name not in self._warehouse.relations():
            if node.args.get("exists"):
                return ChangeTable(None, announce=f"Table {name!r} does not exist; nothing altered.")
            raise self._missing(name, table)
        if (node.args.get("kind") or "").upper() != "TABLE" or name in self._warehouse.views():
            raise SQLError("Only ALTER TABLE passes through.", **locate(self._sql, node), hint="Alter a table; CREATE OR REPLACE VIEW changes a view.")
        actions = node.args.get("actions") or []
        for action in actions:
            if not isinstance(action, _ALTER_ACTIONS) or (isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() != "COLUMN"):
                raise SQLError(
                    f"ALTER TABLE ... {action.sql(dialect='postgres').split(' ')[0].upper()} is not supported.",
                    **locate(self._sql, action),
                    hint="ALTER TABLE passes through RENAME TO, RENAME COLUMN, ADD COLUMN and DROP COLUMN.",
                )
        needed_by = dependents_of(Workspace.read(self._catalog, self._warehouse), name)
        if needed_by:
            raise DependentObjectsError(
                f"Table {name!r} is needed by {', '.join(needed_by)}; altering it would break them.",
                **locate(self._sql, table),
                hint=f"Make a table of your own to alter: CREATE TABLE my_{name} AS SELECT * FROM {name}.",
            )
        renames = [action for action in actions if isinstance(action, exp.AlterRename)]
        spec, deletions = self._made_plain(name)
        if not renames:
            return ChangeTable(TableChange(self._store_sql(node), name, "altered", spec=spec, deletions=deletions))
        new_table = renames[0].this
        new_name = object_name(new_table.this)
        self._check_new_name(new_name, new_table, "Table")
        check_not_protected(new_name, new_table, self._sql, _PROTECTED_HINT)
        if new_name in self._warehouse.relations():
            raise ObjectExistsError(f"Table {new_name!r} already exists.", **locate(self._sql, new_table), hint="Rename it to a name not in use.")
        current = spec or self._saved(name)
        renamed = SavedTableSpec(new_name, current.statement, current.tables)
        deletions = tuple(dict.fromkeys((*deletions, ("table", name))))
        return ChangeTable(TableChange(self._store_sql(node), new_name, "renamed", spec=renamed, deletions=deletions, renamed_from=name))

    # -- checks -------------------------------------------------------------------------------

    def _check_reads(self, node: exp.Expression) -> None:
        """Its queries read existing tables and only read; ThanoSQL's own statements stay out of it."""
        nested = next(iter(node.find_all(SearchMedia, ConvertUsing, PredictUsing, ListObjects)), None)
        if nested is not None:
            statement = NESTED_STATEMENTS[type(nested)]
            raise SQLError(
                f"{statement} cannot stand inside {node.key.upper()}.",
                **(locate(self._sql, nested) or locate(self._sql, node)),
                hint="LIST's rows are read, not saved: run LIST on its own, or SELECT from it in a query."
                if statement == "LIST"
                else "Save SEARCH or PREDICT rows with their OPTIONS (table_name=...), then use that table.",
            )
        if node.args.get("returning"):
            raise SQLError(
                "RETURNING is not supported: the statement returns no rows.",
                **locate(self._sql, node.args["returning"]),
                hint="Leave RETURNING out and SELECT the rows afterwards.",
            )
        for table in node.find_all(exp.Table):
            # Only the workspace's own tables, by their plain names: no other schema (pg_catalog), no catalog table.
            if isinstance(table.this, exp.Identifier) and (table.args.get("db") or table.args.get("catalog")):
                raise SQLError(
                    "Tables live in the workspace's own schema: name them without a schema.",
                    **locate(self._sql, table),
                    hint=f"Write {table.name} instead of {table.sql(dialect='postgres')}.",
                )
            if isinstance(table.this, exp.Identifier):
                check_not_protected(object_name(table.this), table, self._sql, _PROTECTED_HINT)
        properties = node.args.get("properties")
        if isinstance(node, exp.Create) and properties is not None and properties.expressions:
            written = properties.expressions[0].sql(dialect="postgres")
            raise SQLError(
                f"CREATE {node.args.get('kind') or ''} ... {written} is not supported.".replace("  ", " "),
                **locate(self._sql, properties.expressions[0]),
                hint="CREATE TABLE t AS SELECT ..., CREATE TABLE t (columns) and CREATE [OR REPLACE] VIEW v AS SELECT ... pass through.",
            )
        target = node.this
        for key, value in node.args.items():
            if key in ("this", "actions", "properties"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, exp.Expression):
                    self._check_tables(child)
        # Column definitions (CREATE TABLE t (...), ALTER TABLE ... ADD COLUMN): defaults and checks must only compute.
        columns = list(target.expressions) if isinstance(target, exp.Schema) else []
        columns += [action for action in node.args.get("actions") or [] if isinstance(action, exp.ColumnDef)]
        for column in columns:
            check_read_only(column, self._sql)

    def _user_table(self, table: exp.Expression) -> str:
        if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
            raise SQLError("Expected a table name.", **locate(self._sql, table), hint="Name a table of the workspace.")
        # Schema-qualified and the workspace's own tables were refused with every table the statement names (`_check_reads`).
        return object_name(table.this)

    def _check_rows_are_the_users(self, name: str, table: exp.Table) -> None:
        if name in self._warehouse.views():
            raise SQLError(
                f"{name!r} is a view: its rows come from its query.",
                **locate(self._sql, table),
                hint="Change the tables it reads, or CREATE OR REPLACE VIEW with another query.",
            )
        if name not in self._warehouse.table_generations(fresh=True):
            raise self._missing(name, table)
        for entry in self._catalog.list("embedding"):
            embedding = spec_from_dict("embedding", entry.spec)
            if embedding.table == name and (embedding.folder or name not in embedding.tables):
                source = f"the image files under '{embedding.folder}'" if embedding.folder else f"CONVERT's query over {', '.join(embedding.tables)}"
                raise SQLError(
                    f"The rows of table {name!r} are {source}: they are rewritten from it whenever it changes.",
                    **locate(self._sql, table),
                    hint=f"Change the source instead, or make a table of your own: CREATE TABLE my_{name} AS SELECT * FROM {name}.",
                )
        classified = self._catalog.get("prediction", name)
        folder = classified and spec_from_dict("prediction", classified.spec).folder
        if folder:  # a classifier's table of a folder (CREATE TABLE ... USING classifier FROM 'folder')
            raise SQLError(
                f"The rows of table {name!r} are the image files under '{folder}': they are rewritten from it whenever it changes.",
                **locate(self._sql, table),
                hint=f"Change the folder instead, or make a table of your own: CREATE TABLE my_{name} AS SELECT * FROM {name}.",
            )

    def _missing(self, name: str, table: exp.Expression) -> ObjectNotFoundError:
        return ObjectNotFoundError(
            f"Table {name!r} does not exist.",
            **locate(self._sql, table),
            hint=existing_hint("tables", sorted(self._warehouse.table_generations())) + " CREATE TABLE makes one; COPY makes one from a file.",
        )

    def _check_embedding_columns_untouched(self, node: exp.Expression, name: str) -> None:
        embedding_columns = set(self._warehouse.table_generations().get(name, {}))
        if isinstance(node, exp.Insert) and not isinstance(node.this, exp.Schema) and embedding_columns:
            others = [column for column in self._warehouse.columns(name) if column not in embedding_columns]
            raise SQLError(
                f"INSERT INTO {name} without a list of columns writes every column, the embedding columns "
                f"{', '.join(sorted(embedding_columns))} too, which CONVERT keeps equal to their Qdrant collections.",
                **locate(self._sql, node.this),
                hint=f"Name the columns and leave the embedding columns out: INSERT INTO {name} ({', '.join(others)}) ...; "
                "new rows are embedded the next time the embedding asset materializes (or CONVERT again).",
            )
        if isinstance(node, exp.Update):
            written = _assigned(node)
        elif isinstance(node, exp.Insert) and isinstance(node.this, exp.Schema):
            written = list(node.this.expressions)
        else:
            return
        for column in written:
            if isinstance(column, (exp.Column, exp.Identifier)) and object_name(column if isinstance(column, exp.Identifier) else column.this) in embedding_columns:
                raise SQLError(
                    f"Column {column.name!r} holds embeddings that CONVERT keeps equal to its Qdrant collection.",
                    **locate(self._sql, column),
                    hint="Leave it out: new rows are embedded the next time the embedding asset materializes (or CONVERT again).",
                )

    def _with_moved_images_unembedded(self, node: exp.Expression, name: str) -> exp.Expression:
        """An UPDATE that sets an image column also sets the embedding columns of that image column to
        NULL, on the same rows: a row's embedding is its image's (SEARCH ranks by it and by the
        collection alike) until the embedding refreshes and embeds the new image."""
        if not isinstance(node, exp.Update):
            return node
        assigned = {object_name(column if isinstance(column, exp.Identifier) else column.this) for column in _assigned(node)}
        stale = [column for column, generation in self._warehouse.table_generations().get(name, {}).items() if generation.image_col in assigned]
        if not stale:
            return node
        cleared = node.copy()
        cleared.set("expressions", [*cleared.expressions, *(exp.EQ(this=exp.column(column), expression=exp.null()) for column in stale)])
        return cleared

    # -- catalog ------------------------------------------------------------------------------

    def _saved(self, name: str) -> SavedTableSpec:
        entry = self._catalog.get("table", name)
        spec = spec_from_dict("table", entry.spec) if entry else None
        return spec if isinstance(spec, SavedTableSpec) else SavedTableSpec(name, "")

    def _made_plain(self, name: str) -> tuple[SavedTableSpec | None, tuple[tuple[str, str], ...]]:
        """The spec table `name` gets once changed by SQL (None: it is plain data already), and the
        catalog entries that go: a changed table no longer equals what its statement makes, so
        nothing may rebuild it over the change."""
        table = self._catalog.get("table", name)
        prediction = self._catalog.get("prediction", name)
        if prediction is not None:
            made_by = spec_from_dict("prediction", prediction.spec)
            return SavedTableSpec(name, made_by.statement, made_by.tables), (("prediction", name),)
        if table is None:  # made outside ThanoSQL: it becomes an asset now
            return SavedTableSpec(name, ""), ()
        spec = spec_from_dict("table", table.spec)
        return (None, ()) if isinstance(spec, SavedTableSpec) else (SavedTableSpec(name, spec.statement), ())

    def _store_sql(self, node: exp.Expression) -> str:
        """The statement for the store, names folded as PostgreSQL folds them and quoted: DuckDB
        keeps an unquoted name's case, so `CREATE TABLE Eights` would otherwise make "Eights"."""
        folded = node.copy().transform(lambda n: exp.to_identifier(object_name(n), quoted=True) if isinstance(n, exp.Identifier) else n)
        return folded.sql(dialect=self._warehouse.dialect)


def _assigned(node: exp.Update) -> list[exp.Expression]:
    """The columns an UPDATE sets: `SET a = 1` and `SET (a, b) = (1, 2)` alike."""
    targets = [assignment.this.unnest() for assignment in node.expressions if isinstance(assignment, exp.EQ)]  # (a) is a
    flat = [column for target in targets for column in (target.expressions if isinstance(target, exp.Tuple) else [target])]
    return [column for column in flat if isinstance(column, exp.Identifier) or (isinstance(column, exp.Column) and isinstance(column.this, exp.Identifier))]


def _target(node: exp.Expression) -> exp.Expression:
    target = node.this
    return target.this if isinstance(target, exp.Schema) else target
