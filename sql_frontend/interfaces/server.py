"""The SQL server: ThanoSQL statements over HTTP, with API tokens (production mode).

    THANOSQL_HOME=/workspace THANOSQL_DAGSTER_URL=http://dagster-webserver:3000 thanosql serve --port 8000

- `POST /v1/statements` {"sql": "...", "statement_id": "<optional, for progress>"} runs one
  statement or a `;`-separated script and answers {"results": [...]} (one per statement: columns,
  types, rows; null for statements without rows). With `Accept: application/x-ndjson` the rows
  stream as they are encoded: a header line per result, then lines of up to 1,000 rows.
- `GET /v1/statements/{statement_id}` reports a running statement: its Dagster run and progress lines.
- `GET /v1/images?path=...` serves an image of the workspace (PRINT IMAGE's pictures).
- `GET /v1/health` needs no token; everything else needs `Authorization: Bearer <token>`
  (`thanosql token create NAME` issues one) and answers 401, running nothing, without it.

Statements that materialize assets are Dagster runs on the instance, shown in the UI with
their logs. Heavy ones (training, downloads, a model's work on many images: see
`sql_frontend.execution.placement`) are submitted as runs of the `statement` job through the
webserver's GraphQL API (`THANOSQL_DAGSTER_URL`): the daemon's run coordinator queues them and
its run launcher starts them, so they scale out with the launcher. Light ones (a small COPY or
CONVERT) run in the server as in-process runs, which answer without waiting for a run worker to
start. When a statement made new objects, the code location is reloaded in the background, so
they appear as assets in the UI seconds after the statement answers (and, after DELETE MODEL,
DROP TABLE and the SQL statements that change tables, which run in the server, removed ones
disappear and new ones appear). Queries (SELECT, SEARCH, PRINT) run in the server: they read
the latest materialized assets and must answer in milliseconds. Without `THANOSQL_DAGSTER_URL`
every statement runs in the server process. Every file a statement names must be inside the
workspace.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from resources import Settings, build_resources
from resources.api_tokens import TokenStore
from sql_frontend.execution.placement import Limits, launcher_tags, place
from sql_frontend.execution.runner import StatementRunner
from sql_frontend.interfaces import wire
from sql_frontend.interfaces.boundary import user_errors
from sql_frontend.language.parser import ParsedStatement, parse_script
from sql_frontend.planning.planner import Planner, changes_objects
from sql_frontend.planning.plans import ChangeTable, Materialize, Plan, Query, Remove
from thanosql.errors import DataError, PathNotAllowedError, ThanoSQLError
from thanosql_assets.defs.embeddings import requested_rebuild
from thanosql_assets.defs.generations import GENERATION_TAG
from thanosql_assets.defs.materialize import (
    RETRY_FAILED_PARTITIONS,
    MaterializationRequest,
    begin_partitioned,
    defined_specs,
    materialize,
    split_partitioned,
)
from thanosql_assets.defs.partition_job import PARTITION_JOB, partition_run_config, partition_run_tags
from thanosql_assets.defs.recovery import recover
from thanosql_assets.defs.statement_job import STATEMENT_JOB, statement_run_config

log = logging.getLogger("thanosql.server")
CODE_LOCATION = os.environ.get("THANOSQL_CODE_LOCATION", "thanosql")
_POLL_S = 0.2


class StatementRequest(BaseModel):
    sql: str
    statement_id: str | None = None


@dataclass
class Running:
    status: str = "STARTING"
    run_id: str | None = None
    messages: list[str] = field(default_factory=list)


class DagsterSubmitter:
    """Submits `statement` runs through the Dagster webserver's GraphQL API and waits for them."""

    def __init__(self, url: str, instance):
        from dagster_graphql import DagsterGraphQLClient

        parsed = urlparse(url)
        self.client = DagsterGraphQLClient(parsed.hostname, port_number=parsed.port, use_https=parsed.scheme == "https")
        self.instance = instance

    def run(self, statement: ParsedStatement, request: MaterializationRequest, running: Running, tags: dict[str, str]) -> None:
        """Run a planned statement as a `statement` run and wait for it; its plan travels as run config."""
        run_id = self.submit(STATEMENT_JOB, statement_run_config(statement.text, request), {**tags, "thanosql/statement": statement.text[:2000]})
        running.run_id = run_id
        self.wait([run_id], running)

    def submit(self, job: str, run_config: dict, tags: dict[str, str]) -> str:
        """Submit a run of `job` to the daemon's queue: its id."""
        return self.client.submit_job_execution(
            job, repository_location_name=CODE_LOCATION, repository_name="__repository__", run_config=run_config, tags=tags
        )

    def wait(self, run_ids: list[str], running: Running) -> None:
        """Until every run has ended (`follow`); then the first failed run's error."""
        failed = self.follow(run_ids, running)
        if failed:
            raise self.run_error(failed[0])

    def run_error(self, run_id: str) -> ThanoSQLError:
        """The error a failed run ended with."""
        return _run_error(self.instance.all_logs(run_id), run_id)

    def follow(self, run_ids: list[str], running: Running) -> list[str]:
        """Until every run has ended, their log lines copied into `running`; the runs that did not succeed."""
        from dagster import DagsterRunStatus

        seen = dict.fromkeys(run_ids, 0)
        ended: dict[str, DagsterRunStatus] = {}
        while len(ended) < len(run_ids):
            for run_id in [run_id for run_id in run_ids if run_id not in ended]:
                run = self.instance.get_run_by_id(run_id)
                status = run.status if run else DagsterRunStatus.QUEUED
                running.status = status.value if len(run_ids) == 1 else f"RUNNING ({len(ended)} of {len(run_ids)} runs ended)"
                logs = self.instance.all_logs(run_id)
                for record in logs[seen[run_id]:]:
                    if record.dagster_event is None and record.user_message:
                        running.messages.append(record.user_message)
                seen[run_id] = len(logs)
                if status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                    ended[run_id] = status
            if len(ended) < len(run_ids):
                time.sleep(min(_POLL_S * len(run_ids), 2.0))  # each poll reads every run's log
        return [run_id for run_id in run_ids if ended[run_id] != DagsterRunStatus.SUCCESS]

    def reload(self) -> None:
        """Reload the code location, which builds its assets from the catalog: new objects appear, removed ones go."""
        self.client.reload_repository_location(CODE_LOCATION)


