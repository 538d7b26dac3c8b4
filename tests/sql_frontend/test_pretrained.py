"""Pretrained classifiers in SQL: UPLOAD MODEL of a Hugging Face save_pretrained directory or of
torchvision weights, then PREDICT, EVALUATE and CREATE TABLE ... USING with them, through the
Python API on real stores (models the tests make: nothing is downloaded), and the bad inputs
(each refused with a hint, changing nothing)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from resources import Settings
from tests.sql_frontend.test_bad_input_catalogue import refused, refused_naming
from tests.tiny_models import COLOURS, colour_images, save_colour_vit, save_tiny_clip, write_image
from tests.workspace_copies import copy_workspace
from thanosql.errors import DataError, ObjectNotFoundError, OptionError, SQLError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UPLOAD_VIT = "UPLOAD MODEL colours OPTIONS (framework='huggingface') FROM \"models/colour-vit\""


@pytest.fixture(scope="session")
def pretrained_home(tutorial_home, tmp_path_factory):
    """The tutorial's workspace plus a tiny colour-naming ViT in models/, 12 colour images in
    colours/ (a table `colours` of them with their names), and that ViT uploaded as `colours`."""
    import thanosql

    home = tmp_path_factory.mktemp("pretrained") / "workspace"
    copy_workspace(tutorial_home, home)
    save_colour_vit(home / "models" / "colour-vit")
    images, classes = colour_images(12, seed=1000)
    rows = []
    for index, (pixels, target) in enumerate(zip(images, classes)):
        suffix = (".png", ".jpg")[index % 2]
        path = write_image(home / "colours" / ("more" if index >= 8 else "") / f"{index}{suffix}", pixels, **({"quality": 95} if suffix == ".jpg" else {}))
        rows.append({"image_path": str(path.relative_to(home)), "colour": COLOURS[target]})
    pd.DataFrame(rows).to_csv(home / "colours.csv", index=False)
    conn = thanosql.connect(home)
    conn.execute('COPY colours FROM "colours.csv"')
    conn.execute(UPLOAD_VIT)
    return home


@pytest.fixture
def conn(pretrained_home):
    import thanosql

    return thanosql.connect(pretrained_home)


@pytest.fixture
def scratch(pretrained_home, tmp_path):
    import thanosql

    home = tmp_path / "workspace"
    copy_workspace(pretrained_home, home)
    return thanosql.connect(home)


def _metadata(conn, key: list[str]) -> dict:
    instance = Settings.from_env(conn.settings.home).dagster_instance()
    return instance.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.metadata


def test_an_uploaded_hugging_face_model_is_a_model_asset_with_an_mlflow_version(conn):
    metadata = _metadata(conn, ["model", "colours"])
    assert metadata["class_name"].value == "User_HuggingFace"
    assert metadata["classes"].value == "red, green, blue"
    assert metadata["model_version"].value == 1 and metadata["source"].value == "models/colour-vit"
    assert metadata["network"].value.startswith("Hugging Face ViTForImageClassification")
    from resources import build_resources

    registry = build_resources(conn.settings)["model_registry"]
    assert registry.serving_version("colours") == "1"


def test_predict_with_an_uploaded_model_names_each_image_with_its_labels(conn):
    predicted = conn.execute("PREDICT USING colours OPTIONS (top_k=2) AS SELECT * FROM colours")
    assert list(predicted.columns) == ["image_path", "colour", "predicted", "confidence", "predicted_1", "confidence_1", "predicted_2", "confidence_2"]
    assert (predicted["predicted"] == predicted["colour"]).all()
    assert predicted["confidence"].between(0.34, 1).all() and (predicted["predicted_1"] == predicted["predicted"]).all()
    unsure = conn.execute("SELECT image_path FROM (PREDICT USING colours AS SELECT * FROM colours) AS p WHERE predicted = 'red'")
    assert set(unsure["image_path"]) == set(predicted.loc[predicted["colour"] == "red", "image_path"])


def test_evaluate_an_uploaded_model_on_named_labels(conn):
    metrics = conn.execute("EVALUATE USING colours OPTIONS (label_col='colour') AS SELECT * FROM colours")
    assert list(metrics["metrics"]) == ["Accuracy", "macro-Recall", "macro-Precision", "macro-f1-score"]
    assert float(metrics["value"].iloc[0]) == 1.0


def test_upload_again_with_overwrite_is_a_new_version(scratch):
    scratch.execute(UPLOAD_VIT.replace("framework='huggingface'", "framework='huggingface', overwrite=True"))
    assert _metadata(scratch, ["model", "colours"])["model_version"].value == 2


def test_torchvision_weights_upload_as_a_classifier_of_their_architecture(scratch):
    import torch
    import torchvision

    torch.manual_seed(0)
    network = torchvision.models.resnet18(weights=None, num_classes=3)
    torch.save(network.state_dict(), scratch.settings.home / "models" / "resnet18.pth")
    scratch.execute("UPLOAD MODEL resnet OPTIONS (framework='pytorch', algorithm='ResNet18') FROM 'models/resnet18.pth'")
    metadata = _metadata(scratch, ["model", "resnet"])
    assert metadata["class_name"].value == "User_PyTorch" and metadata["classes"].value == "0, 1, 2"
    predicted = scratch.execute("PREDICT USING resnet AS SELECT * FROM colours")
    assert len(predicted) == 12 and predicted["predicted"].isin(["0", "1", "2"]).all()


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, error, words",
    [
        pytest.param("UPLOAD MODEL m FROM 'models/colour-vit'", OptionError, ["framework"], id="no-framework"),
        pytest.param("UPLOAD MODEL m OPTIONS (framework='onnx') FROM 'models/colour-vit'", OptionError, ["framework", "huggingface"], id="unknown-framework"),
        pytest.param("UPLOAD MODEL m OPTIONS (framework='pytorch') FROM 'colours.csv'", OptionError, ["algorithm", "ResNet18"], id="pytorch-without-algorithm"),
        pytest.param("UPLOAD MODEL m OPTIONS (framework='pytorch', algorithm='SimCLR') FROM 'colours.csv'", OptionError, ["SimCLR"], id="pytorch-simclr"),
        pytest.param("UPLOAD MODEL m OPTIONS (framework='huggingface') FROM 'models/missing'", ObjectNotFoundError, ["does not exist"], id="missing"),
        pytest.param("UPLOAD MODEL m OPTIONS (framework='huggingface') FROM 'colours.csv'", ObjectNotFoundError, ["directory"], id="hf-file"),
        pytest.param("UPLOAD MODEL m OPTIONS (framework='huggingface') FROM 'colours'", DataError, ["config.json"], id="not-a-model-dir"),
        pytest.param("UPLOAD MODEL m OPTIONS (framework='pytorch', algorithm='ResNet18') FROM 'colours.csv'", DataError, ["colours.csv"], id="not-weights"),
        pytest.param(UPLOAD_VIT, SQLError, ["already exists", "overwrite=True to its OPTIONS to register it again"], id="exists"),
        pytest.param("UPLOAD MODEL my_image_search_model OPTIONS (framework='huggingface', overwrite=True) FROM 'models/colour-vit'", SQLError, ["BUILD MODEL"], id="replaces-a-trained-model"),
        pytest.param("CONVERT USING colours AS SELECT * FROM colours", SQLError, ["classifier", "User_HuggingFace"], id="convert-with-classifier"),
        pytest.param("FIT MODEL more USING colours AS SELECT * FROM colours", SQLError, ["uploaded"], id="fit-uploaded"),
        pytest.param("BUILD MODEL c USING ResNet18 OPTIONS (base_model='colours') AS SELECT * FROM mnist_train", SQLError, ["SimCLR"], id="base-model-uploaded"),
    ],
)
def test_bad_uploads_are_refused_and_change_nothing(conn, sql, error, words):
    refused_naming(conn, sql, words, error)


def test_a_text_model_and_weights_of_another_architecture_are_refused(scratch):
    import torch
    import torchvision
    from transformers import BertConfig, BertForMaskedLM

    home = scratch.settings.home
    BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(home / "models" / "bert")
    message = str(refused(scratch, "UPLOAD MODEL text OPTIONS (framework='huggingface') FROM 'models/bert'", DataError))
    assert "Bert" in message and "image" in message.lower()
    torch.save(torchvision.models.mobilenet_v3_large(weights=None, num_classes=3).state_dict(), home / "models" / "mobilenet.pth")
    message = str(refused(scratch, "UPLOAD MODEL wrong OPTIONS (framework='pytorch', algorithm='ResNet18') FROM 'models/mobilenet.pth'", DataError))
    assert "resnet18" in message.lower()


# -- seed 004: a folder of images to labels ------------------------------------------------------


def test_create_table_using_a_classifier_labels_every_image_under_a_folder(scratch):
    labels = scratch.execute("CREATE TABLE labels USING colours OPTIONS (path_type='folder', data_type='image') FROM 'colours'")
    assert list(labels.columns) == ["image_path", "filename", "predicted", "confidence"]
    assert len(labels) == 12 and sum(path.startswith("colours/more/") for path in labels["image_path"]) == 4  # recursive
    expected = scratch.execute("SELECT image_path, colour FROM colours").set_index("image_path")["colour"]
    assert (labels.set_index("image_path")["predicted"] == expected.reindex(labels["image_path"])).all()
    graph = _definitions(scratch).resolve_asset_graph()
    assert {tuple(key.path) for key in graph.get(dg.AssetKey(["table", "labels"])).parent_keys} == {("model", "colours")}
    metadata = _metadata(scratch, ["table", "labels"])
    assert metadata["classified"].value == 12 and metadata["skipped_images"].value == 0


def test_a_rescan_classifies_only_new_files_and_drops_removed_ones(scratch):
    home = scratch.settings.home
    first = scratch.execute("CREATE TABLE labels USING colours FROM 'colours'")
    (home / "colours" / "0.png").unlink()
    images, _ = colour_images(2, seed=77)
    write_image(home / "colours" / "new" / "a.png", images[0])
    again = scratch.execute("CREATE TABLE labels USING colours OPTIONS (overwrite=True) FROM 'colours'")
    assert len(again) == 12 and "colours/new/a.png" in set(again["image_path"]) and "colours/0.png" not in set(again["image_path"])
    assert _metadata(scratch, ["table", "labels"])["classified"].value == 1
    kept = again.set_index("image_path").loc[first["image_path"][1:]]
    assert (kept["predicted"].to_numpy() == first.set_index("image_path").loc[first["image_path"][1:], "predicted"].to_numpy()).all()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO labels VALUES ('x.png', 'x.png', 'red', 1.0)",
        "DELETE FROM labels WHERE filename = '0.png'",
        "UPDATE labels SET predicted = 'red'",
    ],
)
def test_the_rows_of_a_folders_table_are_its_files_not_sql_changes(scratch, sql):
    scratch.execute("CREATE TABLE labels USING colours FROM 'colours'")
    refused_naming(scratch, sql, ["image files under 'colours'", "CREATE TABLE my_labels"])
    again = scratch.execute("CREATE TABLE labels USING colours OPTIONS (overwrite=True) FROM 'colours'")  # the rescan still runs
    assert len(again) == 12


def test_unreadable_files_under_a_folder_are_named_or_skipped_aloud(scratch, capsys):
    home = scratch.settings.home
    (home / "colours" / "broken.png").write_bytes(b"not an image")
    message = str(refused(scratch, "CREATE TABLE labels USING colours FROM 'colours'", DataError))
    assert "broken.png" in message
    labels = scratch.execute("CREATE TABLE labels USING colours OPTIONS (on_error='skip') FROM 'colours'")
    broken = labels[labels["filename"] == "broken.png"]
    assert len(labels) == 13 and broken["predicted"].isna().all() and broken["confidence"].isna().all()
    assert scratch.execute("SELECT count(*) AS n FROM labels WHERE predicted IS NULL AND confidence IS NULL")["n"][0] == 1
    metadata = _metadata(scratch, ["table", "labels"])
    assert metadata["skipped_images"].value == 1 and "broken.png" in metadata["skipped"].value


def _definitions(conn) -> dg.Definitions:
    from resources import build_resources
    from thanosql_assets.defs.objects import build_definitions, catalog_specs

    resources = build_resources(conn.settings)
    return build_definitions(catalog_specs(resources["catalog"]), resources)


# -- GET THANOSQL MODEL, from a mirror directory ---------------------------------------------------


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A model mirror holding a tiny ViT as `tiny/colour-vit`, with its SHA256SUMS."""
    import hashlib

    directory = save_colour_vit(tmp_path / "mirror" / "tiny" / "colour-vit")
    sums = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}" for path in sorted(directory.iterdir())]
    (directory / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    monkeypatch.setenv("THANOSQL_MODEL_MIRROR", str(tmp_path / "mirror"))
    return directory


def _connect(conn):
    import thanosql

    return thanosql.connect(conn.settings.home)  # settings read THANOSQL_MODEL_MIRROR now


def test_get_thanosql_model_fetches_a_verified_model_from_the_mirror(scratch, mirror):
    conn = _connect(scratch)
    conn.execute("GET THANOSQL MODEL 'tiny/colour-vit' AS fetched")
    metadata = _metadata(conn, ["model", "fetched"])
    assert metadata["origin"].value == "tiny/colour-vit" and metadata["fetched_from"].value.startswith("mirror ")
    assert metadata["class_name"].value == "User_HuggingFace" and metadata["classes"].value == "red, green, blue"
    home = conn.settings.home
    assert sorted(path.name for path in (home / "thanosql-model").iterdir()) == ["fetched"]
    predicted = conn.execute("PREDICT USING fetched AS SELECT * FROM colours")
    assert (predicted["predicted"] == predicted["colour"]).all()
    conn.execute("GET THANOSQL MODEL 'tiny/colour-vit' OPTIONS (overwrite=True) AS fetched")
    assert _metadata(conn, ["model", "fetched"])["model_version"].value == 2


def test_a_model_is_named_after_its_id_without_as(scratch, mirror):
    conn = _connect(scratch)
    conn.execute("GET THANOSQL MODEL 'tiny/colour-vit'")
    assert _metadata(conn, ["model", "colour_vit"])["origin"].value == "tiny/colour-vit"


def test_a_damaged_mirror_file_or_an_unknown_model_is_refused_and_changes_nothing(scratch, mirror):
    conn = _connect(scratch)
    message = str(refused(conn, "GET THANOSQL MODEL 'tiny/other-model' AS other", DataError))
    assert "tiny/other-model" in message and str(mirror.parents[1]) in message and "tiny/colour-vit" in message
    weights = next(mirror.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
    message = str(refused(conn, "GET THANOSQL MODEL 'tiny/colour-vit' AS damaged", DataError))
    assert weights.name in message and "sha256" in message
    assert not (conn.settings.home / "thanosql-model").exists() or not any((conn.settings.home / "thanosql-model").iterdir())
    message = str(refused(conn, "GET THANOSQL MODEL 'colour-vit' AS x", SQLError))
    assert "organization/model" in message


# -- zero-shot labels with CLIP ------------------------------------------------------------------


@pytest.fixture
def clip(scratch):
    """`scratch` with a tiny CLIP model uploaded as `clip`."""
    save_tiny_clip(scratch.settings.home / "models" / "clip")
    scratch.execute("UPLOAD MODEL clip OPTIONS (framework='huggingface') FROM 'models/clip'")
    return scratch


def test_zero_shot_predict_chooses_among_the_labels_it_is_given(clip):
    from thanosql_assets.models.pretrained.huggingface import load_clip_zero_shot

    assert _metadata(clip, ["model", "clip"])["classes"].value.startswith("zero-shot")
    predicted = clip.execute("PREDICT USING clip OPTIONS (labels=['cat', 'dog', 'hen'], top_k=3) AS SELECT * FROM colours")
    assert predicted["predicted"].isin(["cat", "dog", "hen"]).all()
    assert set(predicted.iloc[0][["predicted_1", "predicted_2", "predicted_3"]]) == {"cat", "dog", "hen"}
    home = clip.settings.home
    direct = load_clip_zero_shot(home / "models" / "clip", ["cat", "dog", "hen"])
    probabilities = direct.predict_files_checked([home / path for path in predicted["image_path"]]).probabilities
    np.testing.assert_allclose(predicted["confidence"], probabilities.max(axis=1), atol=1e-5)
    saved = clip.execute("PREDICT USING clip OPTIONS (labels=['cat', 'dog'], table_name='animals') AS SELECT * FROM colours")
    assert saved["predicted"].isin(["cat", "dog"]).all() and len(clip.execute("SELECT * FROM animals")) == 12


@pytest.mark.parametrize(
    "sql, words",
    [
        pytest.param("PREDICT USING clip AS SELECT * FROM colours", ["zero-shot", "labels"], id="no-labels"),
        pytest.param("PREDICT USING clip OPTIONS (labels=['cat']) AS SELECT * FROM colours", ["two"], id="one-label"),
        pytest.param("PREDICT USING clip OPTIONS (labels=['cat', 'dog'], top_k=3) AS SELECT * FROM colours", ["top_k"], id="top-k-over-labels"),
        pytest.param("PREDICT USING colours OPTIONS (labels=['cat', 'dog']) AS SELECT * FROM colours", ["its own classes"], id="labels-for-a-classifier"),
        pytest.param("EVALUATE USING clip OPTIONS (label_col='colour') AS SELECT * FROM colours", ["zero-shot"], id="evaluate"),
        pytest.param("CREATE TABLE t USING clip FROM 'colours'", ["zero-shot", "labels"], id="folder"),
    ],
)
def test_zero_shot_misuse_is_refused(clip, sql, words):
    refused_naming(clip, sql, words)


def test_the_folder_example_runs_on_the_tiny_model_it_makes(tmp_path):
    import runpy

    import thanosql

    home = tmp_path / "workspace"
    home.mkdir()
    runpy.run_path(str(EXAMPLES / "make_tiny_classifier.py"), run_name="example").get("main")(home)
    conn = thanosql.connect(home)
    results = conn.execute_script((EXAMPLES / "classify_folder.sql").read_text())
    names = results[2]
    assert list(names.columns) == ["image_name", "result"] and len(names) == 10
    assert (names["image_name"].str.split("_").str[0] == names["result"]).all()  # files are named after their colour
    assert list(results[4]["predicted"].index) == [0, 1, 2, 3]


# -- fine-tuning from pretrained weights: BUILD MODEL ... OPTIONS (pretrained=...) -------------------

SHADES = "SELECT image_path, CASE WHEN colour = 'red' THEN 'warm' ELSE 'cool' END AS shade FROM colours"


def test_build_fine_tunes_an_uploaded_model_for_other_labels(scratch):
    scratch.execute(f"BUILD MODEL shades USING ViT OPTIONS (pretrained='colours', label_col='shade', holdout=0) AS {SHADES}")
    metadata = _metadata(scratch, ["model", "shades"])
    assert metadata["classes"].value == "cool, warm"
    assert metadata["network"].value.startswith("Hugging Face ViTForImageClassification") and "new head" in metadata["network"].value
    graph = _definitions(scratch).resolve_asset_graph()
    assert {tuple(key.path) for key in graph.get(dg.AssetKey(["model", "shades"])).parent_keys} == {("table", "colours"), ("model", "colours")}
    predicted = scratch.execute(f"PREDICT USING shades AS {SHADES}")
    assert (predicted["predicted"] == predicted["shade"]).mean() >= 0.9
    # the same labels as the model's: its own head trains further
    scratch.execute("BUILD MODEL colours_too USING ViT OPTIONS (pretrained='colours', label_col='colour', max_epochs=1) AS SELECT * FROM colours")
    assert "new head" not in _metadata(scratch, ["model", "colours_too"])["network"].value
    predicted = scratch.execute("PREDICT USING colours_too AS SELECT * FROM colours")
    assert (predicted["predicted"] == predicted["colour"]).all()
    # a chain of starts cannot close into a loop, nor a model start from itself
    scratch.execute(f"BUILD MODEL shades2 USING ViT OPTIONS (pretrained='shades', label_col='shade', max_epochs=1, holdout=0) AS {SHADES}")
    again = "BUILD MODEL shades USING ViT OPTIONS (pretrained='{}', overwrite=True, label_col='shade') AS " + SHADES
    assert "'shades2' was trained from 'shades'" in str(refused(scratch, again.format("shades2"), OptionError))
    assert "cannot start from itself" in str(refused(scratch, again.format("shades"), OptionError))


@pytest.fixture
def imagenet_mirror(tmp_path, monkeypatch):
    """A model mirror holding torchvision/mobilenet_v3_large: a state dict of 1000 outputs, as
    torchvision's ImageNet weights (random here: nothing is downloaded), with its SHA256SUMS."""
    import hashlib

    import torch
    import torchvision

    directory = tmp_path / "mirror" / "torchvision" / "mobilenet_v3_large"
    directory.mkdir(parents=True)
    torch.manual_seed(0)
    weights = directory / "mobilenet_v3_large-8738ca79.pth"
    torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), weights)
    (directory / "SHA256SUMS").write_text(f"{hashlib.sha256(weights.read_bytes()).hexdigest()}  {weights.name}\n")
    monkeypatch.setenv("THANOSQL_MODEL_MIRROR", str(tmp_path / "mirror"))
    return directory


