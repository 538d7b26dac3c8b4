"""Where production mode runs a statement that creates or changes objects: light work in the SQL
server, heavy work on the run launcher. Planned on the tutorial's workspace (real DuckDB, catalog,
files); placing a plan runs nothing."""

from __future__ import annotations

import pytest

from resources import Settings, build_resources
from sql_frontend.execution.placement import Limits, launcher_tags, place
from sql_frontend.language.parser import parse_statement
from sql_frontend.planning.planner import Planner

DEFAULTS = Limits(max_bytes=Settings.server_max_bytes, max_images=Settings.server_max_images)


@pytest.fixture(scope="module")
def resources(tutorial_home):
    return build_resources(Settings.from_env(tutorial_home))


@pytest.fixture(scope="module")
def placed(resources):
    planner = Planner.for_resources(resources)

    def placed(sql: str, limits: Limits = DEFAULTS):
        return place(planner.plan(parse_statement(sql)).request, resources, limits)

    return placed


COPY_TRAIN = "COPY train_copy FROM 'thanosql-dataset/mnist_data/mnist_train.csv'"


def test_a_small_copy_runs_in_the_server(placed):
    placement = placed(COPY_TRAIN)
    assert placement.in_server and placement.tag == "server"


def test_a_copy_of_more_bytes_than_the_limit_is_launched(placed, tutorial_home):
    size = (tutorial_home / "thanosql-dataset/mnist_data/mnist_train.csv").stat().st_size
    assert placed(COPY_TRAIN, Limits(max_bytes=size, max_images=0)).in_server
    placement = placed(COPY_TRAIN, Limits(max_bytes=size - 1, max_images=0))
    assert not placement.in_server and placement.tag == "launcher"
    assert placement.reason == f"copies {size:,} bytes (more than {size - 1:,})"


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("BUILD MODEL m USING SimCLR OPTIONS (max_epochs=1) AS SELECT * FROM mnist_train", "trains a model"),
        ("GET THANOSQL DATASET mnist_data OPTIONS (overwrite=True)", "downloads or loads files"),
    ],
)
def test_training_and_downloads_are_launched_whatever_their_size(placed, sql, reason):
    placement = placed(sql, Limits(max_bytes=2**40, max_images=10**9))
    assert not placement.in_server and placement.reason == reason


def test_a_convert_is_launched_above_the_image_limit(placed, resources):
    sql = "CONVERT USING my_image_search_model OPTIONS (table_name='train_embedded') AS SELECT * FROM mnist_train WHERE label < 5"
    images = int(resources["warehouse"].query("SELECT count(*) AS n FROM mnist_train WHERE label < 5")["n"].iloc[0])
    assert 0 < images < 1000  # the query's rows are counted, not the table's
    assert placed(sql, Limits(max_bytes=0, max_images=images)).in_server
    placement = placed(sql, Limits(max_bytes=0, max_images=images - 1))
    assert not placement.in_server and placement.reason == f"runs a model on {images} images (more than {images - 1})"


def test_a_copy_into_an_embedded_table_counts_its_rows_as_images(placed):
    # mnist_test holds CONVERT's embedding column: a COPY over it embeds the new rows' images.
    sql = "COPY mnist_test OPTIONS (overwrite=True) FROM 'thanosql-dataset/mnist_data/mnist_test.csv'"
    assert placed(sql).in_server
    placement = placed(sql, Limits(max_bytes=2**30, max_images=100))
    assert not placement.in_server and placement.reason == "refreshes embeddings of 201 rows"


def test_a_folder_is_counted_by_its_image_files(placed, tutorial_home):
    files = len(list((tutorial_home / "thanosql-dataset/mnist_data/test").glob("*.jpg")))
    sql = "CREATE TABLE folder_images USING my_image_search_model OPTIONS (file_type=['.jpg']) FROM 'thanosql-dataset/mnist_data/test'"
    assert placed(sql, Limits(max_bytes=0, max_images=files)).in_server
    assert placed(sql, Limits(max_bytes=0, max_images=files - 1)).reason == f"runs a model on {files:,} images (more than {files - 1:,})"


def test_a_build_on_several_gpus_asks_the_kubernetes_launcher_for_them(resources):
    import json

    planner = Planner.for_resources(resources)

    def tags(options: str) -> dict:
        sql = f"BUILD MODEL sized USING SimCLR OPTIONS ({options}) AS SELECT * FROM mnist_train"
        return launcher_tags(planner.plan(parse_statement(sql)).request)

    from dagster_k8s.job import get_user_defined_k8s_config

    sized = tags("devices=4")
    assert json.loads(sized["dagster-k8s/config"]) == {"container_config": {"resources": {"limits": {"nvidia.com/gpu": 4}}}}
    assert get_user_defined_k8s_config(sized).container_config == {"resources": {"limits": {"nvidia.com/gpu": 4}}}  # as K8sRunLauncher reads it
    assert tags("devices=1") == {} and tags("devices=2, device='cpu'") == {}

    from thanosql_assets.defs.models import retraining_schedule

    scheduled = planner.plan(parse_statement("BUILD MODEL sized USING SimCLR OPTIONS (devices=4, schedule='0 3 * * *') AS SELECT * FROM mnist_train"))
    [spec] = scheduled.request.specs
    assert retraining_schedule(spec, spec.schedule).tags == sized  # its retraining gets the GPUs again
