"""Run a batch iterator in background worker processes (or in-process), with clear errors and clean shutdown.

Each worker gets its own copy of the loader, reseeded from one seed sequence, and fills its own queue;
batches are taken from the workers in turn, so a seeded run gives the same batch sequence every time.
Worker 0 uses the same seed as the in-process mode, so one worker reproduces zero workers exactly.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import traceback
from typing import Any

import numpy as np

from nnunetv2.exceptions import NnUNetError, TrainingError

logger = logging.getLogger(__name__)

QUEUE_SIZE_PER_WORKER = 2
POLL_SECONDS = 1.0
JOIN_SECONDS = 5.0


class DataLoaderWorkerError(RuntimeError):
    """A background worker failed; the message carries the worker's exception and traceback."""


def default_num_workers() -> int:
    """Return the number of augmentation workers: ``nnUNet_n_proc_DA`` when set, else chosen from the CPUs."""
    value = os.environ.get("nnUNet_n_proc_DA")
    if value is not None:
        try:
            chosen = int(value)
        except ValueError:
            chosen = -1
        if chosen < 0:
            raise TrainingError(f"environment variable nnUNet_n_proc_DA must be a non-negative integer, got '{value}'")
        logger.info("augmentation workers: %d (from nnUNet_n_proc_DA)", chosen)
        return chosen
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # the training step needs cores too: on small machines one worker overlaps augmentation with the
    # step without starving it; nnU-Net v2 caps its default at 12
    chosen = 1 if cpus <= 2 else min(12, cpus - 1)
    logger.info("augmentation workers: %d for %d CPU core(s) (set nnUNet_n_proc_DA to override)", chosen, cpus)
    return chosen


def worker_seeds(seed: int | None, num_workers: int) -> list[int]:
    """Return one independent 32-bit seed per worker (fresh entropy when ``seed`` is None)."""
    children = np.random.SeedSequence(seed).spawn(max(1, num_workers))
    return [int(child.generate_state(1)[0]) for child in children]


def _pin(batch: dict[str, Any]) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():  # pinning needs a CUDA runtime and only helps host-to-GPU copies
        return batch
    target = batch["target"]
    return dict(
        batch,
        data=batch["data"].pin_memory(),
        target=[t.pin_memory() for t in target] if isinstance(target, list) else target.pin_memory(),
    )


def _describe_exception(e: BaseException) -> str:
    return f"{type(e).__module__}.{type(e).__qualname__}: {e}\n\nworker traceback:\n" + "".join(
        traceback.format_exception(type(e), e, e.__traceback__)
    )


