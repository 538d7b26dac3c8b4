"""BUILD MODEL's MLflow record: params, per-epoch metrics, pictures, held-out quality, and a
registered model that reloads to give the very embeddings CONVERT stored."""

import subprocess
import sys

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
