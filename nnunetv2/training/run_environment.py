"""The machine side of a run: torch's CPU thread count, and debug.json (settings and environment)."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _busy_cores() -> int:
    return round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0


def cpu_threads_beside_workers(
    num_data_workers: int, world_size: int = 1, consider_load: bool = True
) -> tuple[int, str]:
    """Return (torch CPU threads, why): this process' share of the idle cores minus the augmentation workers.

    OpenMP threads competing with busy processes for the same cores wait on each other and run
    many times slower than one thread (20x measured on a loaded 2-core machine), so cores the
    load average shows as busy are left out, unless ``consider_load`` is False (seeded runs, whose
    results must not depend on the load). An explicit OMP_NUM_THREADS is kept as it is.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "from OMP_NUM_THREADS"
    cores = _cores()
    threads = max(1, cores // world_size - num_data_workers)
    if not consider_load:
        return threads, f"{cores} core(s)"
    busy = _busy_cores()
    return max(1, min(threads, (cores - busy) // world_size)), f"{cores} core(s), load {busy}"


def cpu_threads_without_workers(world_size: int = 1) -> int:
    """Return this process' share of all cores, as if the augmentation workers and other processes needed none.

    Only for a trial against the measured speed: the load average lags by a minute (it still counts a
    job that just ended) and cannot tell how much of a core a worker needs.
    """
    return max(1, _cores() // world_size)


class CpuThreadTrial:
    """Time the first training iterations with each candidate torch thread count and keep the fastest.

    Whether the augmentation workers need a core of their own depends on the model and the data: a
    3D step that takes seconds leaves a light worker idle almost all the time, so reserving a core
    for it makes the step up to twice as slow, while a small 2D network waits for a busy worker whose
    core the step's threads took. After ``warmup`` iterations the candidates take turns (so a drift
    in speed hits both alike) for ``iterations_each`` iterations each; then the fastest stays.
    """

    def __init__(self, candidates: list[int], iterations_each: int = 3, warmup: int = 2):
        self.candidates, self.iterations_each, self.warmup = list(candidates), iterations_each, warmup
        self.seconds: dict[int, list[float]] = {c: [] for c in self.candidates}
        self.iterations = 0
        self.chosen: int | None = None

    def before_iteration(self) -> None:
        """Set the thread count the next iteration is timed with."""
        if self.chosen is None and self.iterations >= self.warmup:
            torch.set_num_threads(self.candidates[(self.iterations - self.warmup) % len(self.candidates)])

    def after_iteration(self, seconds: float) -> str | None:
        """Record an iteration's wall time; return a log line once the choice is made (then it stays)."""
        if self.chosen is not None:
            return None
        if self.iterations >= self.warmup:
            self.seconds[torch.get_num_threads()].append(seconds)
        self.iterations += 1
        if any(len(s) < self.iterations_each for s in self.seconds.values()):
            return None
        means = {c: sum(s) / len(s) for c, s in self.seconds.items()}
        self.chosen = min(means, key=lambda c: means[c])
        torch.set_num_threads(self.chosen)
        tried = ", ".join(f"{c} thread(s) {m:.3f} s/it" for c, m in means.items())
        return f"CPU threads tried over {self.iterations_each} iterations each: {tried}; using {self.chosen}"


def collect_debug_information(trainer) -> dict[str, Any]:
    """Return the trainer's settings (class attributes, as strings like nnU-Net's) and the environment."""
    settings = {
        name: getattr(trainer, name)
        for klass in reversed(type(trainer).__mro__)
        for name, value in vars(klass).items()
        if not name.startswith("_") and isinstance(value, (int, float, str, bool))
    }
    return {
        **{k: str(v) for k, v in settings.items()},
        "trainer_name": type(trainer).__name__,
        "configuration": trainer.configuration_name,
        "options": trainer.init_args.get("options"),
        "fold": str(trainer.fold),
        "device": str(trainer.device),
        "world_size": trainer.dist.world_size,
        "seed": trainer.seed,
        "num_data_workers": trainer.num_data_workers,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "cuda_device": torch.cuda.get_device_name() if trainer.device.type == "cuda" else None,
        "python": platform.python_version(),
        "hostname": platform.node(),
        "deep_supervision_scales": trainer._get_deep_supervision_scales(),
        "inference_allowed_mirroring_axes": trainer.inference_allowed_mirroring_axes,
    }
