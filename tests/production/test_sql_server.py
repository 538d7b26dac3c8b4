"""Production mode end to end: the seed tutorial over HTTP, through real servers (Dagster webserver
and daemon on PostgreSQL, MLflow server on PostgreSQL, the ThanoSQL SQL server)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.production_stack import postgres_available, production_stack
from tests.seeds import seed_cells
from thanosql.errors import PathNotAllowedError, ThanoSQLError

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not postgres_available(), reason="needs the PostgreSQL server on 127.0.0.1:5432"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with production_stack(tmp_path_factory.mktemp("production")) as running:
        yield running


@pytest.fixture(scope="module")
def token(stack):
    return stack.token()


@pytest.fixture(scope="module")
def remote(stack, token):
    import thanosql

    return thanosql.connect(url=stack.sql_url, api_token=token, progress=False)


@pytest.fixture(scope="module")
def remote_results(stack, remote):
    with stack.explained():
        return [remote.execute(cell) for cell in seed_cells("001")]


def test_the_tutorial_over_http_gives_the_embedded_results(remote_results, tutorial_results):
    assert [r is None for r in remote_results] == [r is None for r in tutorial_results]
    pd.testing.assert_frame_equal(remote_results[3], tutorial_results[3], check_dtype=False)  # SELECT ... LIMIT 5
    converted, embedded = remote_results[5], tutorial_results[5]
    assert list(converted.columns) == list(embedded.columns) and len(converted) == 200
    # The same seed and data train the same model in the run worker as in process.
    np.testing.assert_allclose(np.stack(converted["my_image_search_model_simclr"]), np.stack(embedded["my_image_search_model_simclr"]), atol=1e-4)
    searched = remote_results[6]
    assert len(searched) == 200 and list(searched.columns) == list(tutorial_results[6].columns)
    printed = remote_results[7]
    assert printed["image_path"].tolist() == tutorial_results[7]["image_path"].tolist()
    assert printed["my_image_search_model_simclr_similarity1"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    local = printed.attrs["thanosql.print_image"]["paths"]
    assert all(Path(p).is_file() and Path(p).stat().st_size > 0 for p in local), "PRINT IMAGE's images come back"


def test_statements_ran_as_dagster_runs_heavy_ones_launched_by_the_daemon(stack, remote_results):
    import dagster as dg

    instance = stack.instance()
    # Training and downloads: `statement` runs the daemon's run launcher started.
    launched = instance.get_runs(dg.RunsFilter(job_name="statement"))
    assert sorted(run.tags["thanosql/statement"].split()[0] for run in launched) == ["BUILD", "GET"]
    assert {run.tags["thanosql/placement"] for run in launched} == {"launcher"}
    # The light ones (two small COPYs, a CONVERT of 200 images): runs of the SQL server, on the same instance.
    in_server = instance.get_runs(dg.RunsFilter(tags={"thanosql/placement": "server"}))
    assert sorted(run.tags["thanosql/statement"].split()[0] for run in in_server) == ["CONVERT", "COPY", "COPY"]
    assert {run.status for run in [*launched, *in_server]} == {dg.DagsterRunStatus.SUCCESS}
    keys = {key.to_user_string() for key in instance.get_asset_keys()}
    assert {"dataset/mnist_data", "table/mnist_train", "model/my_image_search_model", "collection/mnist_test/my_image_search_model_simclr_vectors"} <= keys
    # The webserver's code location was reloaded (in the background): the new objects are assets in the UI.
    stack.settled()
    answer = httpx.post(f"{stack.dagster_url}/graphql", json={"query": "{ assetNodes { assetKey { path } } }"}, timeout=30).json()
    shown = {"/".join(node["assetKey"]["path"]) for node in answer["data"]["assetNodes"]}
    assert "embedding/mnist_test/my_image_search_model_simclr" in shown
    # MLflow's server holds the registered model with its serving alias.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack.env()["THANOSQL_MLFLOW_URI"])
    assert str(client.get_model_version_by_alias("my_image_search_model", "serving").version) == "1"


def test_without_a_valid_token_nothing_runs(stack, remote_results):
    import thanosql

    instance = stack.instance()
    runs_before = len(instance.get_runs())
    body = {"sql": "COPY intruder FROM 'thanosql-dataset/mnist_data/mnist_test.csv'"}
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = httpx.post(f"{stack.sql_url}/v1/statements", json=body, headers=headers, timeout=30)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{stack.sql_url}/v1/images", params={"path": "thanosql-dataset/mnist_data/test/923.jpg"}).status_code == 401
    for api_token, said in ((None, "needs an API token, and none was sent"), ("not-a-token", "refused the API token")):
        with pytest.raises(ThanoSQLError) as caught:
            thanosql.connect(url=stack.sql_url, api_token=api_token, progress=False).execute(body["sql"])
        assert said in caught.value.message and "--api-token" in caught.value.hint
    assert len(instance.get_runs()) == runs_before


def test_paths_outside_the_workspace_are_refused(stack, remote, remote_results):
    for sql, col in [
        ('COPY stolen OPTIONS (overwrite=True) FROM "/etc/passwd"', 43),
        ("COPY stolen FROM '../../../etc/passwd'", 18),
        ("SEARCH IMAGE images='/etc/hostname' USING my_image_search_model AS SELECT * FROM mnist_test", 21),
    ]:
        with pytest.raises(PathNotAllowedError) as caught:
            remote.execute(sql)
        assert caught.value.line == 1 and caught.value.col == col, str(caught.value)
        assert "outside the workspace" in str(caught.value)
    with pytest.raises(Exception, match="stolen"):
        remote.execute("SELECT * FROM stolen")
    token = remote.api_token
    response = httpx.get(f"{stack.sql_url}/v1/images", params={"path": "/etc/hostname"}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_long_results_stream(remote, remote_results):
    chunks = list(remote.stream("SELECT image_path, label FROM mnist_train"))
    assert sum(len(frame) for _, frame in chunks) == 1000
    assert list(chunks[0][1].columns) == ["image_path", "label"]


def test_progress_of_a_running_statement_is_reported(stack, token, remote_results):
    import threading
    import time
    import uuid

    statement_id = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "sql": "BUILD MODEL progress_model USING SimCLR OPTIONS (max_epochs=3) AS SELECT * FROM mnist_train",
        "statement_id": statement_id,
    }
    answer = {}
    worker = threading.Thread(
        target=lambda: answer.update(response=httpx.post(f"{stack.sql_url}/v1/statements", json=body, headers=headers, timeout=600))
    )
    worker.start()
    seen, statuses = [], set()
    while worker.is_alive():
        response = httpx.get(f"{stack.sql_url}/v1/statements/{statement_id}", headers=headers, timeout=10)
        if response.status_code == 200:
            report = response.json()
            statuses.add(report["status"])
            seen = report["messages"] or seen
        time.sleep(0.3)
    worker.join()
    assert answer["response"].status_code == 200, answer["response"].text
    assert any("epoch" in message for message in seen), seen
    assert statuses & {"QUEUED", "STARTING", "STARTED", "RUNNING"}


def test_the_notebook_magic_talks_to_the_server(stack, token, remote_results):
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython() or get_ipython()  # one global test shell per process
    shell.run_line_magic("load_ext", "thanosql")
    shell.run_line_magic("thanosql", f"URL={stack.sql_url}")
    shell.run_line_magic("thanosql", f"API_TOKEN={token}")
    try:
        result = shell.run_cell_magic("thanosql", "", "SELECT label, count(*) AS n FROM mnist_test GROUP BY label ORDER BY label")
        assert result["n"].tolist() == [20] * 10
    finally:
        magics = shell.magics_manager.registry["ThanoSQLMagics"]
        magics.url, magics._connection = None, None  # the IPython shell is shared with the other notebook tests


def test_classifiers_over_http_on_postgresql_mlflow_and_qdrant_servers(stack, remote, remote_results):
    import dagster as dg

    with stack.explained():
        remote.execute(
            "BUILD MODEL digits USING ResNet18 OPTIONS (base_model='my_image_search_model', max_epochs=1) AS SELECT * FROM mnist_train"
        )
        predicted = remote.execute("PREDICT USING digits OPTIONS (top_k=2) AS SELECT * FROM mnist_test")
    assert len(predicted) == 200 and {"predicted", "confidence", "predicted_2", "confidence_2"} <= set(predicted.columns)
    assert predicted["predicted"].dtype == predicted["label"].dtype
    unsure = remote.execute("SELECT image_path FROM (PREDICT USING digits AS SELECT * FROM mnist_test) AS p WHERE confidence < 0.99")
    assert set(unsure["image_path"]) == set(predicted.loc[predicted["confidence"] < 0.99, "image_path"])
    saved = remote.execute("PREDICT USING digits OPTIONS (table_name='test_predictions') AS SELECT * FROM mnist_test")
    assert len(saved) == 200 and len(remote.execute("SELECT * FROM test_predictions")) == 200
    metrics = remote.execute("EVALUATE USING digits AS SELECT * FROM mnist_test")
    assert list(metrics["metrics"]) == ["Accuracy", "macro-Recall", "macro-Precision", "macro-f1-score"]
    assert float(metrics["value"].iloc[0]) == pytest.approx((predicted["predicted"] == predicted["label"]).mean())
    instance = stack.instance()
    key = dg.AssetCheckKey(dg.AssetKey(["model", "digits"]), "evaluation")
    assert key in instance.event_log_storage.get_latest_asset_check_execution_by_key([key])
    keys = {key.to_user_string() for key in instance.get_asset_keys()}
    assert {"model/digits", "table/test_predictions"} <= keys


def test_list_statements_over_http_on_postgresql(remote, remote_results):
    models = remote.execute("LIST MODEL")
    assert list(models.columns) == ["name", "class_name", "last_updated_utc", "version", "trained_on", "quality"]
    assert "my_image_search_model" in set(models["name"])
    simclr = remote.execute("SELECT name, version FROM (LIST MODEL) AS m WHERE class_name = 'SimCLR'")
    assert "my_image_search_model" in set(simclr["name"]) and set(models.loc[models["class_name"] == "SimCLR", "name"]) == set(simclr["name"])
    tables = remote.execute("SELECT table_name, rows FROM (LIST TABLE) AS t WHERE table_name LIKE 'mnist%' ORDER BY table_name")
    assert tables.values.tolist() == [["mnist_test", 200], ["mnist_train", 1000]]


def _ui_assets(stack) -> tuple[set[str], set[str]]:
    """What the Dagster UI lists, once the code location reloads the server runs in the background
    are done: the asset graph of the code location, and the asset catalog (history included)."""
    stack.settled()
    query = "{ assetNodes { assetKey { path } } assetsOrError { ... on AssetConnection { nodes { key { path } } } } }"
    answer = httpx.post(f"{stack.dagster_url}/graphql", json={"query": query}, timeout=30).json()["data"]
    graph = {"/".join(node["assetKey"]["path"]) for node in answer["assetNodes"]}
    catalog = {"/".join(node["key"]["path"]) for node in answer["assetsOrError"]["nodes"]}
    return graph, catalog


def test_sql_statements_pass_through_to_postgresql_and_show_in_the_ui(stack, remote, remote_results):
    import dagster as dg

    with stack.explained():
        remote.execute("CREATE TABLE pg_eights AS SELECT * FROM mnist_train WHERE label = 8")
        remote.execute("INSERT INTO pg_eights SELECT * FROM mnist_train WHERE label = 9 LIMIT 3")
        remote.execute("UPDATE pg_eights SET label = 99 WHERE label = 9")
        remote.execute("DELETE FROM pg_eights WHERE label = 99")
        remote.execute("ALTER TABLE pg_eights RENAME TO pg_only_eights")
        remote.execute("CREATE VIEW pg_sevens AS SELECT * FROM mnist_train WHERE label = 7")
    assert remote.execute("SELECT count(*) AS n FROM pg_only_eights")["n"].item() == 100
    assert remote.execute("SELECT count(*) AS n FROM pg_sevens")["n"].item() == 100
    records = stack.instance().fetch_materializations(dg.AssetKey(["table", "pg_only_eights"]), limit=10).records
    assert [record.asset_materialization.metadata["statement"].value.split()[0] for record in records] == ["ALTER"]
    graph, catalog = _ui_assets(stack)
    assert {"table/pg_only_eights", "table/pg_sevens"} <= graph and "table/pg_only_eights" in catalog
    assert not [key for key in graph | catalog if key == "table/pg_eights"]
    with pytest.raises(ThanoSQLError, match="RETURNING"):
        remote.execute("DELETE FROM pg_only_eights RETURNING *")

    remote.execute("DROP VIEW pg_sevens")
    remote.execute("DROP TABLE pg_only_eights")
    graph, catalog = _ui_assets(stack)
    assert not [key for key in graph | catalog if "pg_" in key], graph | catalog


def test_a_partitioned_convert_runs_one_launched_run_per_partition_then_the_switch(stack, remote, remote_results):
    import dagster as dg

    convert = "CONVERT USING my_image_search_model OPTIONS (table_name='split_images', partitions=2) AS SELECT * FROM mnist_test"
    with stack.explained():
        converted = remote.execute(convert)
    assert len(converted) == 200 and converted["my_image_search_model_simclr"].notna().all()
    # The embedded tutorial's CONVERT of the same rows (an unpartitioned one) gave the same vectors.
    embedded = remote.execute("SELECT image_path, my_image_search_model_simclr FROM mnist_test")
    by_image = dict(zip(embedded["image_path"], embedded["my_image_search_model_simclr"]))
    for image, vector in zip(converted["image_path"], converted["my_image_search_model_simclr"]):
        np.testing.assert_allclose(vector, by_image[image], atol=1e-5)

    instance = stack.instance()
    partitions = instance.get_run_records(dg.RunsFilter(job_name="embedding_partition"))
    assert sorted(record.dagster_run.tags["thanosql/partition"] for record in partitions) == ["0", "1"]
    assert {record.dagster_run.status for record in partitions} == {dg.DagsterRunStatus.SUCCESS}
    assert {record.dagster_run.tags["thanosql/kind"] for record in partitions} == {"embedding_partition"}  # what the k8s queue limits
    generation = partitions[0].dagster_run.tags["thanosql/generation"]
    [switch] = instance.get_run_records(dg.RunsFilter(job_name="statement", tags={"thanosql/generation": generation}))
    assert switch.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert switch.start_time >= max(record.end_time for record in partitions)  # the switch follows the last partition
    records = instance.fetch_materializations(dg.AssetKey(["embedding", "split_images", "my_image_search_model_simclr"]), limit=10).records
    assert sorted(record.partition_key for record in records) == ["0", "1"]
    search = "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM split_images"
    assert remote.execute(search)["my_image_search_model_simclr_similarity1"].notna().all()


def test_delete_model_and_drop_table_leave_no_dangling_assets_in_the_ui(stack, remote, remote_results):
    # Runs last in this module: it removes what it made, and nothing of the tutorial.
    with stack.explained():
        remote.execute('COPY scrap_table OPTIONS (overwrite=True) FROM "thanosql-dataset/mnist_data/mnist_test.csv"')
        remote.execute("BUILD MODEL scrap_model USING SimCLR OPTIONS (max_epochs=1) AS SELECT * FROM mnist_train WHERE label < 2")
        remote.execute("CONVERT USING scrap_model OPTIONS (table_name='scrap_table') AS SELECT * FROM scrap_table")
        remote.execute("CONVERT USING my_image_search_model OPTIONS (table_name='scrap_table') AS SELECT * FROM scrap_table")
    graph, catalog = _ui_assets(stack)
    assert {"model/scrap_model", "table/scrap_table", "embedding/scrap_table/scrap_model_simclr"} <= graph & catalog

    assert remote.execute("DELETE MODEL scrap_model") is None
    graph, catalog = _ui_assets(stack)
    assert not [key for key in graph | catalog if "scrap_model" in key], graph | catalog
    assert "embedding/scrap_table/my_image_search_model_simclr" in graph & catalog
    columns = list(remote.execute("SELECT * FROM scrap_table LIMIT 1").columns)
    assert columns == ["image_path", "filename", "label", "my_image_search_model_simclr"]
    from mlflow import MlflowClient

    assert MlflowClient(tracking_uri=stack.env()["THANOSQL_MLFLOW_URI"]).search_registered_models(filter_string="name = 'scrap_model'") == []

    assert remote.execute("DROP TABLE scrap_table") is None
    graph, catalog = _ui_assets(stack)
    assert not [key for key in graph | catalog if "scrap" in key], graph | catalog
    assert {"model/my_image_search_model", "table/mnist_test", "embedding/mnist_test/my_image_search_model_simclr"} <= graph & catalog
    search = "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM mnist_test"
    assert len(remote.execute(search)) == 200
