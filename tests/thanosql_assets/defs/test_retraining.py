"""Scheduled retraining: BUILD MODEL ... OPTIONS (schedule='cron') gives the code location a
schedule that retrains the model and re-embeds downstream; a retrained version serves only if
its held-out retrieval quality does not drop."""

from __future__ import annotations

import dagster as dg
import pytest

from resources import Settings, build_resources
from thanosql.errors import OptionError
from thanosql_assets.defs.objects import build_definitions, catalog_specs

MODEL = "nightly_model"


def tick(conn, model: str = MODEL) -> dg.ExecuteInProcessResult:
    """One tick of the model's schedule, evaluated and run as the daemon would, without waiting for cron."""
    resources = build_resources(Settings.from_env(conn.settings.home))
    definitions = build_definitions(catalog_specs(resources["catalog"]), resources)
    schedule = definitions.get_schedule_def(f"retrain_{model}")
    instance = conn.settings.dagster_instance()
    with dg.build_schedule_context(instance=instance) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    job = definitions.resolve_job_def(schedule.job_name)
    return job.execute_in_process(instance=instance, tags={**request.tags, "dagster/schedule_name": schedule.name})


def serving_version(conn, model: str = MODEL) -> str:
    client = build_resources(Settings.from_env(conn.settings.home))["model_registry"].client()
    return str(client.get_model_version_by_alias(model, "serving").version)


def embedding_state(conn) -> dict:
    return build_resources(Settings.from_env(conn.settings.home))["catalog"].get("embedding", f"mnist_test/{MODEL}").state


def model_metadata(result: dg.ExecuteInProcessResult, model: str = MODEL) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["model", model]))
    return event.step_materialization_data.materialization.metadata


def test_a_schedule_tick_retrains_and_re_embeds_and_gates_on_quality(scratch_conn):
    scratch_conn.execute(
        f"BUILD MODEL {MODEL} USING SimCLR OPTIONS (max_epochs=2, schedule='0 3 * * *') AS SELECT * FROM mnist_train"
    )
    scratch_conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test")
    first = embedding_state(scratch_conn)
    assert (serving_version(scratch_conn), first["model_version"]) == ("1", "1")

    result = tick(scratch_conn)
    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    # The table too: re-embedding rewrites its embedding column.
    assert materialized == {f"model/{MODEL}", "table/mnist_test", f"embedding/mnist_test/{MODEL}_simclr", f"collection/mnist_test/{MODEL}_simclr_vectors"}
    second = embedding_state(scratch_conn)
    # Same data and seed: the same quality, so the new version serves, and the table is re-embedded with it.
    assert serving_version(scratch_conn) == "2" and second["model_version"] == "2"
    assert second["collection"] != first["collection"]

    # Labels changed since: the serving version is measured again on the new held-out rows, not by
    # the figure it got on the old ones, which the new version could not reach (the same images, same seed).
    scratch_conn.execute("UPDATE mnist_train SET label = (label * 7 + 3) % 10 WHERE filename < '5'")
    assert model_metadata(tick(scratch_conn))["promoted"].value is True and serving_version(scratch_conn) == "3"

    # A retraining that learns nothing (a learning rate of almost 0) does worse on the same rows: version 3 keeps serving.
    catalog = build_resources(Settings.from_env(scratch_conn.settings.home))["catalog"]
    entry = catalog.get("model", MODEL)
    catalog.put("model", MODEL, {**entry.spec, "options": {**entry.spec["options"], "learning_rate": 1e-7}}, entry.state)
    metadata = model_metadata(tick(scratch_conn))
    assert metadata["promoted"].value is False and metadata["candidate_version"].value == 4
    assert "on the same held-out rows" in metadata["reason"].value
    assert serving_version(scratch_conn) == "3" and embedding_state(scratch_conn)["model_version"] == "3"
    client = build_resources(Settings.from_env(scratch_conn.settings.home))["model_registry"].client()
    assert client.get_model_version(MODEL, "4").tags["thanosql.promoted"] == "false"


def test_a_classifier_retrained_on_changed_labels_is_compared_on_the_same_rows(scratch_conn):
    scratch_conn.execute("BUILD MODEL nightly_digits USING ResNet18 OPTIONS (max_epochs=1, schedule='0 3 * * *') AS SELECT * FROM mnist_train")
    scratch_conn.execute("UPDATE mnist_train SET label = (label * 7 + 3) % 10 WHERE filename < '5'")
    # The new version learnt the new labels; the serving one, measured again on the same rows, knows the old ones.
    metadata = model_metadata(tick(scratch_conn, "nightly_digits"), "nightly_digits")
    assert metadata["promoted"].value is True and serving_version(scratch_conn, "nightly_digits") == "2"
    catalog = build_resources(Settings.from_env(scratch_conn.settings.home))["catalog"]
    entry = catalog.get("model", "nightly_digits")
    catalog.put("model", "nightly_digits", {**entry.spec, "options": {**entry.spec["options"], "learning_rate": 1e-7}}, entry.state)
    metadata = model_metadata(tick(scratch_conn, "nightly_digits"), "nightly_digits")
    assert metadata["promoted"].value is False and "on the same held-out rows" in metadata["reason"].value


def test_a_bad_cron_string_is_refused(tutorial_conn):
    with pytest.raises(OptionError, match="not a cron string") as caught:
        tutorial_conn.execute("BUILD MODEL m USING SimCLR OPTIONS (schedule='every night') AS SELECT * FROM mnist_train")
    assert caught.value.line == 1 and caught.value.col == 46