class BackgroundReloads:
    """Reloads the code location in a thread of its own, so a statement that made new objects
    answers without waiting for it (the webserver restarts the code location's server, which takes
    seconds). Requests made while a reload waits to start are that one reload, which reads the
    catalog as it is when it starts."""

    def __init__(self, reload: Callable[[], None]):
        self._reload = reload
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thanosql-reload")
        self._lock = threading.Lock()
        self._waiting: Future | None = None  # the reload not yet started, if any
        self._latest: Future | None = None

    def request(self) -> None:
        with self._lock:
            if self._waiting is not None and not (self._waiting.running() or self._waiting.done()):
                return
            self._waiting = self._latest = self._thread.submit(self._run)

    @property
    def busy(self) -> bool:
        """Whether a reload is running or waiting to start."""
        with self._lock:
            return self._latest is not None and not self._latest.done()

    def wait(self) -> None:
        """Until the latest requested reload is done (before a run is submitted to the code location)."""
        with self._lock:
            latest = self._latest
        if latest is not None:
            latest.result()

    def _run(self) -> None:
        try:
            self._reload()
        except Exception as error:  # noqa: BLE001 - the statement is done; the UI shows its objects at the next reload
            log.warning("Reloading code location %r failed (new objects show in the UI after the next reload): %s", CODE_LOCATION, error)


def _run_error(logs, run_id: str) -> ThanoSQLError:
    """The statement's own error, from the failed step's event."""
    for record in logs:
        event = record.dagster_event
        if event is not None and event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name in ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"):
                error = error.cause
            message, _, hint = error.message.strip().partition("\n  hint: ")
            message = message.split(": ", 1)[1] if message.startswith("thanosql") else message
            return DataError(message.strip(), hint=hint.strip() or f"See run {run_id} in the Dagster UI for its logs.")
    # No step failed: the run itself did (its worker raised or died, or it was canceled).
    return ThanoSQLError(f"Dagster run {run_id} did not succeed{_run_level_reason(logs)}", hint="See the run's logs in the Dagster UI.")


def _run_level_reason(logs) -> str:
    """': <why>' from the run's own failure event and the engine event just before it (a crashed
    worker is reported as an engine event, then a bare failure), or '.' when they say nothing."""
    from dagster import DagsterEventType

    reasons, engine_message = [], None
    for record in logs:
        event = record.dagster_event
        if event is None:
            continue
        error = getattr(event.event_specific_data, "error", None)
        described = f"{error.cls_name}: {error.message.strip()}" if error is not None else None
        if event.event_type == DagsterEventType.ENGINE_EVENT:
            engine_message = described or event.message
            if described:
                reasons.append(described)
        elif event.event_type in (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED):
            reasons += [reason for reason in (engine_message, described or event.message) if reason and reason not in reasons]
    return f": {' '.join(reasons[-2:])}" if reasons else "."


