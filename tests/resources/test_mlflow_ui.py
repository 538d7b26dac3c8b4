"""Links from Dagster into the MLflow UI: where the UI is, and its pages' addresses."""

from __future__ import annotations

from resources import ModelRegistryResource, Settings, build_resources


def test_the_mlflow_ui_is_the_setting_else_an_http_tracking_server(monkeypatch, tmp_path):
    monkeypatch.delenv("THANOSQL_MLFLOW_UI_URL", raising=False)
    monkeypatch.delenv("THANOSQL_MLFLOW_URI", raising=False)
    assert Settings.from_env(tmp_path).mlflow_ui_url is None  # embedded: no UI serves the SQLite store
    monkeypatch.setenv("THANOSQL_MLFLOW_URI", "http://mlflow:5000")
    assert Settings.from_env(tmp_path).mlflow_ui_url == "http://mlflow:5000"
    monkeypatch.setenv("THANOSQL_MLFLOW_UI_URL", "http://localhost:5000")
    settings = Settings.from_env(tmp_path)
    assert settings.mlflow_ui_url == "http://localhost:5000"
    assert build_resources(settings)["model_registry"].ui_url == "http://localhost:5000"


def test_links_are_mlflow_ui_pages_or_none_without_a_ui():
    registry = ModelRegistryResource(tracking_uri="sqlite:///mlflow.db", ui_url="http://localhost:5000/")
    assert registry.run_url("3", "abc") == "http://localhost:5000/#/experiments/3/runs/abc"
    assert registry.model_version_url("my model", 2) == "http://localhost:5000/#/models/my%20model/versions/2"
    bare = ModelRegistryResource(tracking_uri="sqlite:///mlflow.db")
    assert bare.run_url("3", "abc") is None and bare.model_version_url("m", 1) is None