def test_pretrained_true_fine_tunes_imagenet_weights_fetched_once(scratch, imagenet_mirror, monkeypatch):
    conn = _connect(scratch)
    build = "BUILD MODEL mobile USING MobileNetV3 OPTIONS (pretrained=True, label_col='colour', input_size=32, holdout=0{}) AS SELECT * FROM colours"
    conn.execute(build.format(""))
    metadata = _metadata(conn, ["model", "mobile"])
    assert metadata["network"].value == (
        "torchvision mobilenet_v3_large, pretrained weights from mobilenet_v3_large-8738ca79.pth (3-channel 32 px input), fine-tuned with a new head"
    )
    assert metadata["classes"].value == "blue, green, red"
    predicted = conn.execute("PREDICT USING mobile AS SELECT * FROM colours")
    assert len(predicted) == 12 and predicted["predicted"].isin(COLOURS).all()
    cached = Path(conn.settings.home) / ".cache" / "huggingface" / "torchvision" / "mobilenet_v3_large"
    assert [path.name for path in cached.iterdir()] == ["mobilenet_v3_large-8738ca79.pth"]
    monkeypatch.delenv("THANOSQL_MODEL_MIRROR")  # the weights come from the cache now
    conn = _connect(conn)
    conn.execute(build.format(", overwrite=True"))
    assert _metadata(conn, ["model", "mobile"])["model_version"].value == 2


