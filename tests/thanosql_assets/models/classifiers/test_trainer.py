"""Short CPU trainings on a task a random network cannot do: which half of the image is bright."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from thanosql.errors import DataError
from thanosql_assets.models.classifiers.classifier import ImageClassifier
from thanosql_assets.models.classifiers.config import ClassifierConfig
from thanosql_assets.models.classifiers.networks import default_learning_rate
from thanosql_assets.models.classifiers.trainer import FINE_TUNE_LEARNING_RATE, LabelledBatches, random_shift, train_classifier
from thanosql_assets.models.embedder import ImageEmbedder
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.simclr.backbones import build_backbone

GEOMETRY = ImageGeometry(1, 16, 16)
CLASSES = ["left", "right"]
CONFIG = ClassifierConfig(max_epochs=3, batch_size=8, device="cpu")


def halves(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images, one half (left: class 0, right: class 1) brighter than the other."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 2, count)
    images = rng.integers(0, 120, (count, 1, 16, 16))
    for image, target in zip(images, targets):
        image[:, :, 8 * target : 8 * target + 8] += 120
    return images.astype(np.uint8), targets


def train(images, targets, network="resnet18", config=CONFIG, **options):
    return train_classifier(images, targets, CLASSES, GEOMETRY, config, network, progress=lambda _: None, **options)


def untrained_embedder() -> ImageEmbedder:
    """A SimCLR model as a start, its small CNN as initialized (seed the generator first)."""
    return ImageEmbedder(build_backbone("small_cnn", 1), GEOMETRY, torch.tensor([0.4]), torch.tensor([0.25])).eval()


def accuracy(classifier: ImageClassifier, images, targets) -> float:
    return float((classifier.predict_proba(images).argmax(axis=1) == targets).mean())


def test_a_new_network_learns_the_task():
    images, targets = halves(48, seed=0)
    messages = []
    result = train_classifier(images, targets, CLASSES, GEOMETRY, CONFIG, "resnet18", messages.append)
    # 18 steps: under bf16 mixed precision (CPUs that compute it natively) the last few test
    # images fall on either side depending on the CPU's arithmetic; chance is 0.5.
    assert accuracy(result.classifier, *halves(64, seed=1)) >= 0.9
    assert result.classifier.classes == CLASSES and not result.classifier.training
    assert result.config == replace(CONFIG, input_size=16, learning_rate=default_learning_rate("resnet18"))
    assert result.network == "torchvision resnet18, 3x3 stride-1 stem, no max-pool (1-channel 16 px input)"
    assert len(result.epoch_losses) == 3 and result.epoch_losses[-1] < result.epoch_losses[0]
    assert [m.split(":")[0] for m in messages if "images/s" in m] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert result.images_per_second > 0 and result.device == "cpu"


def test_ddp_on_two_cpu_processes_learns_the_task_and_reports_from_rank_zero():
    images, targets = halves(96, seed=0)
    messages = []
    result = train_classifier(images, targets, CLASSES, GEOMETRY, replace(CONFIG, devices=2), "resnet18", messages.append)
    assert accuracy(result.classifier, *halves(64, seed=1)) >= 0.95
    assert len(result.epoch_losses) == 3
    assert [m.split(":")[0] for m in messages if "images/s" in m] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]


def test_more_gpus_than_the_machine_has_is_a_clear_error():
    with pytest.raises(DataError, match=r"devices=\d+\) asks for"):
        from thanosql_assets.models.training import lightning_trainer

        lightning_trainer(1, "cuda", [], devices=torch.cuda.device_count() + 2 if torch.cuda.is_available() else 2)


def test_several_nodes_without_the_launchers_rendezvous_is_refused_at_once(monkeypatch):
    from thanosql_assets.models.training import lightning_trainer

    for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DataError, match=r"num_nodes=2\) trains on 2 machines"):
        lightning_trainer(1, "cpu", [], devices=1, num_nodes=2)


def test_same_seed_same_data_same_model():
    images, targets = halves(24, seed=0)
    config = replace(CONFIG, max_epochs=1)
    probe = halves(8, seed=2)[0]
    first = train(images, targets, "mobilenet_v3_large", config).classifier.predict_proba(probe)
    second = train(images, targets, "mobilenet_v3_large", config).classifier.predict_proba(probe)
    other = train(images, targets, "mobilenet_v3_large", replace(config, seed=1)).classifier.predict_proba(probe)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_a_simclr_encoder_is_fine_tuned_with_a_new_head_and_left_unchanged():
    torch.manual_seed(0)
    embedder = untrained_embedder()
    weights = {name: value.clone() for name, value in embedder.state_dict().items()}
    images, targets = halves(32, seed=0)
    result = train(images, targets, start=embedder)
    assert accuracy(result.classifier, *halves(64, seed=1)) > 0.9  # an untrained encoder's features, a fitted head
    assert result.network == "encoder of the SimCLR model (small_cnn) + linear head"
    assert result.config.learning_rate == FINE_TUNE_LEARNING_RATE
    for name, value in embedder.state_dict().items():
        torch.testing.assert_close(value, weights[name], rtol=0, atol=0)


def test_a_simclr_encoder_fine_tunes_under_ddp_its_head_fitted_before_the_fork():
    # Where the head is fitted on a GPU machine: tests/thanosql_assets/models/test_training.py.
    torch.manual_seed(0)
    embedder = untrained_embedder()
    images, targets = halves(64, seed=0)
    messages = []
    result = train_classifier(images, targets, CLASSES, GEOMETRY, replace(CONFIG, devices=2), "resnet18", messages.append, start=embedder)
    assert accuracy(result.classifier, *halves(64, seed=1)) > 0.9
    assert any(m.startswith("fitting the new head on the SimCLR model's features of 64 images") for m in messages)
    assert [m.split(":")[0] for m in messages if "images/s" in m] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]


def test_self_training_adds_the_unlabelled_images_the_probe_labels_with_confidence():
    torch.manual_seed(0)
    embedder = untrained_embedder()
    images, targets = halves(8, seed=0)
    pool, _ = halves(64, seed=5)
    messages = []
    result = train_classifier(images, targets, CLASSES, GEOMETRY, CONFIG, "resnet18", messages.append, start=embedder, unlabelled=pool)
    assert 0 < result.pseudo_labelled <= 64
    assert any(f"the probe labels {result.pseudo_labelled} of 64 unlabelled images" in m for m in messages)
    assert any(m.startswith(f"training encoder of the SimCLR model (small_cnn) + linear head on {8 + result.pseudo_labelled} images") for m in messages)
    assert accuracy(result.classifier, *halves(64, seed=1)) > 0.9
    with pytest.raises(ValueError, match="unlabelled images"):
        train(images, targets, start=embedder, unlabelled=np.zeros((4, 1, 8, 8), dtype=np.uint8))


def test_a_trained_classifier_trains_further_as_a_copy_with_its_classes():
    images, targets = halves(48, seed=0)  # as many as a new network needs to learn the task on every CPU
    first = train(images, targets).classifier
    head = first.head.weight.clone()
    more = train(*halves(48, seed=3), start=first)
    assert more.classifier is not first and more.classifier.classes == CLASSES
    assert more.network.endswith("(1-channel 16 px input), trained further")
    torch.testing.assert_close(first.head.weight, head, rtol=0, atol=0)
    assert accuracy(more.classifier, *halves(64, seed=1)) >= 0.95


def test_a_pretrained_classifier_of_other_classes_is_fine_tuned_with_a_new_head():
    images, targets = halves(32, seed=0)
    first = train(images, targets).classifier
    encoder = {name: value.clone() for name, value in first.encoder.state_dict().items()}
    flipped = ["bright right", "bright left"]  # other labels, and the halves' classes swapped
    messages = []
    result = train_classifier(images, 1 - targets, flipped, GEOMETRY, CONFIG, "resnet18", messages.append, start=first)
    assert result.classifier.classes == flipped and result.network.endswith("fine-tuned with a new head")
    assert result.config.learning_rate == FINE_TUNE_LEARNING_RATE and any("fitting the new head" in m for m in messages)
    probe, truth = halves(64, seed=1)
    assert accuracy(result.classifier, probe, 1 - truth) >= 0.95
    for name, value in first.encoder.state_dict().items():  # the start is left as it was
        torch.testing.assert_close(value, encoder[name], rtol=0, atol=0)


def test_one_class_or_one_image_is_a_clear_error():
    images, _ = halves(4, seed=0)
    with pytest.raises(DataError, match="at least 2 classes; every training image has the label 'left'"):
        train_classifier(images, np.zeros(4), ["left"], GEOMETRY, CONFIG, "resnet18", lambda _: None)
    with pytest.raises(DataError, match="at least 2 training images"):
        train(images[:1], np.zeros(1))


def test_every_image_is_in_one_batch_per_epoch_and_no_batch_has_one():
    images = torch.arange(33).reshape(33, 1, 1, 1)
    batches = LabelledBatches(images, torch.arange(33), batch_size=8, seed=0)
    epoch = [targets.tolist() for _, targets in batches]
    assert [len(batch) for batch in epoch] == [8, 8, 8, 9] and len(batches) == 4
    assert sorted(sum(epoch, [])) == list(range(33))
    assert [len(batch) for _, batch in LabelledBatches(images[:5], torch.arange(5), batch_size=1, seed=0)] == [2, 3]


def test_training_shifts_each_image_by_at_most_a_small_share_of_its_size():
    images = torch.zeros(64, 1, 28, 28)
    images[:, :, 12:16, 12:16] = 1.0  # a square in the middle
    torch.manual_seed(0)
    shifted = random_shift(images, fraction=0.05)
    rows = torch.arange(28, dtype=torch.float32)

    def centre(batch):  # centre of mass, B x 2 (row, column)
        mass = batch[:, 0]
        return torch.stack([(mass.sum(2) * rows).sum(1), (mass.sum(1) * rows).sum(1)], dim=1) / mass.sum((1, 2))[:, None]

    moved = (centre(shifted) - centre(images)).abs()
    assert shifted.shape == images.shape
    assert moved.max() <= 0.05 * 28 + 1e-4 and moved.max() > 0.3  # each direction, up to 1.4 px
    assert len({tuple(offset) for offset in moved.round(decimals=2).tolist()}) > 32  # a different shift per image
    torch.testing.assert_close(random_shift(images, fraction=0.0), images)
