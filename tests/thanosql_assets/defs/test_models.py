"""BUILD MODEL's MLflow record: params, per-epoch metrics, pictures, held-out quality, and a
registered model that reloads to give the very embeddings CONVERT stored."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from resources import Settings, build_resources
from sql_frontend.planning.options import build_model_options
from thanosql_assets.models.algorithms import ALGORITHMS


@pytest.fixture(scope="module")
def tutorial(tutorial_home):
    resources = build_resources(Settings.from_env(tutorial_home))
    state = resources["catalog"].get("model", "my_image_search_model").state
    client = resources["model_registry"].client()
    return resources, state, client, client.get_run(state["run_id"])


def test_every_option_is_a_param(tutorial):
    *_, run = tutorial
    for option in build_model_options(ALGORITHMS["simclr"]):
        if option.name != "overwrite":
            assert option.name in run.data.params, option.name
    assert run.data.params["max_epochs"] == "1" and run.data.params["resolved.backbone"] == "small_cnn"


def test_loss_is_logged_per_epoch(tutorial):
    _, _, client, run = tutorial
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0]  # max_epochs=1 in the tutorial
    assert np.isfinite(history[0].value)


def test_pictures_are_logged(tutorial):
    _, _, client, run = tutorial
    names = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"augmentations.png", "loss_curve.png"} <= names


def test_quality_on_held_out_labelled_rows_is_measured(tutorial, tutorial_home):
    import dagster as dg

    _, state, _, run = tutorial
    metrics = run.data.metrics
    assert metrics["holdout_images"] == 100 and metrics["train_images"] == 900  # 10% of 1,000 held out
    for name in ("holdout_p_at_4", "holdout_p_at_10", "raw_pixels_p_at_4"):
        assert 0 <= metrics[name] <= 1
    instance = Settings.from_env(tutorial_home).dagster_instance()
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey(["model", "my_image_search_model"])
    ).asset_materialization.metadata
    assert metadata["quality/holdout_p_at_4"].value == pytest.approx(metrics["holdout_p_at_4"], abs=1e-4)
    assert state["holdout_p_at_4"] == pytest.approx(metrics["holdout_p_at_4"])


def test_registered_model_reloads_in_a_new_process_with_identical_embeddings(tutorial, tutorial_home):
    resources, _, _, _ = tutorial
    stored = resources["warehouse"].query(
        "SELECT image_path, my_image_search_model_simclr AS v FROM mnist_test ORDER BY image_path LIMIT 16"
    )
    code = f"""
import sys, numpy as np, mlflow, mlflow.pytorch
from pathlib import Path
from thanosql_assets.models.images import load_images
mlflow.set_tracking_uri({resources["model_registry"].tracking_uri!r})
model = mlflow.pytorch.load_model("models:/my_image_search_model@serving", map_location="cpu")
paths = [Path({str(tutorial_home)!r}) / p for p in sys.stdin.read().split()]
np.save(sys.stdout.buffer, model.embed(load_images(paths, model.geometry)))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], input="\n".join(stored["image_path"]).encode(), capture_output=True, check=True
    )
    import io

    from thanosql_assets.models.vectors import l2_normalize

    reloaded = np.load(io.BytesIO(result.stdout))
    # Tables store the model's embeddings L2-normalized (cosine similarity is then a dot product).
    np.testing.assert_array_equal(l2_normalize(reloaded), np.stack(stored["v"].to_numpy()))


def latest_model_metadata(home, name: str) -> dict:
    import dagster as dg

    instance = Settings.from_env(home).dagster_instance()
    return instance.get_latest_materialization_event(dg.AssetKey(["model", name])).asset_materialization.metadata


def test_the_model_asset_is_described_by_its_statement_with_options(tutorial):
    import dagster as dg

    from thanosql_assets.defs.objects import build_definitions, catalog_specs

    resources, *_ = tutorial
    key = dg.AssetKey(["model", "my_image_search_model"])
    definitions = build_definitions(catalog_specs(resources["catalog"]), resources)
    assert definitions.resolve_assets_def(key).descriptions_by_key[key] == (
        "BUILD MODEL my_image_search_model USING SimCLR OPTIONS (image_col='image_path', max_epochs=1) AS SELECT * FROM mnist_train"
    )


