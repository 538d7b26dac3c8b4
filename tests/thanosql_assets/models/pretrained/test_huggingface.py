"""Hugging Face image classifiers and CLIP zero-shot: tiny models saved with save_pretrained (no
downloads) predict as transformers does, read files as every other model, pickle whole, and
refuse unusable directories with a DataError and a hint."""

import io
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    BertConfig,
    BertForMaskedLM,
    CLIPImageProcessor,
    CLIPModel,
    CLIPTokenizer,
    ConvNextConfig,
    ConvNextForImageClassification,
    ConvNextImageProcessor,
    ViTForImageClassification,
    ViTImageProcessor,
    ViTModel,
)

from tests.numerics import assert_same_probabilities
from tests.tiny_models import COLOURS, SIZE, colour_images, save_colour_vit, save_tiny_clip, tiny_vit_config
from thanosql.errors import DataError
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.pretrained import huggingface
from thanosql_assets.models.pretrained.huggingface import (
    is_clip_model_dir,
    is_huggingface_model_dir,
    load_clip_model,
    load_clip_zero_shot,
    load_huggingface_classifier,
)

LABELS = COLOURS


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    """A tiny ViT trained for a few dozen steps to tell red, green and blue images apart, with its processor."""
    return save_colour_vit(tmp_path_factory.mktemp("vit"))


@pytest.fixture(scope="module")
def vit(vit_dir):
    return load_huggingface_classifier(vit_dir, source="tests/tiny-vit")


@pytest.fixture
def exact(monkeypatch):
    """float32 inference even where bfloat16 is native, for comparisons to transformers' float32 forward."""
    monkeypatch.setattr(huggingface, "native_bf16", lambda device_type: False)


def write(path, pixels: np.ndarray, **options):
    """Saves uint8 C x H x W (C 1 or 3) as an image file; the format follows the suffix."""
    Image.fromarray(pixels[0] if len(pixels) == 1 else pixels.transpose(1, 2, 0)).save(path, **options)
    return path


def test_a_vit_loads_with_its_labels_preprocessing_and_description(vit):
    assert vit.classes == LABELS and vit.num_classes == 3
    assert vit.geometry == ImageGeometry(3, SIZE, SIZE)
    assert vit.network == "Hugging Face ViTForImageClassification (tests/tiny-vit, 32 px)"
    assert vit.rescale == pytest.approx(1 / 255)
    assert vit.mean.flatten().tolist() == [0.5] * 3 and vit.std.flatten().tolist() == [0.5] * 3


def test_probabilities_match_transformers_own_processor_and_forward(vit, vit_dir, tmp_path, exact):
    images, _ = colour_images(6, seed=100)
    paths = [write(tmp_path / f"{index}.png", image) for index, image in enumerate(images)]
    predicted = vit.predict_files_checked(paths, batch_size=4)
    processor = ViTImageProcessor.from_pretrained(vit_dir)
    model = ViTForImageClassification.from_pretrained(vit_dir).eval()
    with torch.no_grad():
        inputs = processor(images=[Image.open(path) for path in paths], return_tensors="pt")
        expected = torch.softmax(model(**inputs).logits, dim=1).numpy()
    assert predicted.kept == list(range(6)) and predicted.probabilities.dtype == np.float32
    np.testing.assert_allclose(predicted.probabilities, expected, atol=1e-5)


def test_images_of_any_size_format_and_colour_get_the_right_names(vit, tmp_path):
    solid = {"red": (220, 30, 30), "green": (30, 220, 30), "blue": (30, 30, 220)}
    paths, expected = [], []
    for (name, colour), (height, width), suffix in zip(solid.items(), [(32, 32), (50, 90), (300, 200)], [".png", ".jpg", ".webp"]):
        pixels = np.broadcast_to(np.array(colour, dtype=np.uint8)[:, None, None], (3, height, width))
        paths.append(write(tmp_path / f"{name}{suffix}", np.ascontiguousarray(pixels)))
        expected.append(name)
    predicted = vit.predict_files_checked(paths + paths[::-1], batch_size=2)
    assert [vit.classes[index] for index in predicted.probabilities.argmax(axis=1)] == expected + expected[::-1]
    np.testing.assert_allclose(predicted.probabilities.sum(axis=1), 1, atol=1e-5)


