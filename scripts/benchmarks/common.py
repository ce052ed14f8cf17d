"""Shared helpers for the benchmark scripts: timing a command with its peak memory, and tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def run_measured(command: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, peak resident memory in MB of it and its children)."""
    start = time.perf_counter()
    process = subprocess.Popen(list(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        sys.exit(f"command failed ({process.returncode}): {' '.join(command)}\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def nnunet_env(root: Path) -> dict[str, str]:
    """Environment with the three nnU-Net folders under ``root``."""
    env = dict(os.environ)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir(parents=True, exist_ok=True)
        env[name] = str(root / name)
    return env


def run_checked(command: Sequence[str], env: dict[str, str]) -> str:
    """Run ``command``; return its stdout, or exit with its stderr's tail if it fails."""
    result = subprocess.run(list(command), env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"command failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-3000:]}")
    return result.stdout


def plan_and_preprocess_with(tool_bin: Path, root: Path, raw: Path, dataset_id: int, configuration: str) -> dict:
    """Plan and preprocess ``dataset_id`` from ``raw`` into ``root`` with the tool in ``tool_bin``; return its env."""
    env = nnunet_env(root)
    env["nnUNet_raw"] = str(raw)
    command = [str(tool_bin / "nnUNetv2_plan_and_preprocess"), "-d", str(dataset_id), "-c", configuration]
    run_checked(command + ["-np", "2", "-npfp", "2"], env)
    return env


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain aligned table."""
    cells = [[str(h) for h in header]] + [[f"{c:.2f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for index, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def add_training_run_arguments(parser, dataset_names: Sequence[str]) -> None:
    """Options shared by the benchmarks that train generated datasets with a fixed budget and seed."""
    parser.add_argument("--only", choices=sorted(dataset_names), default=None)
    parser.add_argument("--epochs", type=int, default=None, help="epochs of both trainings (default per dataset)")
    parser.add_argument("--iterations", type=int, default=None, help="iterations per epoch (default per dataset)")
    parser.add_argument("--num_test", type=int, default=5, help="test cases (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def start_training_run(threads: int, prefix: str) -> Path:
    """Pin torch to ``threads``, quiet the logs, and point the nnU-Net folders at a new temporary folder."""
    import logging
    import tempfile

    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(nnunet_env(work))
    return work


def shrink_planned_network(
    plans_file: Path, configuration: str, features: Sequence[int], batch_size: int | None = None
) -> None:
    """Give the planned U-Net of ``configuration`` fewer features per stage (the topology stays) for CPU runs."""
    import json

    plans = json.loads(plans_file.read_text())
    planned = plans["configurations"][configuration]
    arch = planned["architecture"]["arch_kwargs"]
    arch["features_per_stage"] = list(features)[: arch["n_stages"]]
    if batch_size is not None:
        planned["batch_size"] = batch_size
    plans_file.write_text(json.dumps(plans, indent=2))
