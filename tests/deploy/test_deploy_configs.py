"""The deployment files load: Dagster validates the instance configs (including the Kubernetes
run launcher's), and the compose file wires every service the production mode needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster-k8s.yaml"])
def test_instance_configs_pass_dagster_validation(name, tmp_path, monkeypatch):
    import importlib

    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    monkeypatch.setenv("THANOSQL_IMAGE", "thanosql:latest")
    shutil.copy(REPO / "deploy" / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    for section in ("run_coordinator", "run_launcher"):
        # Dagster maps the documented `dagster.core...` module names to its private `dagster._core`.
        module = config[section]["module"].replace("dagster.core", "dagster._core", 1)
        klass = getattr(importlib.import_module(module), config[section]["class"])
        result = process_config(klass.config_type(), config[section].get("config") or {})
        assert result.success, (section, [error.message for error in result.errors])


def test_kubernetes_runs_get_a_gpu_each_and_partition_runs_concurrency_limits():
    from thanosql_assets.defs.partition_job import PARTITION_RUN_KIND

    config = yaml.safe_load((REPO / "deploy" / "dagster-k8s.yaml").read_text())
    limits = {(item["key"], str(item["value"])): item["limit"] for item in config["run_coordinator"]["config"]["tag_concurrency_limits"]}
    assert limits[("thanosql/kind", PARTITION_RUN_KIND)] >= 1
    assert limits[("dagster/backfill", str({"applyLimitPerUniqueValue": True}))] >= 1
    resources = config["run_launcher"]["config"]["run_k8s_config"]["container_config"]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1


def test_the_dagster_yaml_of_production_is_postgres_backed():
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_compose_file_wires_the_production_services():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "qdrant", "mlflow", "code-location", "dagster-webserver", "dagster-daemon", "sql"} <= set(services)
    environment = compose["x-thanosql"]["environment"]
    for variable in ("DAGSTER_PG_URL", "THANOSQL_CATALOG_URL", "THANOSQL_WAREHOUSE_URL", "THANOSQL_MLFLOW_URI", "THANOSQL_QDRANT_URL", "THANOSQL_DAGSTER_URL"):
        assert variable in environment, variable
    assert environment["THANOSQL_CONFINE_PATHS"] == "1"
    gpu = services["code-location"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    grpc = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    assert str(grpc["port"]) in services["code-location"]["command"]


def _compose_available() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="the docker compose plugin is not installed")
def test_docker_compose_config_is_valid():
    subprocess.run(["docker", "compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"], check=True, cwd=REPO)
