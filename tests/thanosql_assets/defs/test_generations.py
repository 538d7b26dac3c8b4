"""Partitioned CONVERT: partition runs, one atomic switch, failed partitions, retries, incremental refreshes."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import pytest

from resources import Settings, build_resources
from tests.workspace_state import write_row_of_a_non_image
from thanosql.errors import DataError
from thanosql_assets.defs.generations import GENERATION_TAG, partition_names, partition_of, pending_generation
from thanosql_assets.defs.materialize import MaterializationRequest, materialize
from thanosql_assets.defs.specs import EmbeddingSpec, spec_from_dict

MODEL = "my_image_search_model"
COLUMN = f"{MODEL}_simclr"
QUERY = "thanosql-dataset/mnist_data/test/923.jpg"
SEARCH = f"SELECT image_path, {COLUMN}_similarity1 FROM (SEARCH IMAGE images='{QUERY}' USING {MODEL} AS SELECT * FROM {{table}})"


def resources_of(conn) -> dict:
    return build_resources(Settings.from_env(conn.settings.home))


def embedding_spec(conn, table: str) -> EmbeddingSpec:
    return spec_from_dict("embedding", resources_of(conn)["catalog"].get("embedding", f"{table}/{MODEL}").spec)


def partition_runs(conn, table: str) -> list[dg.DagsterRun]:
    """The partition runs of `table`'s embedding, oldest first."""
    runs = conn.settings.dagster_instance().get_runs()
    return [run for run in reversed(runs) if run.tags.get(GENERATION_TAG, "").startswith(f"{table}__") and "dagster/partition" in run.tags]


def vectors_by_image(conn, table: str) -> dict[str, np.ndarray]:
    rows = conn.execute(f"SELECT image_path, {COLUMN} FROM {table}")
    return dict(zip(rows["image_path"], rows[COLUMN]))


def test_partitions_are_stable_hashes_of_the_image_path():
    keys = [f"images/{index}.jpg" for index in range(2000)]
    counts = np.bincount([partition_of(key, 4) for key in keys], minlength=4)
    assert counts.min() > 400  # spread evenly
    assert partition_of("images/7.jpg", 4) == partition_of("images/7.jpg", 4)
    assert partition_names(12) == ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11"]


def test_a_partitioned_convert_gives_exactly_the_vectors_of_an_unpartitioned_one(scratch_conn):
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='whole') AS SELECT * FROM mnist_test")
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='split', partitions=3) AS SELECT * FROM mnist_test")

    whole, split = vectors_by_image(scratch_conn, "whole"), vectors_by_image(scratch_conn, "split")
    assert len(split) == len(whole) == 200
    for image, vector in whole.items():
        np.testing.assert_array_equal(split[image], vector)
    assert scratch_conn.execute(SEARCH.format(table="split")).equals(scratch_conn.execute(SEARCH.format(table="whole")))

    runs = partition_runs(scratch_conn, "split")
    assert sorted(run.tags["dagster/partition"] for run in runs) == ["0", "1", "2"]
    assert {run.tags["thanosql/kind"] for run in runs} == {"embedding_partition"}  # what the k8s run queue limits
    assert {run.tags[GENERATION_TAG] for run in runs} == {resources_of(scratch_conn)["catalog"].get("embedding", f"split/{MODEL}").state["collection"]}
    instance = scratch_conn.settings.dagster_instance()
    key = dg.AssetKey(["embedding", "split", COLUMN])
    assert instance.get_materialized_partitions(key) == {"0", "1", "2"}
    records = instance.fetch_materializations(key, limit=10).records
    assert sorted(record.partition_key for record in records) == ["0", "1", "2"]
    assert sum(record.asset_materialization.metadata["embedded_images"].value for record in records) == 200
    assert pending_generation(scratch_conn.settings.home, embedding_spec(scratch_conn, "split")) is None  # staged files removed
    assert "partitions=3" in embedding_spec(scratch_conn, "split").statement


