"""The `statement` job: one planned ThanoSQL statement that creates or changes objects, as a Dagster run.

The SQL server (production mode) parses and plans a statement, then submits its plan here, so
it runs where Dagster launches runs (the daemon's run launcher: a subprocess, a Kubernetes
job, ...), shows in the UI with its logs, and materializes the assets of the objects it
creates, exactly as embedded mode does in process (`materialize`). The plan travels as run
config, so the run does not parse or plan the statement again. Its asset materializations are a
run of their own, tagged with the statement; its progress lines are copied into this run's log,
where the SQL server reads them.
"""


import logging

import dagster as dg
from pydantic import Field

from thanosql_assets.defs.materialize import MaterializationRequest, materialize

STATEMENT_JOB = "statement"
STATEMENT_OP = "execute_statement"


class StatementRunConfig(dg.Config):
    statement: str = Field(description="The statement as written: GET THANOSQL DATASET, COPY, BUILD MODEL, CONVERT, CREATE TABLE ... USING")
    request: str = Field(description="Its plan: the objects it defines and the assets it materializes (MaterializationRequest JSON)")


def statement_run_config(statement: str, request: MaterializationRequest) -> dict:
    """The run config of a `statement` run for a planned statement."""
    return {"ops": {STATEMENT_OP: {"config": {"statement": statement, "request": request.to_json()}}}}


class _ToRunLog(logging.Handler):
    def __init__(self, context: dg.OpExecutionContext):
        super().__init__(logging.INFO)
        self.context = context

    def emit(self, record: logging.LogRecord) -> None:
        self.context.log.info(record.getMessage())


@dg.op(name=STATEMENT_OP, tags={"kind": "thanosql"})
def execute_statement(context: dg.OpExecutionContext, config: StatementRunConfig) -> None:
    from resources import Settings, build_resources

    settings = Settings.from_env()
    settings.ensure_dirs()
    progress = logging.getLogger("thanosql.progress")
    handler = _ToRunLog(context)
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)
    try:
        materialize(MaterializationRequest.from_json(config.request), build_resources(settings), context.instance, statement=config.statement)
    finally:
        progress.removeHandler(handler)


@dg.job(name=STATEMENT_JOB, executor_def=dg.in_process_executor, tags={"thanosql/kind": "statement"})
def statement_job():
    execute_statement()