def _run_script(service: StatementService, statements: list[ParsedStatement], statement_id: str) -> list[pd.DataFrame | None]:
    """Each statement's result, in order; a failing statement's error says which before it ran."""
    results = []
    for number, statement in enumerate(statements):
        try:
            results.append(service.execute(statement, statement_id))
        except ThanoSQLError as error:
            if number:  # the response carries only the error: say what the script did change
                ran = f"the script's first {number} statements" if number > 1 else "the script's first statement"
                error.hint = f"{error.hint + ' ' if error.hint else ''}({ran.capitalize()} ran before this one, which changed nothing; the rest did not run.)"
            raise
    return results


class StatementService:
    """Plans each statement once, then runs its plan: queries here, statements that create or change
    objects as `statement` runs (or here, without Dagster)."""

    def __init__(self, settings: Settings, dagster_url: str | None):
        settings.ensure_dirs()
        self.resources = build_resources(settings)
        recover(settings.home, self.resources, settings.dagster_instance)
        self.planner = Planner.for_resources(self.resources)
        self.runner = StatementRunner(self.resources, instance=settings.dagster_instance)
        # A long-lived process, as the webserver is: the instance keeps its database connections
        # open (pooled) rather than opening one per event of the runs it records.
        self.runner.instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=20)
        self.submitter = DagsterSubmitter(dagster_url, self.runner.instance) if dagster_url else None
        self.reloads = BackgroundReloads(self.submitter.reload) if self.submitter else None
        self.limits = Limits(max_bytes=settings.server_max_bytes, max_images=settings.server_max_images)
        self.running: dict[str, Running] = {}
        # Statements that change objects take turns, planned and run under this lock, so what
        # their plan checked still holds when it runs (and DuckDB lets one process write at a time);
        # with other SQL servers on the same PostgreSQL catalog, under its lock too.
        self._write_lock = threading.Lock()

    def execute(self, statement: ParsedStatement, statement_id: str) -> pd.DataFrame | None:
        with user_errors(statement.text):
            return self._execute(statement, statement_id)

    def _execute(self, statement: ParsedStatement, statement_id: str) -> pd.DataFrame | None:
        if not changes_objects(statement.expression):
            return self.runner.run(self.planner.plan(statement), statement)
        running = self.running.setdefault(statement_id, Running())
        with self._write_lock, self.resources["catalog"].changes_in_turn():
            plan = self.planner.plan(statement)
            running.status = "RUNNING"
            if self.submitter is None or not isinstance(plan, Materialize):
                rows = self.runner.run(plan, statement)
                if self.reloads is not None and _redefines(plan):
                    self.reloads.request()  # the code location's assets are the catalog's objects
                return rows
            if plan.announce:
                running.messages.append(plan.announce)
            catalog = self.resources["catalog"]
            new_objects = any(
                (entry := catalog.get(spec.kind, spec.catalog_name)) is None or entry.spec != json.loads(json.dumps(spec.to_dict()))
                for spec in plan.request.specs
            )
            placement = place(plan.request, self.resources, self.limits)
            tags = {"thanosql/statement_id": statement_id, "thanosql/placement": placement.tag}
            log.info("%s runs in the %s: %s", statement.text[:80], "server" if placement.in_server else "run launcher", placement.reason)
            if placement.in_server:
                running.run_id = str(uuid.uuid4())
                materialize(plan.request, self.resources, self.runner.instance, statement.text, tags=tags, run_id=running.run_id)
            else:
                running.messages.append(f"Launching a run: this statement {placement.reason}.")
                self.reloads.wait()  # the run is submitted to the reloaded code location, not one being replaced
                self._launch(statement, plan.request, running, {**tags, **launcher_tags(plan.request)})
            if new_objects:
                self.reloads.request()
            return self.runner.result_rows(plan)

    def _launch(self, statement: ParsedStatement, request: MaterializationRequest, running: Running, tags: dict[str, str]) -> None:
        """Launch the request's runs: a `statement` run, and for each partitioned embedding, one
        `embedding_partition` run per partition with images to embed, all at once (the daemon's
        queue and launcher place them), then a `statement` run of the switch after the last."""
        partitioned, rest = split_partitioned(request, defined_specs(request, self.resources["catalog"]))
        if rest:
            self.submitter.run(statement, MaterializationRequest(request.specs, rest, request.run_config), running, tags)
        for spec in partitioned:
            generation = begin_partitioned(spec, self.resources, rebuild=requested_rebuild(request.run_config, spec))
            partitions = generation.unfinished(self.resources["workspace"].root, spec)
            running.messages.append(f"Launching {len(partitions)} partition runs of generation {generation.collection}.")
            run_ids = [
                self.submitter.submit(
                    PARTITION_JOB, partition_run_config(spec, partition, generation), {**tags, **partition_run_tags(spec, partition, generation)}
                )
                for partition in partitions
            ]
            failed = self.submitter.follow(run_ids, running)
            if failed:
                error = self.submitter.run_error(failed[0])
                failed_partitions = [partition for partition, run_id in zip(partitions, run_ids) if run_id in failed]
                raise DataError(
                    f"Partition runs {', '.join(failed_partitions)} of generation {generation.collection} failed: {error.message}",
                    hint="The other partitions' vectors are kept and SEARCH answers from the previous generation: " + RETRY_FAILED_PARTITIONS + ".",
                ) from error
            self.submitter.run(statement, MaterializationRequest(request.specs, spec.switch_keys), running, {**tags, GENERATION_TAG: generation.collection})