def test_get_thanosql_model_fetches_torchvision_weights_by_network_or_algorithm_name(scratch, imagenet_mirror):
    conn = _connect(scratch)
    conn.execute("GET THANOSQL MODEL 'torchvision/MobileNetV3' AS mobile")
    metadata = _metadata(conn, ["model", "mobile"])
    assert metadata["origin"].value == "torchvision/mobilenet_v3_large" and metadata["class_name"].value == "User_PyTorch"
    assert metadata["input"].value == "3x224x224"
    classes = metadata["classes"].value  # ImageNet's 1000 names, as torchvision lists them
    assert classes[:2] == ["tench", "goldfish"] and len(classes) == 1000
    conn.execute("GET THANOSQL MODEL 'torchvision/mobilenet_v3_large'")
    assert _metadata(conn, ["model", "mobilenet_v3_large"])["origin"].value == "torchvision/mobilenet_v3_large"
    message = str(refused(conn, "GET THANOSQL MODEL 'torchvision/resnet18' AS r", DataError))
    assert "torchvision/resnet18" in message and str(imagenet_mirror.parents[1]) in message


@pytest.mark.parametrize(
    "sql, error, words",
    [
        pytest.param(
            "BUILD MODEL m USING ViT OPTIONS (pretrained=True, base_model='my_image_search_model', label_col='colour') AS SELECT * FROM colours",
            OptionError, ["base_model", "one"], id="two-starts",
        ),
        pytest.param("BUILD MODEL m USING ViT OPTIONS (pretrained='nope', label_col='colour') AS SELECT * FROM colours", SQLError, ["'nope' does not exist", "colours"], id="missing"),
        pytest.param(
            "BUILD MODEL m USING ViT OPTIONS (pretrained='my_image_search_model', label_col='colour') AS SELECT * FROM colours",
            SQLError, ["SimCLR", "classifier"], id="simclr",
        ),
        pytest.param(
            "BUILD MODEL m USING ResNet18 OPTIONS (pretrained='colours', label_col='colour') AS SELECT * FROM colours",
            OptionError, ["ViTForImageClassification", "not a ResNet18", "USING ViT"], id="other-architecture",
        ),
        pytest.param(
            "BUILD MODEL m USING ViT OPTIONS (pretrained='colours', input_size=64, label_col='colour') AS SELECT * FROM colours",
            OptionError, ["input_size", "colours"], id="input-size-of-a-model",
        ),
        pytest.param(
            "BUILD MODEL m USING ViT OPTIONS (pretrained=True, input_size=64, label_col='colour') AS SELECT * FROM colours",
            OptionError, ["224"], id="vit-input-size",
        ),
        pytest.param("BUILD MODEL m USING ViT OPTIONS (pretrained=3, label_col='colour') AS SELECT * FROM colours", OptionError, ["True, False or a name"], id="number"),
        pytest.param("BUILD MODEL m USING SimCLR OPTIONS (pretrained=True) AS SELECT * FROM colours", OptionError, ["Unknown option 'pretrained'"], id="simclr-build"),
        pytest.param(
            "BUILD MODEL colours USING ViT OPTIONS (pretrained='colours', overwrite=True, label_col='colour') AS SELECT * FROM colours",
            OptionError, ["cannot start from itself"], id="itself",
        ),
        pytest.param(
            "BUILD MODEL m USING ViT OPTIONS (pretrained='colours', label_col='colour') AS SELECT * FROM (LIST MODEL) AS l",
            SQLError, ["cannot contain", "LIST"], id="list-as-training-rows",
        ),
        pytest.param("GET THANOSQL MODEL 'torchvision/resnet19'", SQLError, ["resnet19", "torchvision/resnet18"], id="unknown-network"),
    ],
)
def test_bad_pretrained_starts_are_refused_and_change_nothing(conn, sql, error, words):
    refused_naming(conn, sql, words, error)
