"""The SQL server's statement service: statements that change objects are planned and run in
turn, so what a plan checked still holds when it runs."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from resources import Settings
from sql_frontend.interfaces.server import StatementService
from sql_frontend.language.parser import parse_statement


def test_concurrent_appends_to_one_table_keep_every_row(scratch_conn):
    home = scratch_conn.settings.home
    train = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv")
    train.iloc[:25].to_csv(home / "first.csv", index=False)
    train.iloc[25:50].to_csv(home / "second.csv", index=False)
    service = StatementService(Settings.from_env(home), dagster_url=None)
    errors: list[Exception] = []

    def append(name: str) -> None:
        try:
            service.execute(parse_statement(f"COPY mnist_test OPTIONS (append=True) FROM '{name}'"), name)
        except Exception as error:  # noqa: BLE001 - any failure fails the test
            errors.append(error)

    threads = [threading.Thread(target=append, args=(name,)) for name in ("first.csv", "second.csv")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    rows = scratch_conn.execute("SELECT image_path FROM mnist_test")
    assert len(rows) == 250 and set(train["image_path"].iloc[:50]) <= set(rows["image_path"])


def test_a_run_that_failed_outside_its_steps_is_reported_with_its_reason():
    import dagster as dg

    from sql_frontend.interfaces.server import _run_error

    @dg.op
    def nothing():
        pass

    @dg.job
    def statement():
        nothing()

    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(statement)
        instance.report_engine_event("Started process for run (pid: 1).", run)
        # What Dagster's code server reports when a run's process dies.
        instance.report_engine_event(f"Run execution process for {run.run_id} unexpectedly exited with code -11.", run)
        instance.report_run_failed(run)
        crashed = str(_run_error(instance.all_logs(run.run_id), run.run_id))
        canceled_run = instance.create_run_for_job(statement)
        instance.report_run_canceled(canceled_run, message="Canceled from the Dagster UI.")
        canceled = str(_run_error(instance.all_logs(canceled_run.run_id), canceled_run.run_id))

    assert crashed.startswith(f"Dagster run {run.run_id} did not succeed: Run execution process for {run.run_id} unexpectedly exited with code -11.")
    assert "Started process" not in crashed
    assert canceled.startswith(f"Dagster run {canceled_run.run_id} did not succeed: Canceled from the Dagster UI.")


def test_reloads_asked_for_while_one_waits_to_start_are_that_one_reload():
    from sql_frontend.interfaces.server import BackgroundReloads

    running, release, done = threading.Event(), threading.Event(), []

    def reload() -> None:
        running.set()
        release.wait(10)
        done.append(len(done) + 1)

    reloads = BackgroundReloads(reload)
    reloads.request()
    assert running.wait(10) and reloads.busy
    for _ in range(3):  # while the first runs: one more reload, which will read the catalog after them
        reloads.request()
    release.set()
    reloads.wait()
    assert done == [1, 2] and not reloads.busy


def test_a_failed_reload_is_logged_and_the_next_request_tries_again(caplog):
    from sql_frontend.interfaces.server import BackgroundReloads

    calls = []

    def reload() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("webserver restarting")

    reloads = BackgroundReloads(reload)
    reloads.request()
    reloads.wait()
    assert "Reloading code location" in caplog.text and "webserver restarting" in caplog.text
    reloads.request()
    reloads.wait()
    assert len(calls) == 2


@pytest.mark.parametrize(("value", "expected"), [("", 64 * 2**20), ("0", 0), ("10_000", 10_000)])
def test_the_server_limits_come_from_the_environment(monkeypatch, tmp_path, value, expected):
    monkeypatch.setenv("THANOSQL_SERVER_MAX_BYTES", value)
    assert Settings.from_env(tmp_path).server_max_bytes == expected


@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_a_server_limit_that_is_not_a_count_is_refused(monkeypatch, tmp_path, value):
    from thanosql.errors import ThanoSQLError

    monkeypatch.setenv("THANOSQL_SERVER_MAX_IMAGES", value)
    with pytest.raises(ThanoSQLError, match=f"THANOSQL_SERVER_MAX_IMAGES={value!r} is not a whole number >= 0"):
        Settings.from_env(tmp_path)


@pytest.fixture
def two_servers(scratch_conn, monkeypatch):
    """Two statement services (two SQL servers) on one workspace whose catalog and tables are in PostgreSQL."""
    import uuid

    from tests.production_stack import PG, create_database, drop_database, postgres_available

    if not postgres_available():
        pytest.skip("no PostgreSQL server")
    database = f"thanosql_two_servers_{uuid.uuid4().hex[:10]}"
    create_database(database)
    url = f"postgresql+psycopg2://{PG}/{database}"
    monkeypatch.setenv("THANOSQL_CATALOG_URL", url)
    monkeypatch.setenv("THANOSQL_WAREHOUSE_URL", url)
    home = scratch_conn.settings.home
    try:
        yield home, [StatementService(Settings.from_env(home), dagster_url=None) for _ in range(2)]
    finally:
        from resources.sql_database import sql_engine

        sql_engine(url).dispose()
        drop_database(database)


def test_sql_servers_on_one_postgresql_catalog_change_objects_in_turn(two_servers):
    from thanosql.errors import ObjectExistsError

    home, servers = two_servers
    train = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv")
    train.iloc[:30].to_csv(home / "thirty.csv", index=False)
    train.iloc[:20].to_csv(home / "twenty.csv", index=False)
    outcomes: dict[str, object] = {}

    def copy(server: StatementService, name: str) -> None:
        try:
            server.execute(parse_statement(f"COPY shared FROM '{name}'"), name)
            outcomes[name] = "copied"
        except Exception as error:  # noqa: BLE001 - the test looks at what each got
            outcomes[name] = error

    # While one server's statement holds the turn, the other's waits for it...
    with servers[0].resources["catalog"].changes_in_turn():
        waiting = threading.Thread(target=copy, args=(servers[1], "twenty.csv"))
        waiting.start()
        waiting.join(timeout=3)
        assert waiting.is_alive() and not outcomes
    waiting.join()
    assert outcomes == {"twenty.csv": "copied"}
    # ... so a second COPY of the same new table is refused, not let through to replace the first's rows.
    racing = [threading.Thread(target=copy, args=(server, name)) for server, name in zip(servers, ("thirty.csv", "twenty.csv"))]
    outcomes.clear()
    servers[0].execute(parse_statement("DROP TABLE shared"), "drop")
    for thread in racing:
        thread.start()
    for thread in racing:
        thread.join()
    refused = [outcome for outcome in outcomes.values() if isinstance(outcome, ObjectExistsError)]
    assert len(refused) == 1 and list(outcomes.values()).count("copied") == 1, outcomes
    kept = len(servers[1].execute(parse_statement("SELECT * FROM shared"), "read"))
    assert kept == (30 if outcomes["thirty.csv"] == "copied" else 20)


def test_a_script_that_fails_part_way_says_which_statements_ran(scratch_conn):
    from sql_frontend.interfaces.server import _run_script
    from sql_frontend.language.parser import parse_script
    from thanosql.errors import ObjectNotFoundError

    service = StatementService(Settings.from_env(scratch_conn.settings.home), dagster_url=None)
    script = "CREATE TABLE made AS SELECT 1 AS a;\nCREATE TABLE also AS SELECT 2 AS b;\nSELECT * FROM nope;\nCREATE TABLE never AS SELECT 3 AS c"
    with pytest.raises(ObjectNotFoundError) as caught:
        _run_script(service, parse_script(script), "script")
    assert caught.value.line == 3
    assert caught.value.hint.endswith("(The script's first 2 statements ran before this one, which changed nothing; the rest did not run.)")
    assert {"made", "also"} <= set(scratch_conn.execute("LIST TABLE")["table_name"]) and "never" not in set(scratch_conn.execute("LIST TABLE")["table_name"])
