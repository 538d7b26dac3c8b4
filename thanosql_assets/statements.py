"""The `statement` job: one ThanoSQL statement that creates or changes objects, as a Dagster run.

The SQL server (production mode) submits statements here, so they run where Dagster launches
runs (the daemon's run launcher: a subprocess, a Kubernetes job, ...), show in the UI with their
logs, and materialize the assets of the objects they create. The op runs the statement exactly
as the embedded SQL frontend does, on the same Dagster instance: its asset materializations
are a run of their own, tagged with the statement, and its progress lines are copied into this
run's log, where the SQL server reads them.
"""


import logging

import dagster as dg
from pydantic import Field

STATEMENT_JOB = "statement"
STATEMENT_OP = "execute_statement"


class StatementRunConfig(dg.Config):
    sql: str = Field(description="One ThanoSQL statement: GET THANOSQL DATASET, COPY, BUILD MODEL, CONVERT, CREATE TABLE ... USING")


class _ToRunLog(logging.Handler):
    def __init__(self, context: dg.OpExecutionContext):
        super().__init__(logging.INFO)
        self.context = context

    def emit(self, record: logging.LogRecord) -> None:
        self.context.log.info(record.getMessage())


@dg.op(name=STATEMENT_OP, tags={"kind": "thanosql"})
def execute_statement(context: dg.OpExecutionContext, config: StatementRunConfig) -> None:
    from resources import Settings
    from sql_frontend.engine import Engine
    from sql_frontend.parser import parse_statement

    statement = parse_statement(config.sql)
    progress = logging.getLogger("thanosql.progress")
    handler = _ToRunLog(context)
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)
    try:
        Engine(Settings.from_env(), instance=context.instance).execute(statement)
    finally:
        progress.removeHandler(handler)


@dg.job(name=STATEMENT_JOB, executor_def=dg.in_process_executor, tags={"thanosql/kind": "statement"})
def statement_job():
    execute_statement()