def test_the_model_version_has_a_description_and_a_signature(tutorial):
    import mlflow

    resources, state, client, _ = tutorial
    description = client.get_model_version("my_image_search_model", state["version"]).description
    assert "BUILD MODEL my_image_search_model USING SimCLR OPTIONS (image_col='image_path', max_epochs=1)" in description
    assert "- training data: 1000 rows, 900 trained on, 100 held out" in description
    assert f"- final loss: {state['final_loss']:.4f}" in description
    assert f"- held-out P@4: {state['holdout_p_at_4']:.4f}" in description
    assert "temperature=0.2" in description, "every option, defaults included"

    resources["model_registry"].client()  # points mlflow at this workspace's registry
    signature = mlflow.models.get_model_info(f"models:/my_image_search_model/{state['version']}").signature
    (images,), (embeddings,) = signature.inputs.inputs, signature.outputs.inputs
    assert (images.type, images.shape) == (np.dtype(np.uint8), (-1, *state["geometry"]))
    assert (embeddings.type, embeddings.shape) == (np.dtype(np.float32), (-1, state["embedding_dim"]))


def test_without_an_mlflow_ui_the_artifacts_are_a_local_path(tutorial, tutorial_home):
    _, state, _, run = tutorial
    metadata = latest_model_metadata(tutorial_home, "my_image_search_model")
    assert metadata["mlflow_run_id"].value == state["run_id"]
    assert "mlflow_run" not in metadata and "mlflow_model_version" not in metadata
    artifacts = Path(metadata["artifacts"].value)
    assert artifacts.is_dir() and (artifacts / "loss_curve.png").is_file()


def test_with_an_mlflow_ui_the_model_links_its_run_version_and_artifacts(scratch_conn, monkeypatch):
    import thanosql

    monkeypatch.setenv("THANOSQL_MLFLOW_UI_URL", "http://localhost:5000/")
    conn = thanosql.connect(scratch_conn.settings.home, progress=False)
    conn.execute("BUILD MODEL linked_model USING SimCLR OPTIONS (max_epochs=1, holdout=0) AS SELECT * FROM mnist_test")
    metadata = latest_model_metadata(conn.settings.home, "linked_model")
    run_id = metadata["mlflow_run_id"].value
    client = build_resources(conn.settings)["model_registry"].client()
    run_page = f"http://localhost:5000/#/experiments/{client.get_run(run_id).info.experiment_id}/runs/{run_id}"
    assert metadata["mlflow_run"].value == run_page
    assert metadata["artifacts"].value == f"{run_page}/artifacts"
    assert metadata["mlflow_model_version"].value == "http://localhost:5000/#/models/linked_model/versions/1"


def test_build_model_trains_with_ddp_on_two_processes(scratch_conn):
    # OPTIONS (devices=2) on a CPU: Lightning's DDP over gloo inside the statement's Dagster run;
    # rank 0's epochs reach the run's log and MLflow in the run's own process.
    scratch_conn.execute(
        "BUILD MODEL ddp_model USING SimCLR OPTIONS (max_epochs=2, batch_size=64, devices=2) AS SELECT * FROM mnist_train"
    )
    resources = build_resources(scratch_conn.settings)
    state = resources["catalog"].get("model", "ddp_model").state
    client = resources["model_registry"].client()
    run = client.get_run(state["run_id"])
    assert (run.data.params["devices"], run.data.params["num_nodes"]) == ("2", "1")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1]
    instance = scratch_conn.settings.dagster_instance()
    [latest] = instance.get_runs(limit=1)
    logged = [event.user_message for event in instance.all_logs(latest.run_id) if event.user_message.startswith("epoch ")]
    assert [line.split(":")[0] for line in logged] == ["epoch 1/2", "epoch 2/2"]
    scratch_conn.execute("CONVERT USING ddp_model OPTIONS (table_name='ddp_test') AS SELECT * FROM mnist_test")
    rows = scratch_conn.execute(
        "SELECT image_path, ddp_model_simclr_similarity1 FROM (SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' "
        "USING ddp_model AS SELECT * FROM ddp_test) ORDER BY ddp_model_simclr_similarity1 DESC LIMIT 4"
    )
    assert len(rows) == 4 and rows["ddp_model_simclr_similarity1"].notna().all()
