"""Models: MLflow tracking (one run per BUILD MODEL) and its model registry.

Each ThanoSQL model is a registered MLflow model of the same name; every BUILD MODEL adds a
version, and the alias `serving` names the version that CONVERT and SEARCH use, so
`models:/<name>@serving` loads it anywhere. Embedded mode keeps runs in SQLite and artifacts
in a directory of the workspace; production mode points `tracking_uri` at an MLflow server.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg

from thanosql.errors import ObjectNotFoundError

SERVING_ALIAS = "serving"

_loaded: dict[str, Any] = {}
_loaded_lock = threading.Lock()


class _DropPickleCaution(logging.Filter):
    """We log models with pickle on purpose (see thanosql_assets/defs/models.py); the caution would repeat on every build."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Pickle or CloudPickle" not in record.getMessage()


def _quiet_mlflow_logs() -> None:
    logger = logging.getLogger("mlflow")
    logger.setLevel(logging.WARNING)
    pytorch_logger = logging.getLogger("mlflow.pytorch")
    if not any(isinstance(f, _DropPickleCaution) for f in pytorch_logger.filters):
        pytorch_logger.addFilter(_DropPickleCaution())


def _mlflow_event_logs_off():
    """MLflow prints "Successfully registered model ..." and "Created version ..." with its `eprint`,
    straight to stderr, so no log level hides them; the model asset's progress says the same in one
    line. This is MLflow's own switch for its event stream (those lines and its loggers' output;
    errors still raise), counted: MLflow flips it itself, and builds may overlap in threads."""
    from mlflow.utils.autologging_utils import MlflowEventsAndWarningsBehaviorGlobally

    return MlflowEventsAndWarningsBehaviorGlobally(disable_event_logs=True, disable_warnings=False, reroute_warnings=False)


