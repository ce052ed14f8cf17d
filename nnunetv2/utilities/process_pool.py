"""Run one function over many per-case jobs, in worker processes when that pays off."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def ignore_interrupts() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group, but only the parent should handle it.

    The parent stops the pool and prints one line; workers that also raised KeyboardInterrupt printed
    a traceback each (about 95 lines for plan_and_preprocess).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _QuietSpawnProcess(multiprocessing.context.SpawnProcess):
    """A spawned process that is born with SIGINT blocked, so a Ctrl-C during its start-up cannot kill it.

    The initializer (``ignore_interrupts``) runs only after the worker has imported its modules; a Ctrl-C
    in that window killed the worker, the pool broke, and Python printed tracebacks from its threads.
    The mask is inherited through fork and exec; the parent's thread unblocks at once, so no Ctrl-C is lost.
    """

    def start(self) -> None:
        if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
            return super().start()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _QuietSpawnContext(multiprocessing.context.SpawnContext):
    Process = _QuietSpawnProcess


def spawn_context() -> multiprocessing.context.SpawnContext:
    """Return a 'spawn' multiprocessing context whose workers leave Ctrl-C to the parent.

    Spawn, not fork: forked workers can deadlock on thread pools numpy, blosc2 or torch started in the parent.
    Use with ``ignore_interrupts`` as the pool's initializer.
    """
    return _QuietSpawnContext()


def spawn_executor(max_workers: int) -> ProcessPoolExecutor:
    """Return a ProcessPoolExecutor of spawned workers that leave Ctrl-C to the parent."""
    return ProcessPoolExecutor(max_workers, mp_context=spawn_context(), initializer=ignore_interrupts)


def map_over_cases(
    function: Callable[[Job], Result],
    jobs: Iterable[Job],
    num_processes: int = 1,
    min_jobs_per_process: int = 2,
    progress: str | None = None,
) -> list[Result]:
    """Return ``[function(job) for job in jobs]`` in order, using up to ``num_processes`` spawned workers.

    Runs inline when there are too few jobs for a worker to earn its start-up cost; ``function``
    must be importable (a module-level function) to run in a worker. ``progress`` names a
    progress bar to show (none when None).
    """
    from nnunetv2.utilities.parameters import check_number
    from nnunetv2.utilities.progress import progress_bar

    check_number("the number of processes (-np)", num_processes, "integer >= 0")
    jobs = list(jobs)
    workers = min(num_processes, len(jobs) // max(min_jobs_per_process, 1))

    def bar(results: Iterable) -> Iterable:
        return progress_bar(results, total=len(jobs), desc=progress or "", unit="case", disable=progress is None)

    if workers <= 1:
        return list(bar(map(function, jobs)))
    with spawn_executor(workers) as pool:
        return list(bar(pool.map(function, jobs)))
