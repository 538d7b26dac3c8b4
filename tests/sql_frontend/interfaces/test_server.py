"""The SQL server's statement service: statements that change objects are planned and run in
turn, so what a plan checked still holds when it runs."""

from __future__ import annotations

import threading

import pandas as pd

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
