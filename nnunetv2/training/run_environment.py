"""The machine side of a run: torch's CPU thread count, and debug.json (settings and environment)."""
from __future__ import annotations

import os
import platform
from typing import Any

import torch


def cpu_threads_beside_workers(num_data_workers: int, world_size: int = 1,
                               consider_load: bool = True) -> tuple[int, str]:
    """Return (torch CPU threads, why): this process' share of the idle cores minus the augmentation workers.

    OpenMP threads competing with busy processes for the same cores wait on each other and run
    many times slower than one thread (20x measured on a loaded 2-core machine), so cores the
    load average shows as busy are left out, unless ``consider_load`` is False (seeded runs, whose
    results must not depend on the load). An explicit OMP_NUM_THREADS is kept as it is.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "from OMP_NUM_THREADS"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // world_size - num_data_workers)
    if not consider_load or not hasattr(os, "getloadavg"):
        return threads, f"{cores} core(s)"
    busy = round(os.getloadavg()[0])
    return max(1, min(threads, (cores - busy) // world_size)), f"{cores} core(s), load {busy}"


def collect_debug_information(trainer) -> dict[str, Any]:
    """Return the trainer's settings (class attributes, as strings like nnU-Net's) and the environment."""
    settings = {name: getattr(trainer, name) for klass in reversed(type(trainer).__mro__)
                for name, value in vars(klass).items()
                if not name.startswith("_") and isinstance(value, (int, float, str, bool))}
    return {**{k: str(v) for k, v in settings.items()},
            "trainer_name": type(trainer).__name__, "configuration": trainer.configuration_name,
            "fold": str(trainer.fold), "device": str(trainer.device), "world_size": trainer.dist.world_size,
            "seed": trainer.seed, "num_data_workers": trainer.num_data_workers,
            "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
            "cuda_device": torch.cuda.get_device_name() if trainer.device.type == "cuda" else None,
            "python": platform.python_version(), "hostname": platform.node(),
            "deep_supervision_scales": trainer.deep_supervision_scales(),
            "inference_allowed_mirroring_axes": trainer.inference_allowed_mirroring_axes}
