"""What every trainer shares: the device, a Lightning Trainer set up for in-process training, and
progress lines (epochs, batches) for the person waiting."""

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import lightning as L
import torch

from thanosql.errors import DataError
from thanosql_assets.models.embedder import native_bf16

EpochCallback = Callable[[int, float, float], None]  # (epoch, mean loss, source images per second)


def pick_device(requested: str, distributed: bool = False) -> str:
    """'cuda' or 'cpu' for a requested device ('auto' takes the GPU when there is one).

    Before a `distributed` training GPUs are counted with `torch.cuda.device_count`, which asks
    NVML: `torch.cuda.is_available` initializes the CUDA driver, after which DDP's forked
    processes could not use the GPUs. NVML's answer is the weaker one (a GPU it lists may still
    fail to start), so it is asked only there.
    """
    available = torch.cuda.device_count() > 0 if distributed else torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise DataError("OPTIONS (device='cuda') asks for a GPU, but none is available here.", hint="Use device='auto' or 'cpu'.")
    if requested == "auto":
        return "cuda" if available else "cpu"
    return requested


def is_distributed(devices: int, num_nodes: int) -> bool:
    """Whether training forks DDP processes (see `lightning_trainer`)."""
    return devices * num_nodes > 1


class ProgressReporter(L.Callback):
    """Reports each epoch (loss, images/s) and, during long epochs, batches every few seconds.

    Under DDP the training runs in forked processes: rank 0 sends its lines and epoch results
    to this process through a queue, where `fit_seconds` says the lines as they come and
    replays the epoch callbacks once training is done (in the thread that called it, where
    MLflow's active run is).
    """

    def __init__(self, images: int, max_epochs: int, progress: Callable[[str], None], on_epoch: EpochCallback | None):
        self.images = images
        self.max_epochs = max_epochs
        self.progress = progress
        self.on_epoch = on_epoch
        self.losses: list[float] = []
        self._epoch_started = 0.0
        self._last_report = 0.0
        self._home = os.getpid()
        self._queue = None  # while DDP's forked ranks train (`relayed`): where rank 0 puts its lines and epochs

    def _say(self, trainer, message: str) -> None:
        if os.getpid() == self._home:
            self.progress(message)
        elif trainer.is_global_zero and self._queue is not None:
            self._queue.put(("say", message))

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_started = self._last_report = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.perf_counter()
        if now - self._last_report > 10:
            self._last_report = now
            self._say(trainer, f"epoch {trainer.current_epoch + 1}/{self.max_epochs}: batch {batch_idx + 1}/{trainer.num_training_batches}")

    def on_train_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self._epoch_started
        loss = float(trainer.callback_metrics["train_loss"])
        rate = self.images / seconds if seconds > 0 else float("nan")
        self._say(trainer, f"epoch {trainer.current_epoch + 1}/{self.max_epochs}: loss {loss:.4f}, {rate:,.0f} images/s")
        if os.getpid() == self._home:
            self._epoch_done(trainer.current_epoch, loss, rate)
        elif trainer.is_global_zero and self._queue is not None:
            self._queue.put(("epoch", (trainer.current_epoch, loss, rate)))

    def _epoch_done(self, epoch: int, loss: float, rate: float) -> None:
        self.losses.append(loss)
        if self.on_epoch is not None:
            self.on_epoch(epoch, loss, rate)

    @contextmanager
    def relayed(self, trainer: L.Trainer) -> Iterator[None]:
        """While the block trains (under DDP, in processes forked from this one): the ranks' lines
        said here as they come, then their epochs. The listener never blocks on the queue for long
        and never puts into it, so a rank killed mid-write cannot hang this process."""
        if trainer.world_size == 1:
            yield
            return
        self._queue = multiprocessing.get_context("fork").Queue()  # before the fork, so that the ranks inherit it
        epochs, stop = [], threading.Event()

        def take(timeout: float) -> bool:
            try:
                kind, value = self._queue.get(timeout=timeout)
            except queue.Empty:
                return False
            if kind == "epoch":
                epochs.append(value)
            else:
                try:
                    self.progress(value)
                except Exception:  # noqa: BLE001 - a progress line that cannot be shown must not stop training
                    logging.getLogger("thanosql.progress").exception("could not report training progress")
            return True

        def listen():
            while not stop.is_set():
                take(0.2)

        listener = threading.Thread(target=listen, name="thanosql-training-progress", daemon=True)
        listener.start()
        try:
            yield
        finally:
            stop.set()
            listener.join()
            while take(0.1):  # what the ranks sent before they exited
                pass
            self._queue.close()
            self._queue = None
            for epoch in sorted(epochs):
                self._epoch_done(*epoch)


