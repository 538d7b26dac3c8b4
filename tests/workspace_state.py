"""A snapshot of everything a statement could change in a workspace, to prove errors change nothing."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import dagster as dg

from resources import Settings, build_resources


@functools.cache
def _stores(home: Path) -> tuple[dict, dg.DagsterInstance]:
    """The workspace's stores, opened once per test session (every read below is fresh)."""
    settings = Settings.from_env(home)
    return build_resources(settings), settings.dagster_instance()


def snapshot(home: Path) -> dict:
    resources, instance = _stores(Path(home))
    warehouse = resources["warehouse"]
    tables = {}
    for name in warehouse.tables():
        rows = warehouse.query(f'SELECT * FROM "{name}"')
        tables[name] = (list(rows.columns), len(rows), hashlib.md5(rows.to_csv().encode()).hexdigest())
    tables.update({name: ("view", definition) for name, definition in warehouse.views().items()})
    client = resources["model_registry"].client()
    versions = sorted((v.name, str(v.version)) for v in client.search_model_versions())
    aliases = {m.name: dict(m.aliases) for m in client.search_registered_models()}
    materializations = {
        key.to_user_string(): len(instance.fetch_materializations(key, limit=1000).records)
        for key in instance.get_asset_keys()
    }
    return {
        "tables": tables,
        "catalog": [(e.kind, e.name, e.spec, e.state) for e in resources["catalog"].list()],
        "model_versions": versions,
        "aliases": aliases,
        "collections": sorted(p.name for p in (home / "vectors").iterdir()),
        "files": sorted(str(p.relative_to(home)) for p in (home / "thanosql-dataset").rglob("*")),
        "materializations": materializations,
    }


def write_row_of_a_non_image(home: Path, name: str) -> None:
    """A CSV of mnist_test's columns whose one row names broken.jpg, a file that is not an image."""
    import pandas as pd

    (home / "broken.jpg").write_bytes(b"not a jpeg")
    pd.DataFrame({"image_path": ["broken.jpg"], "filename": ["broken.jpg"], "label": [0]}).to_csv(home / name, index=False)


def asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey.from_user_string(name)