def test_grey_images_predict_as_the_same_pixels_in_rgb(vit, tmp_path):
    grey = np.random.default_rng(3).integers(0, 256, (1, 40, 24), dtype=np.uint8)
    paths = [write(tmp_path / "grey.png", grey), write(tmp_path / "rgb.png", np.repeat(grey, 3, axis=0))]
    probabilities = vit.predict_files_checked(paths).probabilities
    assert_same_probabilities(probabilities[0], probabilities[1])


def test_unusable_files_raise_or_are_skipped_as_for_every_model(vit, tmp_path):
    path = write(tmp_path / "ok.png", colour_images(1, seed=5)[0][0])
    with pytest.raises(DataError, match="gone.png"):
        vit.predict_files_checked([path, tmp_path / "gone.png"], column="image_path")
    predicted = vit.predict_files_checked([None, path, tmp_path / "gone.png"], on_error="skip")
    assert predicted.kept == [1] and [skipped.index for skipped in predicted.skipped] == [0, 2]
    assert predicted.probabilities.shape == (1, 3)
    assert vit.predict_files_checked([]).probabilities.shape == (0, 3)


def test_a_classifier_pickles_whole_and_predicts_the_same_after(vit):
    images, _ = colour_images(5, seed=7)
    before = vit.predict_proba(images)
    buffer = io.BytesIO()
    torch.save(vit, buffer)  # as mlflow.pytorch.log_model stores it
    buffer.seek(0)
    for restored in (torch.load(buffer, weights_only=False), pickle.loads(pickle.dumps(vit))):
        assert (restored.classes, restored.geometry, restored.network) == (vit.classes, vit.geometry, vit.network)
        assert_same_probabilities(restored.predict_proba(images, batch_size=2), before)


def test_as_an_image_classifier_the_same_network_gives_the_same_logits(vit):
    images = torch.from_numpy(colour_images(6, seed=11)[0])
    converted = vit.as_image_classifier().eval()
    assert (converted.classes, converted.geometry, converted.network) == (vit.classes, vit.geometry, vit.network)
    assert converted.head.out_features == 3 and converted.encoder.output_dim == 32
    with torch.no_grad():
        torch.testing.assert_close(converted(images), vit.eval()(images), rtol=1e-4, atol=1e-5)
    assert isinstance(vit.model.classifier, torch.nn.Linear)  # the model converted keeps its layer


def test_a_convnext_takes_the_processors_size_and_keeps_default_label_names(tmp_path):
    torch.manual_seed(0)
    config = ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=2)
    ConvNextForImageClassification(config).save_pretrained(tmp_path)
    ConvNextImageProcessor(size={"shortest_edge": 48}).save_pretrained(tmp_path)
    classifier = load_huggingface_classifier(tmp_path)
    assert classifier.classes == ["LABEL_0", "LABEL_1"]
    assert classifier.geometry == ImageGeometry(3, 48, 48, resize=(54,), resample="bicubic")  # 48 / crop_pct 0.875
    assert classifier.network == (
        f"Hugging Face ConvNextForImageClassification ({tmp_path.name}, 48 px, centre cut after the shorter side is resized to 54 px)"
    )
    paths = [write(tmp_path / "a.jpg", colour_images(1, seed=1, size=64)[0][0])]
    assert classifier.predict_files_checked(paths).probabilities.shape == (1, 2)