def _redefines(plan: Plan) -> bool:
    """Whether a plan run in the server changes which objects the catalog holds."""
    if isinstance(plan, Remove):
        return plan.request is not None
    if isinstance(plan, Query):
        return plan.save_as is not None
    return isinstance(plan, ChangeTable) and plan.request is not None and plan.request.redefines


def create_app(settings: Settings | None = None, dagster_url: str | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    if not settings.confine_paths:
        settings = Settings(**{**settings.__dict__, "confine_paths": True})
    dagster_url = dagster_url if dagster_url is not None else os.environ.get("THANOSQL_DAGSTER_URL") or None
    service = StatementService(settings, dagster_url)
    tokens = TokenStore(service.resources["catalog"].url)
    workspace = service.resources["workspace"]
    bearer = HTTPBearer(auto_error=False)
    app = FastAPI(title="ThanoSQL", version="1", description=__doc__)

    def caller(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        holder = tokens.check(credentials.credentials if credentials else None)
        if holder is None:
            raise HTTPException(
                status_code=401,
                detail="A valid API token is required: send 'Authorization: Bearer <token>' (thanosql token create NAME issues one).",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return holder

    @app.exception_handler(ThanoSQLError)
    def _thanosql_error(_request: Request, error: ThanoSQLError) -> JSONResponse:
        status = 403 if isinstance(error, PathNotAllowedError) else 400
        return JSONResponse(wire.encode_error(error), status_code=status)

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        reloading = service.reloads is not None and service.reloads.busy  # new objects not yet assets in the UI
        return {"status": "ok", "dagster": dagster_url, "workspace": str(settings.home), "reloading": reloading}

    @app.post("/v1/statements")
    def statements(body: StatementRequest, request: Request, holder: str = Depends(caller)):
        statement_id = body.statement_id or uuid.uuid4().hex
        with user_errors(body.sql):
            parsed = parse_script(body.sql)
        log.info("%s runs %d statement(s) as %s", holder, len(parsed), statement_id)
        try:
            # Statements run before the response starts, so an error is still a clean 400.
            results = _run_script(service, parsed, statement_id)
            if "application/x-ndjson" in request.headers.get("accept", ""):
                return StreamingResponse(_ndjson(results), media_type="application/x-ndjson")
            return {"statement_id": statement_id, "results": [wire.encode(result) for result in results]}
        finally:
            service.running.pop(statement_id, None)

    @app.get("/v1/statements/{statement_id}")
    def progress(statement_id: str, holder: str = Depends(caller)) -> dict[str, Any]:
        running = service.running.get(statement_id)
        if running is None:
            raise HTTPException(404, detail=f"No statement {statement_id} is running.")
        return {"status": running.status, "run_id": running.run_id, "messages": running.messages}

    @app.get("/v1/images")
    def image(path: str, holder: str = Depends(caller)) -> FileResponse:
        resolved = workspace.resolve(path)
        kind = mimetypes.guess_type(resolved.name)[0] or ""
        if not kind.startswith("image/") or not resolved.is_file():
            raise HTTPException(404, detail=f"No image {path!r} in the workspace.")
        return FileResponse(resolved, media_type=kind)

    return app


def _ndjson(results: list[pd.DataFrame | None]):
    for number, rows in enumerate(results):
        if rows is None:
            yield json.dumps({"statement": number, "result": None}) + "\n"
            continue
        for line in wire.ndjson_lines(rows):
            yield json.dumps({"statement": number, **line}) + "\n"


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, log_level="info")
