"""Run one function over many per-case jobs, in worker processes when that pays off."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


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
    from nnunetv2.utilities.progress import progress_bar

    jobs = list(jobs)
    workers = min(num_processes, len(jobs) // max(min_jobs_per_process, 1))

    def bar(results: Iterable) -> Iterable:
        return progress_bar(results, total=len(jobs), desc=progress or "", unit="case", disable=progress is None)

    if workers <= 1:
        return list(bar(map(function, jobs)))
    import multiprocessing

    # spawn: forked workers can deadlock on thread pools numpy or torch started in the parent
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(bar(pool.map(function, jobs)))
