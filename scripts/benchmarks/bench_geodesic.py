"""Benchmark the raster-scan geodesic distance: seconds per call and error against exact Dijkstra.

Usage: python scripts/benchmarks/bench_geodesic.py [--threads 2] [--repeats 3]
                                                   [--reference-max-voxels 2200000] [--skip-timing] [--skip-accuracy]
"sweeps auto" is the default (sweep until the mean relative decrease of a sweep is < 0.5%).
On a shared machine, pin the process (e.g. `taskset -c 0,1`) and read the CPU-seconds column next to
wall time: a large gap means other processes took the cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from nnunetv2.scribble_loop.geodesic import geodesic_distance
from nnunetv2.scribble_loop.geodesic_reference import exact_geodesic_distance

TIMING_SHAPES = [(512, 512), (128, 128, 128), (256, 256, 128)]
ACCURACY_CASES = [((512, 512), (1.0, 1.0)), ((64, 64, 64), (2.0, 0.8, 0.8)), ((128, 128, 128), (1.0, 1.0, 1.0))]


def synthetic_case(shape: tuple[int, ...], seed: int = 0, kind: str = "phantom"):
    """Return (image, seeds, step_cost): a phantom (smooth background, bright ball, noise) or white noise,
    a line scribble inside the ball, and a step cost 1 - P from a blurred ball 'probability'."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    radius = np.sqrt(sum((g - 0.2 * (i % 2)) ** 2 for i, g in enumerate(grid)))
    ball = radius < 0.5
    if kind == "noise":
        image = rng.normal(size=shape)
    else:
        image = gaussian_filter(rng.normal(size=shape), 4.0) * 4 + 2.0 * ball + 0.1 * rng.normal(size=shape)
    image = ((image - image.mean()) / image.std()).astype(np.float32)
    seeds = np.zeros(shape, dtype=bool)
    centre = [s // 2 + (round(0.1 * s) if i % 2 else 0) for i, s in enumerate(shape)]
    line = tuple(
        slice(c - s // 8, c + s // 8) if i == len(shape) - 1 else c for i, (c, s) in enumerate(zip(centre, shape))
    )
    seeds[line] = True
    probability = np.clip(gaussian_filter(ball.astype(np.float32), 2.0), 0, 1)
    return image, seeds, (1.0 - probability).astype(np.float32)


class SweepCounter(logging.Handler):
    """Counts the per-sweep debug records of the geodesic module (how many sweeps 'auto' used)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("geodesic distance sweep"):
            self.count += 1


CONFIGS = [("lamb=0 (Euclidean)", 0.0, False), ("lamb=1", 1.0, False), ("lamb=0.5+step_cost", 0.5, True)]


def time_call(device: torch.device, image, seeds, step, lamb: float, iterations: int | None, repeats: int):
    """Return (best wall seconds, CPU seconds of that run) over ``repeats`` calls."""
    image_t, seeds_t = torch.from_numpy(image).to(device), torch.from_numpy(seeds).to(device)
    step_t = None if step is None else torch.from_numpy(step).to(device)
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        geodesic_distance(image_t, seeds_t, lamb=lamb, step_cost=step_t, iterations=iterations)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def relative_error(approx: np.ndarray, exact: np.ndarray, seeds: np.ndarray) -> tuple[float, float, float]:
    """Mean, 99th percentile and max of |approx - exact| / exact over reachable non-seed voxels."""
    valid = ~seeds & np.isfinite(exact) & (exact > 0)
    rel = np.abs(approx[valid].astype(np.float64) - exact[valid]) / exact[valid]
    return float(rel.mean()), float(np.percentile(rel, 99)), float(rel.max())


def print_timing_table(devices: list[torch.device], repeats: int, counter: SweepCounter) -> None:
    """Seconds per call for the timing shapes, with the default (auto) and 2 sweeps."""
    print("\n| shape | device | config | sweeps | seconds | CPU seconds |")
    print("|---|---|---|---|---|---|")
    for shape in TIMING_SHAPES:
        image, seeds, step = synthetic_case(shape)
        for device in devices:
            for name, lamb, with_step in CONFIGS:
                for iterations in (None, 2):
                    counter.count = 0
                    wall, cpu = time_call(device, image, seeds, step if with_step else None, lamb, iterations, repeats)
                    sweeps = f"auto ({counter.count // repeats})" if iterations is None else str(iterations)
                    print(
                        f"| {'x'.join(map(str, shape))} | {device.type} | {name} | {sweeps} | {wall:.3f} | {cpu:.2f} |",
                        flush=True,
                    )


def print_accuracy_table(max_voxels: int, counter: SweepCounter) -> None:
    """Relative error against Dijkstra for the accuracy cases up to ``max_voxels`` voxels."""
    print("\n| shape (spacing) | image | config | sweeps | mean rel. err | p99 rel. err | max rel. err |")
    print("|---|---|---|---|---|---|---|")
    for shape, spacing in ACCURACY_CASES:
        if np.prod(shape) > max_voxels:
            continue
        for kind in ("phantom", "noise"):
            image, seeds, step = synthetic_case(shape, kind=kind)
            for name, lamb, with_step in CONFIGS:
                step_cost = step if with_step else None
                exact = exact_geodesic_distance(image, seeds, spacing, lamb, step_cost)
                for iterations in (None, 2, 4):
                    counter.count = 0
                    approx = geodesic_distance(
                        image, seeds, spacing, lamb, step_cost, iterations=iterations, device="cpu"
                    )
                    mean, p99, worst = relative_error(approx, exact, seeds)
                    sweeps = f"auto ({counter.count})" if iterations is None else str(iterations)
                    print(
                        f"| {'x'.join(map(str, shape))} {spacing} | {kind} | {name} | {sweeps} | "
                        f"{100 * mean:.3f}% | {100 * p99:.2f}% | {100 * worst:.1f}% |",
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reference-max-voxels",
        type=int,
        default=2_200_000,
        help="skip accuracy cases larger than this (Dijkstra memory and time)",
    )
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(
        f"torch {torch.__version__}, threads {args.threads}, cpu affinity {affinity}, "
        f"load average {os.getloadavg()[0]:.1f}, best of {args.repeats}"
    )
    counter = SweepCounter()
    module_logger = logging.getLogger("nnunetv2.scribble_loop.geodesic")
    module_logger.setLevel(logging.DEBUG)
    module_logger.addHandler(counter)

    if not args.skip_timing:
        print_timing_table(devices, args.repeats, counter)
    if not args.skip_accuracy:
        print_accuracy_table(args.reference_max_voxels, counter)


if __name__ == "__main__":
    main()
