"""The stored classifier: pickles whole, predicts probabilities, reads files as training did."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tests.numerics import assert_same_probabilities
from thanosql.errors import DataError
from thanosql_assets.models.classifiers.classifier import ImageClassifier
from thanosql_assets.models.classifiers.networks import build_network
from thanosql_assets.models.embedder import ImageEmbedder
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.simclr.backbones import build_backbone

GEOMETRY = ImageGeometry(1, 16, 16)
CLASSES = ["cat", "dog", 7]


def trained_looking(module: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, as after training, so folding them changes the weights."""
    for norm in module.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    return module


@pytest.fixture
def classifier() -> ImageClassifier:
    torch.manual_seed(0)
    encoder, head = build_network("resnet18", 1, len(CLASSES), 16)
    return ImageClassifier(
        trained_looking(encoder), head, GEOMETRY, torch.tensor([0.3]), torch.tensor([0.2]), CLASSES, "a resnet"
    ).eval()


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 1, 16, 16), dtype=np.uint8)


def test_probabilities_are_the_softmax_of_the_logits(classifier):
    batch = images(10)
    probabilities = classifier.predict_proba(batch, batch_size=4)
    assert probabilities.shape == (10, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    with torch.no_grad():
        expected = torch.softmax(classifier(torch.from_numpy(batch)), dim=1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=0.02)  # the fast path may compute in bfloat16
    assert classifier.predict_proba(batch[:0]).shape == (0, 3)


def test_a_classifier_pickles_whole_and_predicts_the_same_after(classifier):
    batch = images(6)
    before = classifier.predict_proba(batch)  # builds the folded copy, which must not be stored
    restored = pickle.loads(pickle.dumps(classifier))
    assert "_inference_encoder" not in restored.__dict__
    assert (restored.classes, restored.geometry, restored.num_classes, restored.network) == (CLASSES, GEOMETRY, 3, "a resnet")
    np.testing.assert_array_equal(restored.predict_proba(batch), before)


def test_a_classifier_from_a_simclr_model_copies_its_encoder_and_preprocessing():
    embedder = ImageEmbedder(build_backbone("small_cnn", 1), GEOMETRY, torch.tensor([0.1]), torch.tensor([0.4]))
    classifier = ImageClassifier.from_embedder(embedder, [False, True])
    assert classifier.encoder is not embedder.backbone
    assert classifier.head.out_features == 2 and classifier.head.in_features == embedder.embedding_dim
    assert classifier.geometry == GEOMETRY and classifier.classes == [False, True]
    assert classifier.mean.flatten().tolist() == pytest.approx([0.1]) and classifier.std.flatten().tolist() == pytest.approx([0.4])
    assert classifier.network == "encoder of the SimCLR model (small_cnn) + linear head"
    pickle.loads(pickle.dumps(classifier))


def write_pngs(folder, count: int) -> list:
    paths = []
    for index, image in enumerate(images(count, seed=1)):
        path = folder / f"{index}.png"
        Image.fromarray(image[0]).save(path)
        paths.append(path)
    return paths


def test_files_predict_as_their_decoded_images(classifier, tmp_path):
    paths = write_pngs(tmp_path, 3)
    predicted = classifier.predict_files_checked(paths, chunk=2)
    assert predicted.kept == [0, 1, 2] and predicted.skipped == []
    assert_same_probabilities(predicted.probabilities, classifier.predict_proba(images(3, seed=1)))


def test_unusable_files_raise_or_are_skipped_and_listed(classifier, tmp_path):
    paths = write_pngs(tmp_path, 3)
    values = [paths[0], tmp_path / "gone.png", None, paths[2]]
    with pytest.raises(DataError, match="gone.png"):
        classifier.predict_files_checked(values, column="image_path")
    predicted = classifier.predict_files_checked(values, on_error="skip", chunk=3)
    assert predicted.kept == [0, 3]
    assert [(skipped.index, skipped.reason) for skipped in predicted.skipped] == [(1, "no such file"), (2, "it has no image path (NULL)")]
    assert predicted.probabilities.shape == (2, 3)
    assert_same_probabilities(predicted.probabilities, classifier.predict_proba(images(3, seed=1)[[0, 2]]))