def _worker_main(loader, seed: int, batches, stop_event, parent_pid: int) -> None:
    """Produce batches into ``batches`` until ``stop_event`` is set; report an exception instead of dying silently."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the main process' business; it stops us
    torch.set_num_threads(1)  # each worker is one core's worth of augmentation

    def keep_going() -> bool:
        # an orphaned worker (main process killed) must not live on
        return not stop_event.is_set() and os.getppid() == parent_pid

    try:
        loader.set_seed(seed)
        while keep_going():
            batch = next(loader)
            while keep_going():
                try:
                    batches.put(("batch", batch), timeout=POLL_SECONDS)
                    break
                except queue.Full:
                    continue
    except BaseException as e:  # noqa: BLE001 - everything must reach the main process
        batches.put(("error", _describe_exception(e), e if isinstance(e, NnUNetError) else None))
        # stay alive until told to stop: batches queued before the error live in our shared memory,
        # and the main process can only receive them while we exist
        while not stop_event.wait(POLL_SECONDS) and os.getppid() == parent_pid:
            pass
        return
    # nobody will read the batches still queued: do not block process exit on flushing them
    batches.cancel_join_thread()


def _drain(batches) -> None:
    while True:
        try:
            batches.get_nowait()
        except (queue.Empty, OSError, ValueError, EOFError):
            return


class InProcessLoader:
    """Batches computed in the calling process, with the same interface as the multi-process loader."""

    def __init__(self, loader, seed: int | None = None, pin_memory: bool = False):
        self.loader = loader
        self.pin_memory = pin_memory
        if seed is not None:
            loader.set_seed(worker_seeds(seed, 1)[0])

    def __iter__(self) -> InProcessLoader:
        return self

    def __next__(self) -> dict[str, Any]:
        batch = next(self.loader)
        return _pin(batch) if self.pin_memory else batch

    def close(self) -> None:
        """Nothing to release; present so both loaders are used the same way."""

    def __enter__(self) -> InProcessLoader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class MultiProcessLoader:
    """Batches computed by ``num_workers`` worker processes, returned in round-robin order."""

    def __init__(
        self,
        loader,
        num_workers: int,
        seed: int | None = None,
        pin_memory: bool = False,
        start_method: str | None = None,
    ):
        import torch.multiprocessing as mp  # registers torch's shared-memory pickling of tensors

        context = mp.get_context(start_method)
        self.pin_memory = pin_memory
        self._closed = False
        self._next_worker = 0
        self._stop = context.Event()
        self._queues = [context.Queue(maxsize=QUEUE_SIZE_PER_WORKER) for _ in range(num_workers)]
        self._workers = []
        for index, (worker_seed, batches) in enumerate(zip(worker_seeds(seed, num_workers), self._queues)):
            process = context.Process(  # type: ignore[attr-defined]
                target=_worker_main,
                args=(loader, worker_seed, batches, self._stop, os.getpid()),
                name=f"nnunet-data-worker-{index}",
                daemon=True,
            )
            process.start()
            self._workers.append(process)

    def __iter__(self) -> MultiProcessLoader:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._closed:
            raise StopIteration
        index = self._next_worker
        self._next_worker = (index + 1) % len(self._workers)
        kind, *payload = self._get(index)
        if kind == "error":
            description, user_error = payload
            self.close()
            if user_error is not None:
                # a problem the user can fix (e.g. a broken case file): keep its own one-line message
                logger.debug("data loader worker %d failed: %s", index, description)
                raise user_error
            raise DataLoaderWorkerError(f"data loader worker {index} failed with {description}")
        batch = payload[0]
        return _pin(batch) if self.pin_memory else batch

    def _get(self, index: int) -> tuple:
        while True:
            try:
                return self._queues[index].get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self._workers[index].is_alive():
                    raise self._worker_died(index, "without reporting an error") from None
            except (OSError, EOFError, RuntimeError) as e:  # a queued batch whose worker vanished
                raise self._worker_died(index, f"(receiving its batch failed: {type(e).__name__}: {e})") from e

    def _worker_died(self, index: int, detail: str) -> DataLoaderWorkerError:
        process = self._workers[index]
        process.join(JOIN_SECONDS)
        code = process.exitcode
        self.close()
        if code is None:
            return DataLoaderWorkerError(f"data loader worker {index} failed {detail}")
        hint = " (killed by a signal; out of memory?)" if code < 0 else ""
        return DataLoaderWorkerError(f"data loader worker {index} died with exit code {code}{hint} {detail}")

    def close(self) -> None:
        """Stop and join every worker; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for batches in self._queues:
            _drain(batches)  # unblocks workers waiting to put
        for process in self._workers:
            process.join(JOIN_SECONDS)
            if process.is_alive():
                process.terminate()
                process.join()
        for batches in self._queues:
            _drain(batches)
            batches.close()
            batches.join_thread()

    def __enter__(self) -> MultiProcessLoader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_workers"):
            self.close()


def make_background_loader(
    loader, num_workers: int, seed: int | None = None, pin_memory: bool = False, start_method: str | None = None
) -> InProcessLoader | MultiProcessLoader:
    """Return an iterator over ``loader``'s batches computed by ``num_workers`` processes (0: in-process).

    A ``seed`` reseeds the loader (one derived seed per worker; worker 0's equals the in-process one).
    ``start_method`` picks the multiprocessing start method (default: the platform's); the worker code
    is spawn-safe. Call ``close()`` or use the result as a context manager to stop the workers.
    """
    if num_workers < 0:
        raise TrainingError(f"the number of data loader workers must be >= 0, got {num_workers}")
    if num_workers == 0:
        return InProcessLoader(loader, seed, pin_memory)
    return MultiProcessLoader(loader, num_workers, seed, pin_memory, start_method)