class ModelRegistryResource(dg.ConfigurableResource):
    tracking_uri: str
    # Where the experiment stores artifacts; without it MLflow writes into the current directory.
    artifact_location: str | None = None
    experiment_name: str = "thanosql"
    # The MLflow UI's address, for links from the Dagster UI; None where no MLflow UI serves this store.
    ui_url: str | None = None
    # A local directory where the registry notes which files each MLflow run logged its model to,
    # when they are on this machine (embedded mode): a fresh process (a CLI SEARCH, a partition
    # run) then loads a version without MLflow's import and store. None: always through MLflow.
    model_files_index: str | None = None

    def _mlflow(self):
        # Usage telemetry would try to reach the internet on every run; opt in with MLFLOW_DISABLE_TELEMETRY=false.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        # Its artifact transfer bars would print to stderr (in red in a notebook) under our own progress lines.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import mlflow

        _quiet_mlflow_logs()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def client(self):
        return self._mlflow().MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self) -> str:
        mlflow = self._mlflow()
        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        return mlflow.create_experiment(self.experiment_name, artifact_location=self.artifact_location)

    @contextmanager
    def start_run(self, run_name: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
        mlflow = self._mlflow()
        with _mlflow_event_logs_off(), mlflow.start_run(experiment_id=self.experiment_id(), run_name=run_name, tags=tags) as run:
            yield run

    def model_uri(self, name: str, version: str | int | None = None) -> str:
        return f"models:/{name}/{version}" if version is not None else f"models:/{name}@{SERVING_ALIAS}"

    def set_serving(self, name: str, version: str | int) -> None:
        self.client().set_registered_model_alias(name, SERVING_ALIAS, str(version))

    def serving_version(self, name: str) -> str | None:
        try:
            return str(self.client().get_model_version_by_alias(name, SERVING_ALIAS).version)
        except Exception:  # MLflow raises its own RestException for unknown names/aliases
            return None

    def describe_version(self, name: str, version: str | int, description: str) -> None:
        """Set the description the MLflow UI shows on a model version's page (markdown)."""
        self.client().update_model_version(name, str(version), description=description)

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        """The run's page in the MLflow UI, or None without a UI."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}" if self.ui_url else None

    def model_version_url(self, name: str, version: str | int) -> str | None:
        """A registered model version's page in the MLflow UI, or None without a UI."""
        return f"{self.ui_url.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{version}" if self.ui_url else None

    def end_abandoned_runs(self, dagster_run_id: str) -> list[str]:
        """Mark KILLED the MLflow runs still RUNNING that a Dagster run started (its process died); their ids."""
        client = self.client()
        runs = client.search_runs(
            [self.experiment_id()], filter_string=f"tags.`dagster.run_id` = '{dagster_run_id}' and attributes.status = 'RUNNING'"
        )
        for run in runs:
            client.set_terminated(run.info.run_id, status="KILLED")
        return [run.info.run_id for run in runs]

    def delete(self, name: str) -> bool:
        """Delete the registered model `name` and its versions (their runs stay in the experiment's
        history); False if there was none. This process forgets the versions it loaded: a model
        registered later under the same name starts again at version 1."""
        prefix = f"{self.tracking_uri} {self.model_uri(name, 0).removesuffix('0')}"
        with _loaded_lock:
            for key in [key for key in _loaded if key.startswith(prefix)]:
                del _loaded[key]
        client = self.client()
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            return False
        client.delete_registered_model(name)
        return True

    def load(self, name: str, version: str | int, run_id: str | None = None, *, listed: bool | Callable[[], bool] = False) -> Any:
        """The logged torch module of one model version, the one the MLflow run `run_id` logged when given.

        Cached per process: a version never changes, but a model deleted and built again numbers
        its versions from 1 again, in this process or another, so the cache knows a version by the
        run that logged it, and a version that another run logged since is refused. `listed`: the
        catalog lists the version as the model's, logged by `run_id`
        (`CatalogResource.lists_model_version`; a callable is asked only when the version is not
        loaded yet), so a fresh process may load the run's files without asking the registry,
        where they are local and noted.
        """
        uri = self.model_uri(name, version)
        cache_key = f"{self.tracking_uri} {uri} {run_id}"
        with _loaded_lock:
            if cache_key not in _loaded:
                import tempfile

                files = self._noted_files(name, version, run_id) if (listed() if callable(listed) else listed) else None
                if files is not None:  # the run's own files: what it logged never changes
                    model = _load_pytorch_flavor(str(files))
                else:
                    if run_id is not None:
                        registered = self._check_logged_by(name, version, run_id)
                        try:
                            self._note_files(name, version, run_id, registered)
                        except Exception as error:  # noqa: BLE001 - a note only spares later processes time
                            logging.getLogger("thanosql.progress").debug("could not note the files of %s v%s: %s", name, version, error)
                    with tempfile.TemporaryDirectory(prefix="thanosql-model-") as directory:
                        model = _load_pytorch_flavor(self._mlflow().artifacts.download_artifacts(artifact_uri=uri, dst_path=directory))
                model.eval()
                _loaded[cache_key] = model
            return _loaded[cache_key]

    def _check_logged_by(self, name: str, version: str | int, run_id: str) -> Any:
        """The registry's record of the version, which `run_id` must have logged."""
        from mlflow.exceptions import MlflowException

        client = self.client()
        try:
            registered = client.get_model_version(name, str(version))
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":  # not an answer: the registry failed
                raise
            registered = None
        if registered is None or registered.run_id != run_id:
            raise ObjectNotFoundError(
                f"Model {name!r} version {version} is no longer the one this needs: the model was deleted"
                + (" and built again since." if registered else "."),
                hint="Run the CONVERT (or the statement that made it) again, so that the current model embeds it.",
            )
        return registered

    def _noted_files(self, name: str, version: str | int, run_id: str | None) -> Path | None:
        """The local directory of the files `run_id` logged as this version, if noted and still there."""
        if self.model_files_index is None or run_id is None:
            return None
        try:
            noted = json.loads((Path(self.model_files_index) / f"{run_id}.json").read_text())
        except (OSError, ValueError):
            return None
        files = Path(noted.get("files", ""))
        matches = (noted.get("name"), noted.get("version")) == (name, str(version))
        return files if matches and (files / "MLmodel").is_file() else None

    def _note_files(self, name: str, version: str | int, run_id: str, registered: Any) -> None:
        """Note where `run_id` logged the version's files, when they are a local directory."""
        if self.model_files_index is None or not str(registered.source).startswith("models:/"):
            return
        location = self.client().get_logged_model(registered.source.removeprefix("models:/")).artifact_location
        if not location.startswith("file://"):
            return
        from urllib.parse import unquote, urlparse

        index = Path(self.model_files_index)
        index.mkdir(parents=True, exist_ok=True)
        note = index / f".{run_id}.{os.getpid()}.json"
        note.write_text(json.dumps({"name": name, "version": str(version), "files": unquote(urlparse(location).path)}))
        note.replace(index / f"{run_id}.json")  # whole or not at all, for a process reading it meanwhile


def _load_pytorch_flavor(directory: str) -> Any:
    """The torch module of a model that mlflow.pytorch.log_model logged, from its downloaded files.

    What `mlflow.pytorch.load_model` does, less importing `mlflow.pytorch`, which imports
    Lightning for its autologging: seconds that every fresh run worker (a partition run) would
    pay before embedding anything. The file is a torch pickle written with cloudpickle, which
    the standard unpickler reads (as MLflow does for the pickle format ThanoSQL logs in).
    """
    import torch
    import yaml

    flavor = yaml.safe_load((Path(directory) / "MLmodel").read_text())["flavors"]["pytorch"]
    pickled = Path(directory) / flavor["model_data"] / "model.pth"
    if not pickled.is_file() or flavor.get("code"):  # another format (e.g. MLflow's pt2): MLflow's own loader
        import mlflow.pytorch

        return mlflow.pytorch.load_model(directory, map_location="cpu")
    return torch.load(pickled, map_location="cpu", weights_only=False)
