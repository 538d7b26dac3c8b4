"""Classifiers in SQL: BUILD MODEL ... USING <classifier>, PREDICT, EVALUATE, FIT MODEL and
PRINT IMAGE with predictions, through the Python API on real stores, and their bad inputs
(each refused with a hint, changing nothing)."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest

from resources import Settings, build_resources
from tests.sql_frontend.test_bad_input_catalogue import refused, refused_naming
from tests.workspace_copies import copy_workspace
from thanosql.errors import ThanoSQLError


@pytest.fixture
def conn(classifier_home):
    import thanosql

    return thanosql.connect(classifier_home)


@pytest.fixture
def scratch(classifier_home, tmp_path):
    import thanosql

    home = tmp_path / "workspace"
    copy_workspace(classifier_home, home)
    return thanosql.connect(home)


def _instance(conn) -> dg.DagsterInstance:
    return Settings.from_env(conn.settings.home).dagster_instance()


def _metadata(conn, key: list[str]) -> dict:
    return _instance(conn).get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.metadata


def _definitions(conn) -> dg.Definitions:
    from thanosql_assets.defs.objects import build_definitions, catalog_specs

    resources = build_resources(conn.settings)
    return build_definitions(catalog_specs(resources["catalog"]), resources)


def _upstream(conn, key: list[str]) -> set[tuple[str, ...]]:
    graph = _definitions(conn).resolve_asset_graph()
    return {tuple(parent.path) for parent in graph.get(dg.AssetKey(key)).parent_keys}


# -- BUILD -----------------------------------------------------------------------------------


def test_build_registers_a_classifier_with_held_out_accuracy_and_lineage(conn):
    metadata = _metadata(conn, ["model", "digits"])
    assert metadata["classes"].value == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    assert metadata["quality/holdout_accuracy"].value >= 0.85  # 100 held-out digits, 3 epochs from SimCLR
    assert "SimCLR" in metadata["network"].value and metadata["promoted"].value is True
    assert _upstream(conn, ["model", "digits"]) == {("table", "mnist_train"), ("model", "my_image_search_model")}
    client = build_resources(conn.settings)["model_registry"].client()
    version = client.get_model_version_by_alias("digits", "serving")
    assert "holdout_accuracy" in client.get_run(version.run_id).data.metrics
    assert "holdout_confusion_matrix.png" in {item.path for item in client.list_artifacts(version.run_id)}


def test_build_from_scratch_uses_the_torchvision_network(conn):
    metadata = _metadata(conn, ["model", "zero_or_one"])
    assert metadata["classes"].value == "0, 1"
    assert "resnet18" in metadata["network"].value.lower()
    assert _upstream(conn, ["model", "zero_or_one"]) == {("table", "mnist_train")}


def test_epochs_is_accepted_as_max_epochs(scratch):
    scratch.execute(
        "BUILD MODEL quick USING ResNet18 OPTIONS (epochs=1, base_model='my_image_search_model', holdout=0, self_training=False) AS SELECT * FROM mnist_test"
    )
    assert _metadata(scratch, ["model", "quick"])["epochs"].value == 1


def test_labels_of_one_row_each_train_without_a_held_out_measure(scratch, caplog):
    # Every label has a single row: none to spare for the held-out rows (before, the measure crashed on none).
    caplog.set_level("INFO", logger="thanosql.progress")
    scratch.execute(
        "BUILD MODEL by_file USING ResNet18 OPTIONS (epochs=1, base_model='my_image_search_model', self_training=False) "
        "AS SELECT image_path, filename AS label FROM mnist_test ORDER BY filename LIMIT 60"
    )
    metadata = _metadata(scratch, ["model", "by_file"])
    assert not any(name.startswith("quality/") for name in metadata) and len(metadata["classes"].value) == 60
    assert "holding out no rows (no label has rows to spare): the model's accuracy is not measured" in caplog.messages


TEN_PER_DIGIT = (
    "SELECT image_path, label FROM (SELECT *, row_number() OVER (PARTITION BY label ORDER BY image_path) AS n FROM mnist_train) AS t WHERE n <= 10"
)


def test_few_labels_self_train_on_the_other_images_of_the_simclr_model(scratch):
    base = "BUILD MODEL {} USING ResNet18 OPTIONS (base_model='my_image_search_model', holdout=0{}) AS " + TEN_PER_DIGIT
    scratch.execute(base.format("few", ""))
    scratch.execute(base.format("few_labelled_only", ", self_training=False"))
    metadata = _metadata(scratch, ["model", "few"])
    assert metadata["train_images"].value == 100 and metadata["unlabelled_images"].value == 900  # mnist_train's other digits
    assert 700 <= metadata["pseudo_labelled"].value <= 900
    assert "pseudo_labelled" not in _metadata(scratch, ["model", "few_labelled_only"])
    assert _upstream(scratch, ["model", "few"]) == {("table", "mnist_train"), ("model", "my_image_search_model")}
    accuracy = {
        model: float(scratch.execute(f"EVALUATE USING {model} AS SELECT * FROM mnist_test").set_index("metrics")["value"]["Accuracy"])
        for model in ("few", "few_labelled_only")
    }
    assert accuracy["few"] > accuracy["few_labelled_only"], accuracy


# -- PREDICT ---------------------------------------------------------------------------------


def test_predict_adds_the_label_and_its_probability(conn):
    rows = conn.execute("PREDICT USING digits AS SELECT * FROM mnist_test")
    table = conn.execute("SELECT * FROM mnist_test")
    assert list(rows.columns) == [*table.columns, "predicted", "confidence"]
    assert rows[list(table.columns)].drop(columns="my_image_search_model_simclr").equals(table.drop(columns="my_image_search_model_simclr"))
    assert len(rows) == 200 and rows["predicted"].dtype == rows["label"].dtype
    assert rows["confidence"].between(0.1, 1).all()
    assert (rows["predicted"] == rows["label"]).mean() >= 0.85


def test_predict_top_k_ranks_labels_by_probability(conn):
    rows = conn.execute("PREDICT USING digits OPTIONS (top_k=3) AS SELECT image_path, label FROM mnist_test LIMIT 20")
    assert list(rows.columns)[2:] == ["predicted", "confidence", "predicted_1", "confidence_1", "predicted_2", "confidence_2", "predicted_3", "confidence_3"]
    assert (rows["predicted_1"] == rows["predicted"]).all() and np.allclose(rows["confidence_1"], rows["confidence"])
    assert (rows["confidence_1"] >= rows["confidence_2"]).all() and (rows["confidence_2"] >= rows["confidence_3"]).all()
    assert (rows[["predicted_1", "predicted_2", "predicted_3"]].nunique(axis=1) == 3).all()


def test_predict_nests_in_queries_and_joins_on_image_path(conn):
    every = conn.execute("PREDICT USING digits AS SELECT * FROM mnist_test")
    unsure = conn.execute("SELECT image_path, predicted, confidence FROM (PREDICT USING digits AS SELECT * FROM mnist_test) WHERE confidence < 0.9")
    assert sorted(unsure["image_path"]) == sorted(every.loc[every["confidence"] < 0.9, "image_path"])
    joined = conn.execute(
        "SELECT t.image_path, t.label, p.predicted FROM mnist_test AS t "
        "JOIN (PREDICT USING digits AS SELECT * FROM mnist_test) AS p ON t.image_path = p.image_path ORDER BY t.image_path"
    )
    assert len(joined) == 200 and (joined["predicted"].to_numpy() == every.sort_values("image_path")["predicted"].to_numpy()).all()


def test_predict_table_name_saves_an_asset_downstream_of_table_and_model(scratch):
    rows = scratch.execute("PREDICT USING digits OPTIONS (table_name='test_predictions') AS SELECT * FROM mnist_test")
    assert len(rows) == 200 and "predicted" in rows.columns
    saved = scratch.execute("SELECT predicted, count(*) AS n FROM test_predictions GROUP BY predicted")
    assert saved["n"].sum() == 200
    assert _upstream(scratch, ["table", "test_predictions"]) == {("table", "mnist_test"), ("model", "digits")}
    assert _metadata(scratch, ["table", "test_predictions"])["dagster/row_count"].value == 200
    (vector,) = [column for column in rows.columns if column.endswith("_simclr")]  # the tutorial's embedding, carried along
    preview = _metadata(scratch, ["table", "test_predictions"])["preview"].value
    assert "predicted" in preview and vector not in preview  # 128 numbers a row would fill the asset's page
    error = refused(scratch, "PREDICT USING digits OPTIONS (table_name='test_predictions') AS SELECT * FROM mnist_test")
    assert "overwrite" in error.hint
    scratch.execute("PREDICT USING digits OPTIONS (table_name='test_predictions', overwrite=True) AS SELECT * FROM mnist_test LIMIT 10")
    assert len(scratch.execute("SELECT * FROM test_predictions")) == 10


def test_print_image_captions_show_the_prediction(conn):
    from sql_frontend.interfaces.display import printed_images

    rows = conn.execute(
        "PRINT IMAGE AS (SELECT image_path, predicted, confidence FROM (PREDICT USING digits AS SELECT * FROM mnist_test) LIMIT 3)"
    )
    captions = [caption for _path, caption in printed_images(rows)]
    assert len(captions) == 3
    for caption, (label, confidence) in zip(captions, zip(rows["predicted"], rows["confidence"])):
        assert caption == f"predicted {label} ({confidence:.2f})"


# -- EVALUATE --------------------------------------------------------------------------------


def test_evaluate_returns_thanosql_metrics_logs_them_and_checks_the_asset(scratch):
    predicted = scratch.execute("PREDICT USING digits AS SELECT * FROM mnist_test")
    result = scratch.execute("EVALUATE USING digits AS SELECT * FROM mnist_test")
    assert list(result.columns) == ["metrics", "value"]
    assert list(result["metrics"]) == ["Accuracy", "macro-Recall", "macro-Precision", "macro-f1-score"]
    accuracy = float(result.loc[result["metrics"] == "Accuracy", "value"].iloc[0])
    assert accuracy == pytest.approx((predicted["predicted"] == predicted["label"]).mean())
    client = build_resources(scratch.settings)["model_registry"].client()
    version = client.get_model_version_by_alias("digits", "serving")
    assert float(version.tags["evaluation.Accuracy"]) == pytest.approx(accuracy, abs=1e-4)
    run_id = version.tags["evaluation.run_id"]
    assert "confusion_matrix.png" in {item.path for item in client.list_artifacts(run_id)}
    check = _instance(scratch).event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["model", "digits"]), "evaluation")]
    )
    record = check[dg.AssetCheckKey(dg.AssetKey(["model", "digits"]), "evaluation")]
    assert record.event.dagster_event.event_specific_data.metadata["Accuracy"].value == pytest.approx(accuracy, abs=1e-4)


def test_evaluate_of_two_classes_gives_the_binary_metrics(conn):
    result = conn.execute("EVALUATE USING zero_or_one AS SELECT * FROM mnist_test WHERE label IN (0, 1)")
    assert list(result["metrics"]) == ["accuracy", "ROCAUC", "Recall", "Precision", "f1-score", "Kappa", "MCC"]
    assert result["value"].between(-1, 1).all()


def test_the_evaluation_check_runs_the_last_evaluate_again(scratch):
    scratch.execute("EVALUATE USING zero_or_one AS SELECT * FROM mnist_test WHERE label IN (0, 1)")
    definitions = _definitions(scratch)
    key = dg.AssetCheckKey(dg.AssetKey(["model", "zero_or_one"]), "evaluation")
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(asset_check_selection={key}, asset_selection=set())
    result = job.execute_in_process(instance=_instance(scratch))
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and "accuracy" in evaluation.metadata


# -- FIT -------------------------------------------------------------------------------------


def test_fit_keeps_the_columns_the_model_was_built_with(scratch):
    scratch.execute("CREATE TABLE renamed AS SELECT image_path AS img, label AS digit FROM mnist_test")
    scratch.execute(
        "BUILD MODEL renamed_digits USING ResNet18 OPTIONS (epochs=1, base_model='my_image_search_model', self_training=False, "
        "image_col='img', label_col='digit') AS SELECT * FROM renamed"
    )
    scratch.execute("FIT MODEL renamed_digits_v2 USING renamed_digits OPTIONS (max_epochs=1) AS SELECT * FROM renamed")
    options = build_resources(Settings.from_env(scratch.settings.home))["catalog"].get("model", "renamed_digits_v2").spec["options"]
    assert (options["image_col"], options["label_col"]) == ("img", "digit")


def test_fit_trains_a_copy_further_as_a_new_model(scratch):
    scratch.execute("FIT MODEL digits_v2 USING digits OPTIONS (max_epochs=1) AS SELECT * FROM mnist_test")
    metadata = _metadata(scratch, ["model", "digits_v2"])
    assert metadata["classes"].value == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    assert _upstream(scratch, ["model", "digits_v2"]) == {("table", "mnist_test"), ("model", "digits")}
    assert _metadata(scratch, ["model", "digits"])["model_version"].value == 1  # the old model is untouched
    rows = scratch.execute("PREDICT USING digits_v2 AS SELECT * FROM mnist_train LIMIT 50")
    assert (rows["predicted"] == rows["label"]).mean() >= 0.7


def test_fit_continues_a_simclr_model(scratch):
    scratch.execute("FIT MODEL search_v2 USING my_image_search_model OPTIONS (max_epochs=1) AS SELECT * FROM mnist_test")
    assert _upstream(scratch, ["model", "search_v2"]) == {("table", "mnist_test"), ("model", "my_image_search_model")}
    scratch.execute("CONVERT USING search_v2 OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test")
    hits = scratch.execute(
        "SELECT image_path FROM (SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING search_v2 AS SELECT * FROM mnist_test) "
        "ORDER BY search_v2_simclr_similarity1 DESC LIMIT 1"
    )
    assert hits["image_path"].iloc[0].endswith("923.jpg")


# -- bad input: refused with a hint, changing nothing ----------------------------------------

BAD = [
    pytest.param("BUILD MODEL c USING ResNet18 AS SELECT image_path FROM mnist_train", ["label_col 'label'", "not a column"], id="missing-label-col"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (label_col='digit') AS SELECT * FROM mnist_train", ["digit", "column with the labels"], id="unknown-label-col"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (image_col='label') AS SELECT * FROM mnist_train", ["holds numbers", "not image paths"], id="numbers-as-images"),
    pytest.param("PREDICT USING digits OPTIONS (image_col='label') AS SELECT * FROM mnist_test", ["holds numbers", "not image paths"], id="predict-numbers-as-images"),
    pytest.param(
        "BUILD MODEL c USING ResNet18 OPTIONS (label_col='my_image_search_model_simclr') AS SELECT * FROM mnist_test",
        ["array values", "labels are integers, text or booleans"], id="array-labels",
    ),
    pytest.param("BUILD MODEL c USING ResNet18 AS SELECT * FROM mnist_train WHERE label = 3", ["one label", "two or more"], id="one-class"),
    pytest.param("BUILD MODEL c USING ResNet18 AS SELECT image_path, label / 2.0 AS label FROM mnist_train", ["decimals", "CAST"], id="float-labels"),
    pytest.param(
        "BUILD MODEL c USING ResNet18 AS SELECT image_path, CASE WHEN label = 1 THEN NULL ELSE label END AS label FROM mnist_train",
        ["has NULL labels", "IS NOT NULL"], id="null-labels",
    ),
    pytest.param("BUILD MODEL c USING ResNet19 AS SELECT * FROM mnist_train", ["ResNet19", "ConvNeXt_Tiny", "ResNet18", "ViT", "SimCLR"], id="unknown-algorithm"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (base_model='digits') AS SELECT * FROM mnist_train", ["digits", "classifier", "SimCLR"], id="base-model-classifier"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (base_model='nothing') AS SELECT * FROM mnist_train", ["nothing", "does not exist", "my_image_search_model"], id="base-model-missing"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (base_model='my_image_search_model', input_size=64) AS SELECT * FROM mnist_train", ["input_size"], id="base-model-input-size"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (self_training=True) AS SELECT * FROM mnist_train", ["self_training", "base_model"], id="self-training-without-base-model"),
    pytest.param("FIT MODEL c USING digits OPTIONS (self_training=False) AS SELECT * FROM mnist_train", ["self_training", "cannot change"], id="fit-self-training"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (epochs=2, max_epochs=3) AS SELECT * FROM mnist_train", ["twice", "epochs"], id="epochs-twice"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (temperature=0.5) AS SELECT * FROM mnist_train", ["temperature", "max_epochs"], id="simclr-option-on-classifier"),
    pytest.param("BUILD MODEL digits USING ResNet18 AS SELECT * FROM mnist_train", ["already exists"], id="classifier-exists"),
    pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (label_col='image_path') AS SELECT * FROM mnist_train", ["both name column 'image_path'"], id="label-col-is-image-col"),
    pytest.param("PREDICT USING my_image_search_model AS SELECT * FROM mnist_test", ["SimCLR", "PREDICT needs a classifier"], id="predict-with-simclr"),
    pytest.param("EVALUATE USING my_image_search_model AS SELECT * FROM mnist_test", ["SimCLR", "classifier"], id="evaluate-with-simclr"),
    pytest.param(
        "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING digits AS SELECT * FROM mnist_test",
        ["classifier", "SEARCH needs a SimCLR model"], id="search-with-classifier",
    ),
    pytest.param("CONVERT USING digits AS SELECT * FROM mnist_test", ["classifier", "SimCLR"], id="convert-with-classifier"),
    pytest.param("PREDICT USING nothing AS SELECT * FROM mnist_test", ["nothing", "does not exist"], id="predict-missing-model"),
    pytest.param("PREDICT USING digits OPTIONS (overwrite=True) AS SELECT * FROM mnist_test", ["saves no table without table_name"], id="predict-overwrite-alone"),
    pytest.param("PREDICT USING digits OPTIONS (top_k=11) AS SELECT * FROM mnist_test", ["top_k=11", "10 classes"], id="top-k-too-large"),
    pytest.param("PREDICT USING digits OPTIONS (top_k=0) AS SELECT * FROM mnist_test", ["top_k", "at least 1"], id="top-k-zero"),
    pytest.param("PREDICT USING digits OPTIONS (image_col='img') AS SELECT * FROM mnist_test", ["img", "not a column"], id="predict-image-col"),
    pytest.param("PREDICT USING digits AS SELECT image_path, label AS predicted FROM mnist_test", ["predicted", "rename"], id="predict-column-clash"),
    pytest.param("PREDICT USING digits OPTIONS (table_name='mnist_train') AS SELECT * FROM mnist_test", ["mnist_train", "not made by PREDICT"], id="predict-over-table"),
    pytest.param("PREDICT USING digits OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test", ["mnist_test", "reads"], id="predict-over-own-table"),
    pytest.param(
        "SELECT * FROM (PREDICT USING digits OPTIONS (table_name='p') AS SELECT * FROM mnist_test)", ["table_name", "on its own"], id="nested-table-name",
    ),
    pytest.param("EVALUATE USING digits AS SELECT image_path FROM mnist_test", ["label_col", "not a column"], id="evaluate-missing-label"),
    pytest.param("EVALUATE USING digits AS SELECT image_path, label + 10 AS label FROM mnist_test", ["does not know", "10"], id="evaluate-unknown-labels"),
    pytest.param("EVALUATE USING digits AS SELECT * FROM mnist_test WHERE label > 100", ["no rows"], id="evaluate-no-rows"),
    pytest.param("FIT MODEL d2 USING digits AS SELECT image_path, label + 10 AS label FROM mnist_test", ["does not know", "10"], id="fit-new-labels"),
    pytest.param("FIT MODEL d2 USING digits AS SELECT image_path, CAST(label AS TEXT) AS label FROM mnist_test", ["does not know", "'1'"], id="fit-label-type"),
    pytest.param("FIT MODEL digits USING digits AS SELECT * FROM mnist_test", ["another name"], id="fit-same-name"),
    pytest.param("FIT MODEL d2 USING nothing AS SELECT * FROM mnist_test", ["nothing", "does not exist"], id="fit-missing-model"),
    pytest.param(
        "FIT MODEL d2 USING digits OPTIONS (input_size=64) AS SELECT * FROM mnist_test", ["input_size", "cannot change", "digits"], id="fit-shape-option"
    ),
]


@pytest.mark.parametrize("sql, words", BAD)
def test_bad_classifier_input_is_refused_cleanly(conn, sql, words):
    refused_naming(conn, sql, words)


def test_statements_print_and_run_from_the_cli(classifier_home, capsys):
    from sql_frontend.interfaces.cli import main

    script = classifier_home / "classify.sql"
    script.write_text(
        "PREDICT USING digits OPTIONS (top_k=2) AS SELECT image_path, label FROM mnist_test LIMIT 3;\n"
        "EVALUATE USING digits AS SELECT * FROM mnist_test;\n"
    )
    assert main(["--home", str(classifier_home), "run", str(script)]) == 0
    out = capsys.readouterr().out
    assert "predicted_2" in out and "macro-f1-score" in out


def test_errors_are_thanosql_errors(conn):
    with pytest.raises(ThanoSQLError):
        conn.execute("PREDICT USING digits AS SELECT * FROM no_such_table")