def fit_seconds(trainer: L.Trainer, module: L.LightningModule, batches, reporter: ProgressReporter) -> float:
    """Train `module` on `batches` (an iterable of batches); the seconds it took. Lightning's
    warnings about a plain iterable's length and torch's deprecations inside Lightning are muted."""
    started = time.perf_counter()
    with warnings.catch_warnings(), reporter.relayed(trainer), _interruptible(trainer):
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch deprecation raised inside Lightning
        try:
            trainer.fit(module, train_dataloaders=batches)
        except torch.multiprocessing.ProcessRaisedException as error:  # a DDP rank failed: its own error, said plainly
            cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise DataError(
                f"Training on {trainer.world_size} processes failed in one of them: {cause}",
                hint="Check the devices (GPU memory, NCCL), or train on fewer devices.",
            ) from error
    return time.perf_counter() - started


@contextmanager
def _interruptible(trainer: L.Trainer) -> Iterator[None]:
    """Training that stops when its run is stopped, and leaves the process as it found it.

    Lightning answers an interrupt (Ctrl+C, a notebook's stop button) with sys.exit(1) after
    setting SIGINT to be ignored, and leaves DDP's forked ranks training: a terminated Dagster
    run would then wait for them at exit, and a notebook or the SQL server could no longer be
    interrupted. So the interrupt stays a KeyboardInterrupt, SIGINT's handler is put back, and
    the ranks are killed whatever ended the fit.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        yield
    except SystemExit as exit_:  # only Lightning's interrupt handling exits from inside fit
        raise KeyboardInterrupt("training was interrupted") from exit_
    finally:
        for process in getattr(trainer.strategy.launcher, "procs", ()):
            if process.is_alive():
                process.kill()
            process.join()
        if sigint is not None:
            signal.signal(signal.SIGINT, sigint)


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process in a DDP process group; (0, 1) outside one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def rank_batches(batches: int) -> range:
    """Which of an epoch's `batches` this process trains on: all of them, or under DDP its share,
    the same number on every rank (DDP steps all ranks together) and none twice when they suffice."""
    rank, world = distributed_rank()
    return range(rank, rank + trained_batches(batches, world), world)


def trained_batches(batches: int, world: int) -> int:
    """Batches an epoch trains on over `world` DDP processes (`rank_batches` of each)."""
    return batches if world == 1 else world * max(batches // world, 1)


def check_devices(device: str, devices: int, num_nodes: int) -> None:
    """Clear errors, before anything forks, where Lightning's would name its internals or only come
    as a timeout: more GPUs than this machine has, CUDA already in use here (forked processes cannot
    use it), several nodes without the launcher's rendezvous variables."""
    if num_nodes > 1 and not all(os.environ.get(name) for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK")):
        raise DataError(
            f"OPTIONS (num_nodes={num_nodes}) trains on {num_nodes} machines, but this run was not started as one of them "
            "(MASTER_ADDR, MASTER_PORT and NODE_RANK are not set).",
            hint="Start the run on every node with those variables (e.g. a Kubernetes PyTorchJob), or leave num_nodes out.",
        )
    if device == "cuda" and torch.cuda.is_initialized():
        raise DataError(
            f"OPTIONS (devices={devices}) forks one process per GPU, but this process already uses CUDA (an earlier statement).",
            hint="Run the statement as a run of its own (production mode launches BUILD), or train on one device.",
        )
    if device == "cuda" and devices > torch.cuda.device_count():
        raise DataError(
            f"OPTIONS (devices={devices}) asks for {devices} GPUs, but this machine has {torch.cuda.device_count()}.",
            hint="Lower devices, or run the statement where the run launcher gives its runs that many GPUs.",
        )


def lightning_trainer(max_epochs: int, device: str, callbacks: list[L.Callback], devices: int = 1, num_nodes: int = 1) -> L.Trainer:
    """A Trainer, bf16 mixed precision where the hardware computes bf16 natively (GPUs from Ampere
    on, CPUs with AMX or AVX512-BF16), with no files written and no console output of its own
    (progress goes through `ProgressReporter`).

    With several devices or nodes: Lightning's DDP, its processes forked from this one (so the
    data and callbacks need not be pickled; a Dagster run cannot re-run its command line as
    Lightning's default launcher would), gloo on CPUs and NCCL on GPUs. Each node runs the same
    statement with MASTER_ADDR, MASTER_PORT and NODE_RANK set by the cluster's launcher. Forking
    needs CUDA untouched in this process, so bf16 is then assumed (GPUs from Ampere on).
    """
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    distributed = is_distributed(devices, num_nodes)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    if distributed:
        from lightning.pytorch.strategies import DDPStrategy

        check_devices(device, devices, num_nodes)
        strategy = DDPStrategy(start_method="fork", process_group_backend="nccl" if device == "cuda" else "gloo")
    bf16 = (device == "cuda" and distributed) or native_bf16(device)
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy if distributed else "auto",
        precision="bf16-mixed" if bf16 else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