def test_a_failed_partition_leaves_the_old_generation_serving_and_a_retry_completes_the_switch(scratch_conn):
    home = scratch_conn.settings.home
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (partitions=4) AS SELECT * FROM mnist_test")
    before = scratch_conn.execute(SEARCH.format(table="mnist_test"))
    serving = resources_of(scratch_conn)["catalog"].get("embedding", f"mnist_test/{MODEL}").state["collection"]

    # One image no longer decodes: its partition's run fails; the others finish.
    broken = "thanosql-dataset/mnist_data/test/5099.jpg"
    shutil.copy(home / broken, home / "good.jpg")
    (home / broken).write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="5099.jpg"):
        scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (partitions=4) AS SELECT * FROM mnist_test")

    spec = embedding_spec(scratch_conn, "mnist_test")
    generation = pending_generation(home, spec)
    failed = partition_names(4)[partition_of(broken, 4)]
    assert generation.unfinished(home, spec) == [failed]
    assert resources_of(scratch_conn)["catalog"].get("embedding", f"mnist_test/{MODEL}").state["collection"] == serving
    assert scratch_conn.execute(SEARCH.format(table="mnist_test")).equals(before)
    runs = [run for run in partition_runs(scratch_conn, "mnist_test") if run.tags[GENERATION_TAG] == generation.collection]
    assert sorted(run.tags["dagster/partition"] for run in runs if run.status == dg.DagsterRunStatus.FAILURE) == [failed]

    # The switch alone refuses to switch to a generation with a partition missing.
    with pytest.raises(DataError, match=f"Partitions {failed} .* have not finished"):
        materialize(MaterializationRequest((), (spec.collection_key,)), resources_of(scratch_conn), scratch_conn.settings.dagster_instance(), "switch")

    # The retry: the same statement again runs the failed partition only, then switches.
    shutil.copy(home / "good.jpg", home / broken)
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (partitions=4) AS SELECT * FROM mnist_test")
    state = resources_of(scratch_conn)["catalog"].get("embedding", f"mnist_test/{MODEL}").state
    assert state["collection"] == generation.collection and state["retired_collection"] == serving
    retried = [run for run in partition_runs(scratch_conn, "mnist_test") if run.tags[GENERATION_TAG] == generation.collection]
    assert len(retried) == len(runs) + 1 and retried[-1].tags["dagster/partition"] == failed
    assert retried[-1].status == dg.DagsterRunStatus.SUCCESS
    np.testing.assert_allclose(
        np.stack(scratch_conn.execute(SEARCH.format(table="mnist_test"))[f"{COLUMN}_similarity1"]),
        np.stack(before[f"{COLUMN}_similarity1"]),
        atol=1e-5,
    )


def test_appended_rows_touch_only_the_partitions_they_fall_in(scratch_conn):
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (partitions=8) AS SELECT * FROM mnist_test")
    spec = embedding_spec(scratch_conn, "mnist_test")
    before = vectors_by_image(scratch_conn, "mnist_test")
    added = scratch_conn.execute("SELECT image_path FROM mnist_train LIMIT 2")["image_path"].tolist()
    scratch_conn.execute(f"INSERT INTO mnist_test (image_path, label) VALUES ('{added[0]}', 0), ('{added[1]}', 1)")
    runs_before = len(partition_runs(scratch_conn, "mnist_test"))

    # What the Dagster UI's Materialize (or automation) asks for: a refresh that keeps the vectors it has.
    materialize(
        MaterializationRequest((), (spec.asset_key, spec.collection_key)), resources_of(scratch_conn), scratch_conn.settings.dagster_instance(), "refresh"
    )

    new_runs = partition_runs(scratch_conn, "mnist_test")[runs_before:]
    touched = {partition_names(8)[partition_of(image, 8)] for image in added}
    assert {run.tags["dagster/partition"] for run in new_runs} == touched
    after = vectors_by_image(scratch_conn, "mnist_test")
    assert len(after) == 202 and all(isinstance(vector, np.ndarray) for vector in after.values())
    for image, vector in before.items():
        np.testing.assert_array_equal(after[image], vector)
    collection = scratch_conn.settings.dagster_instance().get_latest_materialization_event(spec.collection_key)
    metadata = {name: value.value for name, value in collection.asset_materialization.metadata.items()}
    assert (metadata["embedded_images"], metadata["reused_vectors"], metadata["vector_count"]) == (2, 200, 202)


