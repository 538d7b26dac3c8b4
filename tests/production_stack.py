"""Production mode on this machine, as real processes: PostgreSQL-backed Dagster (webserver and
daemon), tables and catalog in PostgreSQL, an MLflow tracking server on PostgreSQL, and the
ThanoSQL SQL server, on free ports.

Used by the production tests and bench/production_latency.py. PostgreSQL is the machine's
server on 127.0.0.1:5432 (trust auth); each stack gets databases of its own, dropped after.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PG = "postgres@127.0.0.1:5432"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin(sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(f"postgresql://{PG}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def create_database(name: str) -> None:
    _admin(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    _admin(f'DROP DATABASE IF EXISTS "{name}"')


def postgres_available() -> bool:
    try:
        _admin("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means: no server to test against
        return False


class Stack:
    def __init__(self, root: Path):
        self.root = root
        self.id = uuid.uuid4().hex[:10]
        self.databases = {
            name: f"thanosql_{name}_{self.id}" for name in ("dagster", "catalog", "tables", "mlflow")
        }
        self.home = root / "workspace"
        self.dagster_home = root / "dagster"
        self.ports = {name: free_port() for name in ("webserver", "mlflow", "sql")}
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = root / "logs"

    @property
    def sql_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sql']}"

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['webserver']}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "THANOSQL_HOME": str(self.home),
            "DAGSTER_HOME": str(self.dagster_home),
            "DAGSTER_PG_URL": f"postgresql://{PG}/{self.databases['dagster']}",
            "THANOSQL_CATALOG_URL": f"postgresql+psycopg2://{PG}/{self.databases['catalog']}",
            "THANOSQL_WAREHOUSE_URL": f"postgresql+psycopg2://{PG}/{self.databases['tables']}",
            "THANOSQL_MLFLOW_URI": f"http://127.0.0.1:{self.ports['mlflow']}",
            "THANOSQL_DAGSTER_URL": self.dagster_url,
            "THANOSQL_CONFINE_PATHS": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def _start(self, name: str, command: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            command, cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self) -> None:
        for database in self.databases.values():
            create_database(database)
        self.home.mkdir(parents=True)
        self.dagster_home.mkdir(parents=True)
        shutil.copy(REPO / "deploy" / "dagster.yaml", self.dagster_home / "dagster.yaml")
        workspace = ["-w", str(REPO / "workspace.yaml")]
        self._start(
            "mlflow",
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.ports["mlflow"]), "--workers", "1",
             "--backend-store-uri", f"postgresql://{PG}/{self.databases['mlflow']}",
             "--artifacts-destination", str(self.root / "mlflow-artifacts")],
        )
        self._start("webserver", [str(BIN / "dagster-webserver"), *workspace, "-h", "127.0.0.1", "-p", str(self.ports["webserver"])])
        self._start("daemon", [str(BIN / "dagster-daemon"), "run", *workspace])
        self.wait_for(f"http://127.0.0.1:{self.ports['mlflow']}/health", "mlflow")
        self._start("sql", [str(BIN / "thanosql"), "serve", "--port", str(self.ports["sql"])])
        self.wait_for(f"{self.dagster_url}/server_info", "webserver")
        self.wait_for(f"{self.sql_url}/v1/health", "sql")

    def wait_for(self, url: str, name: str, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {(self.logs / f'{name}.log').read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{name} did not answer {url} in {timeout_s:.0f} s: {(self.logs / f'{name}.log').read_text()[-3000:]}")

    def settled(self, timeout_s: float = 120.0) -> None:
        """Wait until the SQL server has no code location reload running or waiting (new objects are assets in the UI)."""
        deadline = time.monotonic() + timeout_s
        while httpx.get(f"{self.sql_url}/v1/health", timeout=10).json()["reloading"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the code location was still reloading after {timeout_s:.0f} s")
            time.sleep(0.1)

    def token(self, name: str = "tests") -> str:
        from resources.api_tokens import TokenStore

        return TokenStore(self.env()["THANOSQL_CATALOG_URL"]).create(name)

    def instance(self):
        import dagster as dg

        os.environ["DAGSTER_PG_URL"] = self.env()["DAGSTER_PG_URL"]
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    @contextmanager
    def explained(self):
        """On a failure inside the block, print what CI needs to tell why: the events of the failed
        Dagster runs and the end of each server's log (pytest shows them with the failure)."""
        try:
            yield
        except Exception:
            self._print_failure_report()
            raise

    def _print_failure_report(self) -> None:
        import dagster as dg

        try:
            instance = self.instance()
            for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED])):
                print(f"--- Dagster run {run.run_id} ({run.job_name}, {run.status.value}) events:", file=sys.stderr)
                for record in instance.all_logs(run.run_id):
                    event = record.dagster_event
                    kind = event.event_type_value if event else "LOG"
                    print(f"{kind}: {record.message or record.user_message}"[:3000], file=sys.stderr)
        except Exception as error:  # noqa: BLE001 - the report must not replace the failure
            print(f"(could not read the Dagster runs: {error})", file=sys.stderr)
        for path in sorted(self.logs.glob("*.log")):
            print(f"--- {path.name} (last 4000 characters):\n{path.read_text(errors='replace')[-4000:]}", file=sys.stderr)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for database in self.databases.values():
            try:
                drop_database(database)
            except Exception:  # noqa: BLE001 - a database left behind must not hide the test's own result
                pass


@contextmanager
def production_stack(root: Path):
    stack = Stack(root)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
