"""torchvision state dicts as ImageClassifiers: the stock network with the file's weights and
number of classes predicts as the original model; unusable files raise a DataError with a hint."""

import numpy as np
import pytest
import torch
import torchvision

from thanosql.errors import DataError
from thanosql_assets.models.classifiers import classifier as classifier_module
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.pretrained.torchvision_weights import load_torchvision_classifier


@pytest.fixture
def exact(monkeypatch):
    """float32 inference even where bfloat16 is native, for comparisons to the original model in float32."""
    monkeypatch.setattr(classifier_module, "native_bf16", lambda device_type: False)


def saved(tmp_path, network: str, **options) -> tuple[torch.nn.Module, object]:
    torch.manual_seed(0)
    model = getattr(torchvision.models, network)(weights=None, **options).eval()
    path = tmp_path / f"{network}.pt"
    torch.save(model.state_dict(), path)
    return model, path


def images(count: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, 3, 224, 224), dtype=np.uint8)


def test_a_state_dict_with_few_classes_predicts_as_the_original_model(tmp_path, exact):
    original, path = saved(tmp_path, "resnet18", num_classes=4)
    classifier = load_torchvision_classifier(path, "resnet18")
    assert classifier.classes == ["0", "1", "2", "3"] and classifier.geometry == ImageGeometry(3, 224, 224)
    assert classifier.network == "torchvision resnet18, pretrained weights from resnet18.pt (3-channel 224 px input)"
    batch = images(3)
    with torch.no_grad():
        normalized = (torch.from_numpy(batch).float() / 255 - torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)) / torch.tensor(
            [0.229, 0.224, 0.225]
        ).reshape(1, 3, 1, 1)
        expected = torch.softmax(original(normalized), dim=1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(batch, batch_size=2), expected, atol=1e-5)


@pytest.mark.parametrize("network", ["convnext_tiny", "mobilenet_v3_large", "vit_b_16"])
def test_each_family_finds_its_last_layer_and_loads(tmp_path, network, exact):
    original, path = saved(tmp_path, network, num_classes=5)
    classifier = load_torchvision_classifier(path, network)
    assert classifier.num_classes == 5 and classifier.head.out_features == 5
    batch = images(1)
    with torch.no_grad():
        expected = torch.softmax(original(classifier.normalize(torch.from_numpy(batch))), dim=1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(batch), expected, atol=1e-5)


def test_a_thousand_outputs_are_imagenets_categories(tmp_path):
    _, path = saved(tmp_path, "mobilenet_v3_small")
    classifier = load_torchvision_classifier(path, "mobilenet_v3_small")
    assert classifier.num_classes == 1000 and classifier.classes[:2] == ["tench", "goldfish"]


def _beside_another(path):
    (path.parent / "other.pth").write_bytes(path.read_bytes())
    return path.parent


def test_a_directory_holding_one_weights_file_loads_it(tmp_path):
    _, path = saved(tmp_path, "resnet18", num_classes=4)
    (tmp_path / "SHA256SUMS").write_text("as a mirror keeps it beside the weights\n")
    classifier = load_torchvision_classifier(tmp_path, "resnet18")
    assert classifier.num_classes == 4 and "resnet18.pt" in classifier.network


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _garbage(path):
    path.write_bytes(b"not a weights file" * 20)
    return path


def _not_a_state_dict(path):
    torch.save({"epoch": 3, "note": "a checkpoint"}, path)
    return path


@pytest.mark.parametrize(
    "make, network, message",
    [
        (lambda path: path.with_name("missing.pt"), "resnet18", "no such file"),
        (lambda path: path.parent / "empty", "resnet18", "holds no .pth / .pt weights files"),
        (_beside_another, "resnet18", "holds 2 .pth / .pt weights files: other.pth, resnet18.pt"),
        (_truncated, "resnet18", "corrupt or truncated"),
        (_garbage, "resnet18", "not a torch weights file"),
        (_not_a_state_dict, "resnet18", "holds a dict of other things, not a state dict"),
        (lambda path: path, "resnet34", r"not torchvision's resnet34: missing keys layer1\.2\.conv1\.weight"),
        (lambda path: path, "resnet50", r"not torchvision's resnet50: missing keys .*; other shapes layer1\.0\.conv1\.weight"),
        (lambda path: path, "mobilenet_v3_small", "not torchvision's mobilenet_v3_small: missing keys .*; unexpected keys conv1.weight"),
        (lambda path: path, "resnet_18", "torchvision has no classification network named 'resnet_18'"),
    ],
    ids=["missing", "empty directory", "two files", "truncated", "garbage", "not a state dict", "fewer layers", "other shapes",
         "other family", "unknown network"],
)
def test_unusable_weights_raise_a_data_error_with_a_hint(tmp_path, make, network, message):
    _, path = saved(tmp_path, "resnet18", num_classes=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=message) as raised:
        load_torchvision_classifier(make(path), network)
    assert raised.value.hint
