"""Short CPU trainings: they learn something raw pixels do not know, and they are reproducible."""

from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import MIRROR
from thanosql_assets.defs.mnist import read_idx
from thanosql_assets.models.evaluation import precision_at_k
from thanosql_assets.models.images import ImageGeometry
from thanosql_assets.models.simclr.config import SimCLRConfig
from thanosql_assets.models.simclr.trainer import train_simclr

DEFAULTS = SimCLRConfig()
DIGITS = ImageGeometry(1, 28, 28)


@pytest.fixture(scope="module")
def mnist():
    images = read_idx(MIRROR / "train-images-idx3-ubyte.gz")[:, None]
    labels = read_idx(MIRROR / "train-labels-idx1-ubyte.gz")
    return images, labels


def train(images, **options):
    return train_simclr(images, DIGITS, replace(DEFAULTS, **options), progress=lambda _: None)


def test_a_short_training_beats_raw_pixels(mnist):
    images, labels = mnist
    gallery, queries = slice(0, 600), slice(600, 1000)
    result = train(images[gallery], max_epochs=8)
    embedder = result.embedder
    learned = precision_at_k(embedder.embed(images[gallery]), labels[gallery], embedder.embed(images[queries]), labels[queries])
    raw = precision_at_k(images[gallery], labels[gallery], images[queries], labels[queries])
    assert learned[4] > raw[4] + 0.03, (learned, raw)
    assert result.epoch_losses[-1] < result.epoch_losses[0]


def test_same_seed_same_data_same_embeddings(mnist):
    images, _ = mnist
    first = train(images[:256], max_epochs=2, seed=7).embedder.embed(images[256:320])
    second = train(images[:256], max_epochs=2, seed=7).embedder.embed(images[256:320])
    other = train(images[:256], max_epochs=2, seed=8).embedder.embed(images[256:320])
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_progress_reports_every_epoch(mnist):
    images, _ = mnist
    messages, epochs = [], []
    train_simclr(
        images[:128], DIGITS, replace(DEFAULTS, max_epochs=3, batch_size=64), messages.append,
        on_epoch=lambda epoch, loss, rate: epochs.append((epoch, loss, rate)),
    )
    assert [m.split(":")[0] for m in messages if m.startswith("epoch")] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("images/s" in m for m in messages if m.startswith("epoch"))
    assert [e for e, _, _ in epochs] == [0, 1, 2] and all(rate > 0 for _, _, rate in epochs)


def test_defaults_follow_the_data():
    grey = DEFAULTS.resolved(DIGITS, "cpu")
    colour = DEFAULTS.resolved(ImageGeometry(3, 64, 64), "cpu")
    assert (grey.horizontal_flip, grey.color_jitter, grey.stroke) == (False, 0.0, 0.5)
    assert (colour.horizontal_flip, colour.color_jitter, colour.stroke) == (True, 0.4, 0.0)
    assert grey.backbone == colour.backbone == "small_cnn"
    assert DEFAULTS.resolved(ImageGeometry(3, 64, 64), "cuda").backbone == "resnet18"
    assert replace(DEFAULTS, horizontal_flip=True).resolved(DIGITS, "cpu").horizontal_flip is True


@pytest.mark.parametrize(("batches_per_epoch", "epochs"), [(1, 80), (8, 80), (16, 40), (21, 31), (22, 30), (469, 30)])
def test_small_tables_get_more_epochs_by_default(batches_per_epoch, epochs):
    assert DEFAULTS.resolved(DIGITS, "cpu", batches_per_epoch=batches_per_epoch).max_epochs == epochs
    assert replace(DEFAULTS, max_epochs=5).resolved(DIGITS, "cpu", batches_per_epoch=batches_per_epoch).max_epochs == 5


def test_a_default_training_reports_the_epochs_it_chose(mnist):
    messages = []
    result = train_simclr(mnist[0][:200], DIGITS, replace(DEFAULTS, batch_size=10), messages.append)
    assert result.config.max_epochs == 32  # 20 batches an epoch: 640 steps
    assert len(result.epoch_losses) == 32 and any("for 32 epochs" in m for m in messages)


def test_too_few_images_is_a_clear_error(mnist):
    from thanosql.errors import DataError

    with pytest.raises(DataError, match="at least 2 training images"):
        train(mnist[0][:1])


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_without_one_is_a_clear_error(mnist):
    from thanosql.errors import DataError

    with pytest.raises(DataError, match="asks for a GPU, but none is available"):
        train(mnist[0][:64], device="cuda")


def test_ddp_on_two_cpu_processes_trains_each_on_its_share_and_reports_from_rank_zero(mnist):
    # Lightning's DDP with gloo, two forked processes: what OPTIONS (devices=2) does on a CPU.
    images, labels = mnist
    messages, epochs = [], []
    config = replace(DEFAULTS, max_epochs=2, batch_size=64, devices=2, seed=3)
    result = train_simclr(
        images[:512], DIGITS, config, messages.append, on_epoch=lambda epoch, loss, rate: epochs.append((epoch, loss, rate))
    )
    # The parent gets rank 0's lines (once per epoch, not once per process) and its epochs, then the trained weights.
    assert [m.split(":")[0] for m in messages if m.startswith("epoch")] == ["epoch 1/2", "epoch 2/2"]
    assert [epoch for epoch, _, _ in epochs] == [0, 1] and result.epoch_losses == [loss for _, loss, _ in epochs]
    single = train(images[:512], max_epochs=2, batch_size=64, seed=3)
    learned = result.embedder.embed(images[512:640])
    assert np.isfinite(learned).all() and not np.allclose(learned, single.embedder.embed(images[512:640]))
    untrained = train_simclr(images[:4], DIGITS, replace(DEFAULTS, max_epochs=1, batch_size=2, learning_rate=1e-7, seed=3), lambda _: None)
    assert not np.allclose(learned, untrained.embedder.embed(images[512:640]), atol=1e-3)
    quality = precision_at_k(learned, labels[512:640], learned, labels[512:640])
    assert quality[4] > 0.5, quality


class RunTerminated(BaseException):
    """What Dagster raises in a step when its run is terminated (a BaseException, like this)."""


@pytest.mark.parametrize("stop", ["interrupt", "run terminated"])
def test_stopping_a_ddp_training_stops_its_processes_and_keeps_interrupts_working(mnist, stop):
    import multiprocessing
    import os
    import signal

    def terminate(signum, frame):
        raise RunTerminated

    handlers = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, terminate)
    expected = KeyboardInterrupt if stop == "interrupt" else RunTerminated

    def stop_at_first_line(message):  # said in the parent while the forked ranks train
        if message.startswith("epoch 1/"):  # a real signal: it wakes the main thread waiting for the ranks
            os.kill(os.getpid(), signal.SIGINT if stop == "interrupt" else signal.SIGTERM)

    config = replace(DEFAULTS, max_epochs=1000, batch_size=64, devices=2)
    try:
        with pytest.raises(expected):
            train_simclr(mnist[0][:256], DIGITS, config, stop_at_first_line)
        assert multiprocessing.active_children() == []
        assert signal.getsignal(signal.SIGINT) is handlers[0]
    finally:
        signal.signal(signal.SIGTERM, handlers[1])