def _smooth(seed: int, height: int, width: int) -> np.ndarray:
    """An RGB photo-like image H x W x 3: smooth colour fields (noise, as in some tests, resamples
    with rounding differences that say nothing about resizing)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (height // 10, width // 10, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))


@pytest.mark.parametrize(
    "processor, geometry",
    [
        (ConvNextImageProcessor(size={"shortest_edge": 48}), ImageGeometry(3, 48, 48, (54,), "bicubic")),
        (CLIPImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 40, "width": 36}), ImageGeometry(3, 40, 36, (40,), "bicubic")),
        (ViTImageProcessor(size={"height": 40, "width": 40}), ImageGeometry(3, 40, 40)),
        (ViTImageProcessor(size={"height": 48, "width": 48}, do_center_crop=True, crop_size={"height": 40, "width": 40}), ImageGeometry(3, 40, 40, (48, 48))),
    ],
    ids=["convnext-crop-pct", "clip-shorter-side-then-centre", "vit-straight", "straight-then-centre"],
)
def test_images_of_any_shape_are_resized_and_cropped_as_the_processor_does(tmp_path, processor, geometry):
    from thanosql_assets.models.images import decode_images

    processor.save_pretrained(tmp_path)
    found, rescale, mean, std, _ = huggingface._preprocessing(tmp_path, (224, 1 / 255, (0.5,) * 3, (0.5,) * 3))
    assert found == geometry
    paths = [write(tmp_path / f"{index}.png", _smooth(index, *shape).transpose(2, 0, 1)) for index, shape in enumerate([(60, 100), (120, 50), (300, 200)])]
    pixels = decode_images(paths, found).images * rescale
    ours = (pixels - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    theirs = processor(images=[Image.open(path) for path in paths], return_tensors="np")["pixel_values"]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_a_very_long_strip_is_cut_to_its_centre_before_it_is_resized(tmp_path):
    from thanosql_assets.models.images import decode_images

    processor = CLIPImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 40, "width": 40})
    processor.save_pretrained(tmp_path)
    geometry = huggingface._preprocessing(tmp_path, (224, 1 / 255, (0.5,) * 3, (0.5,) * 3))[0]
    strip = write(tmp_path / "strip.png", _smooth(0, 20, 4000).transpose(2, 0, 1))  # whole, resized: 40 x 8000 px
    ours = decode_images([strip], geometry).images[0].astype(float)
    theirs = np.asarray(processor(images=[Image.open(strip)], do_normalize=False, do_rescale=False, return_tensors="np")["pixel_values"][0])
    assert ours.shape == (3, 40, 40) and np.abs(ours - theirs).mean() < 3  # the same centre, resampled on a grid a fraction of a pixel apart


def test_without_a_processor_config_the_model_size_and_vit_defaults_are_used(tmp_path):
    ViTForImageClassification(tiny_vit_config(image_size=24)).save_pretrained(tmp_path)
    classifier = load_huggingface_classifier(tmp_path, source="x")
    assert classifier.geometry == ImageGeometry(3, 24, 24)
    assert classifier.mean.flatten().tolist() == [0.5] * 3 and classifier.std.flatten().tolist() == [0.5] * 3
    assert classifier.network.endswith("(x, 24 px, no preprocessor config: ImageNet-standard 0.5 mean/std assumed)")
    assert classifier.predict_proba(colour_images(2, seed=0, size=24)[0]).shape == (2, 2)


def test_a_model_directory_is_one_with_a_config(vit_dir, tmp_path):
    assert is_huggingface_model_dir(vit_dir) and is_huggingface_model_dir(str(vit_dir))
    assert not is_huggingface_model_dir(tmp_path) and not is_huggingface_model_dir(tmp_path / "missing")


def _copy_of(source, target):
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def _truncated_weights(vit_dir, tmp_path):
    directory = _copy_of(vit_dir, tmp_path / "model")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return directory


def _garbage_weights(vit_dir, tmp_path):
    directory = _copy_of(vit_dir, tmp_path / "model")
    (directory / "model.safetensors").write_bytes(b"not a tensor" * 50)
    return directory


def _no_weights(vit_dir, tmp_path):
    directory = _copy_of(vit_dir, tmp_path / "model")
    (directory / "model.safetensors").unlink()
    return directory


def _broken_config(vit_dir, tmp_path):
    directory = _copy_of(vit_dir, tmp_path / "model")
    (directory / "config.json").write_text('{"model_type": "vit", ')
    return directory


def _broken_processor_config(vit_dir, tmp_path):
    directory = _copy_of(vit_dir, tmp_path / "model")
    (directory / "preprocessor_config.json").write_text("{")
    return directory


def _text_model(vit_dir, tmp_path):
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertForMaskedLM(config).save_pretrained(tmp_path)
    return tmp_path


def _no_classification_head(vit_dir, tmp_path):
    ViTModel(tiny_vit_config()).save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda vit_dir, tmp_path: tmp_path / "missing", "no such directory"),
        (lambda vit_dir, tmp_path: vit_dir / "config.json", "a file, not a directory"),
        (lambda vit_dir, tmp_path: tmp_path, "not a Hugging Face model directory: it has no config.json"),
        (_broken_config, "Cannot read the model config"),
        (_text_model, r"is a bert model \(BertForMaskedLM\), not an image classifier"),
        (_no_classification_head, r"\(ViTModel\) lack part of the model .*classifier\.bias"),
        (_truncated_weights, "Cannot load the weights of the ViTForImageClassification model"),
        (_garbage_weights, "Cannot load the weights of the ViTForImageClassification model"),
        (_no_weights, "Cannot load the weights of the ViTForImageClassification model"),
        (_broken_processor_config, "Cannot read the image processor config"),
    ],
    ids=["missing", "a file", "no config", "broken config", "text model", "no head", "truncated weights",
         "garbage weights", "no weights", "broken processor config"],
)
def test_unusable_directories_raise_a_data_error_with_a_hint(vit_dir, tmp_path, make, message):
    with pytest.raises(DataError, match=message) as raised:
        load_huggingface_classifier(make(vit_dir, tmp_path))
    assert raised.value.hint


# CLIP: a tokenizer from a vocabulary of single characters (no merges), written to disk.
CLIP_LABELS = ["cat", "dog", "hen"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip"))


def test_clip_zero_shot_matches_clipmodels_image_text_probabilities(clip_dir, tmp_path, exact):
    classifier = load_clip_zero_shot(clip_dir, CLIP_LABELS, source="tests/tiny-clip")
    assert classifier.classes == CLIP_LABELS and classifier.geometry == ImageGeometry(3, SIZE, SIZE, resize=(SIZE,), resample="bicubic")
    assert classifier.network == (
        "Hugging Face CLIP zero-shot (tests/tiny-clip, 32 px, centre cut after the shorter side is resized to 32 px), prompts 'a photo of a {label}.'"
    )
    images, _ = colour_images(4, seed=11)
    paths = [write(tmp_path / f"{index}.png", image) for index, image in enumerate(images)]
    predicted = classifier.predict_files_checked(paths).probabilities
    model = CLIPModel.from_pretrained(clip_dir).eval()
    processor = CLIPImageProcessor.from_pretrained(clip_dir)
    tokens = CLIPTokenizer.from_pretrained(clip_dir)([f"a photo of a {label}." for label in CLIP_LABELS], padding=True, return_tensors="pt")
    with torch.no_grad():
        pixels = processor(images=[Image.open(path) for path in paths], return_tensors="pt")["pixel_values"]
        expected = model(pixel_values=pixels, **tokens).logits_per_image.softmax(dim=1).numpy()
    np.testing.assert_allclose(predicted, expected, atol=1e-5)
    restored = pickle.loads(pickle.dumps(classifier))
    assert not hasattr(restored, "text_model")  # the prompts are embedded once; the text tower stays behind
    np.testing.assert_array_equal(restored.predict_proba(images), classifier.predict_proba(images))


def test_a_clip_model_pickles_whole_and_takes_its_labels_after(clip_dir):
    model = load_clip_model(clip_dir, source="tests/tiny-clip")
    assert model.zero_shot and model.classes == [] and is_clip_model_dir(clip_dir)
    restored = pickle.loads(pickle.dumps(model))  # as MLflow stores it: the text tower and tokenizer too
    images, _ = colour_images(3, seed=12)
    np.testing.assert_array_equal(
        restored.for_labels(CLIP_LABELS).predict_proba(images), model.for_labels(CLIP_LABELS).predict_proba(images)
    )
    with pytest.raises(DataError, match="two"):
        restored.for_labels(["cat"])


def _clip_without_tokenizer(clip_dir, vit_dir, tmp_path):
    directory = _copy_of(clip_dir, tmp_path / "model")
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (directory / name).unlink(missing_ok=True)
    return directory


@pytest.mark.parametrize(
    "make, labels, message",
    [
        (lambda clip_dir, vit_dir, tmp_path: vit_dir, CLIP_LABELS, r"is a vit model \(ViTForImageClassification\), not CLIP"),
        (lambda clip_dir, vit_dir, tmp_path: tmp_path, CLIP_LABELS, "no config.json"),
        (_clip_without_tokenizer, CLIP_LABELS, "has no tokenizer"),
        (lambda clip_dir, vit_dir, tmp_path: clip_dir, ["cat"], "at least two distinct labels"),
        (lambda clip_dir, vit_dir, tmp_path: clip_dir, ["cat", "cat"], "at least two distinct labels"),
        (lambda clip_dir, vit_dir, tmp_path: clip_dir, ["cat", "dog", "cat"], "repeated: cat"),
        (lambda clip_dir, vit_dir, tmp_path: clip_dir, ["cat", " "], "non-empty strings"),
    ],
    ids=["not clip", "no config", "no tokenizer", "one label", "one distinct label", "repeated label", "blank label"],
)
def test_unusable_clip_models_and_labels_raise_a_data_error_with_a_hint(clip_dir, vit_dir, tmp_path, make, labels, message):
    with pytest.raises(DataError, match=message) as raised:
        load_clip_zero_shot(make(clip_dir, vit_dir, tmp_path), labels)
    assert raised.value.hint