def test_a_copy_into_a_partitioned_embeddings_table_embeds_its_new_images_in_its_run_or_changes_nothing(scratch_conn):
    import pandas as pd

    home = scratch_conn.settings.home
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (partitions=4) AS SELECT * FROM mnist_test")
    before = vectors_by_image(scratch_conn, "mnist_test")
    runs_before = len(partition_runs(scratch_conn, "mnist_test"))
    train = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv")
    train.iloc[:3].to_csv(home / "more.csv", index=False)

    scratch_conn.execute("COPY mnist_test OPTIONS (append=True) FROM 'more.csv'")

    after = vectors_by_image(scratch_conn, "mnist_test")
    assert len(after) == 203 and all(isinstance(vector, np.ndarray) for vector in after.values())
    for image, vector in before.items():
        np.testing.assert_array_equal(after[image], vector)
    assert len(partition_runs(scratch_conn, "mnist_test")) == runs_before  # embedded in the COPY's own run

    # A file that is no image fails the COPY before the table changes (a partition run after it could not).
    write_row_of_a_non_image(home, "bad.csv")
    with pytest.raises(DataError, match="broken.jpg"):
        scratch_conn.execute("COPY mnist_test OPTIONS (append=True) FROM 'bad.csv'")
    assert vectors_by_image(scratch_conn, "mnist_test").keys() == after.keys()


def test_scheduled_retraining_leaves_partitioned_embeddings_to_their_statement(scratch_conn):
    import dataclasses

    from thanosql_assets.defs.objects import build_definitions, catalog_specs

    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='split', partitions=2) AS SELECT * FROM mnist_test")
    resources = resources_of(scratch_conn)
    specs = [
        dataclasses.replace(spec, schedule="0 3 * * *") if spec.kind == "model" and spec.name == MODEL else spec
        for spec in catalog_specs(resources["catalog"])
    ]
    repository = build_definitions(specs, resources).get_repository_def()
    job = repository.get_job(repository.get_schedule_def(f"retrain_{MODEL}").job_name)
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert f"model/{MODEL}" in keys and f"embedding/mnist_test/{COLUMN}" in keys  # the unpartitioned embedding re-embeds
    assert not any(key.startswith(("embedding/split", "collection/split")) for key in keys)


def test_the_switch_refuses_when_the_rows_changed_since_the_plan(scratch_conn):
    from thanosql_assets.defs.materialize import begin_partitioned, run_partition
    from thanosql_assets.defs.objects import build_definitions

    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (partitions=2) AS SELECT * FROM mnist_test")
    spec, resources = embedding_spec(scratch_conn, "mnist_test"), resources_of(scratch_conn)
    serving = resources["catalog"].get("embedding", f"mnist_test/{MODEL}").state["collection"]
    generation = begin_partitioned(spec, resources, rebuild=True)
    instance, definitions = scratch_conn.settings.dagster_instance(), build_definitions([spec], resources)
    for partition in generation.unfinished(scratch_conn.settings.home, spec):
        run_partition(definitions, spec, partition, generation, instance, {}, resources)
    scratch_conn.execute("DELETE FROM mnist_test WHERE label = 3")  # while the partitions ran

    with pytest.raises(DataError, match="other images than when generation"):
        materialize(MaterializationRequest((), (spec.collection_key,)), resources, instance, "switch")
    assert resources["catalog"].get("embedding", f"mnist_test/{MODEL}").state["collection"] == serving
    assert not resources["vector_store"].exists(generation.collection)
    assert scratch_conn.execute(SEARCH.format(table="mnist_test"))[f"{COLUMN}_similarity1"].notna().all()


def test_a_switch_discards_the_staged_generation_it_superseded(scratch_conn):
    from thanosql_assets.defs.embeddings import staging_dir
    from thanosql_assets.defs.materialize import begin_partitioned

    home = scratch_conn.settings.home
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (partitions=2) AS SELECT * FROM mnist_test")
    spec, resources = embedding_spec(scratch_conn, "mnist_test"), resources_of(scratch_conn)
    begin_partitioned(spec, resources, rebuild=True)  # planned, and its partitions never run
    assert pending_generation(home, spec) is not None

    scratch_conn.execute(f"CONVERT USING {MODEL} AS SELECT * FROM mnist_test")  # unpartitioned: switched in its own run

    assert embedding_spec(scratch_conn, "mnist_test").partitions == 1
    assert pending_generation(home, spec) is None
    assert not staging_dir(home, spec).exists()
    assert scratch_conn.execute(SEARCH.format(table="mnist_test"))[f"{COLUMN}_similarity1"].notna().all()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (f"CONVERT USING {MODEL} OPTIONS (partitions=0) AS SELECT * FROM mnist_test", "partitions"),
        (f"CONVERT USING {MODEL} OPTIONS (partitions=2000) AS SELECT * FROM mnist_test", "partitions"),
    ],
)
def test_bad_partitions_are_refused(tutorial_conn, statement, message):
    from thanosql.errors import OptionError

    with pytest.raises(OptionError, match=message):
        tutorial_conn.execute(statement)
