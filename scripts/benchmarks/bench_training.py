"""Seconds per training iteration (waiting for data and the optimiser step separately) and peak memory.

    python scripts/benchmarks/bench_training.py [--reference-bin DIR] [--iterations 20] [--only 2d|3d]
                                                [--device cpu|cuda] [--repeats 1] [--bf16]

Generates a 2D and a 3D dataset, plans and preprocesses them, then times ``--iterations``
training iterations (after ``--warmup`` untimed ones) of the real trainer: ``load`` is the time
the training loop waits for the next augmented batch (near 0 when the augmentation workers keep
up), ``step`` the forward/backward/optimiser step. Two settings are measured:

- ``defaults``: each implementation picks augmentation workers and torch threads itself, as
  ``nnUNetv2_train -device cpu`` does (nnU-Net v2: torch threads = all cores, workers =
  min(12, cores)); OMP_NUM_THREADS and nnUNet_n_proc_DA are removed from the environment.
- ``1 thread, in-process``: one torch thread and no augmentation workers (nnUNet_n_proc_DA=0),
  so nothing runs in parallel: ``load`` is then the whole CPU cost of sampling and augmenting a
  batch and ``step`` that of the step, which compares the implementations part by part.

With ``--reference-bin`` (the bin/ folder of a virtual environment holding the original nnU-Net
v2) the same raw data is planned and preprocessed by nnU-Net v2 itself (the plans are checked to
be the same), its nnUNetTrainer is timed in the same way, and the table shows the ratios. Each
measurement runs in a fresh process (this script with ``--measure``, under that environment's
Python). On CUDA the peak memory column is torch's peak allocation. On a machine shared with
other work the figures vary from run to run: compare rows measured together, and use --repeats.
``--bf16`` adds our trainer with ``--bf16`` (bfloat16 network on the CPU) as a third implementation.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import plan_and_preprocess_with, print_table, run_checked  # noqa: E402

DATASETS = {
    "2d": dict(dataset_id=811, num_cases=20, shape=(160, 160), file_ending=".png"),
    "3d": dict(dataset_id=812, num_cases=10, shape=(32, 96, 96), spacing=(3.0, 1.0, 1.0)),
}
CONFIGURATION = {"2d": "2d", "3d": "3d_fullres"}
SETTINGS = {"defaults": None, "1 thread, in-process": 0}
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "nnUNet_n_proc_DA")


# ----- measurement (runs in a fresh process, under our package or nnU-Net v2's) -----


def _timed_iterations(next_batch, train_step, warmup: int, iterations: int) -> dict[str, float]:
    loads, steps = [], []
    for index in range(warmup + iterations):
        start = time.perf_counter()
        batch = next_batch()
        loaded = time.perf_counter()
        train_step(batch)  # both implementations return the loss on the CPU, so the step is finished here
        if index >= warmup:
            loads.append(loaded - start)
            steps.append(time.perf_counter() - loaded)
    return {
        "load_s": statistics.mean(loads),
        "step_s": statistics.mean(steps),
        "step_median_s": statistics.median(steps),
    }


def _peak_memory(device: str) -> dict[str, float]:
    import resource

    import torch

    result = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def measure_ours(
    dataset: str,
    configuration: str,
    device: str,
    workers: int | None,
    warmup: int,
    iterations: int,
    cpu_bf16: bool = False,
) -> dict:
    """Time our nnUNetTrainer's data stream and train_step."""
    import torch

    from nnunetv2.training.run_training import TrainingRequest, build_trainer, prepare_run_environment

    trainer = build_trainer(
        TrainingRequest(
            dataset,
            configuration,
            0,
            device=device,
            disable_checkpointing=True,
            num_data_workers=workers,
            cpu_bf16=cpu_bf16,
        )
    )
    # the launcher picks the torch threads (kept at 1 by OMP_NUM_THREADS in the in-process setting)
    prepare_run_environment(trainer, seed=None)
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    try:
        while trainer.iteration_timer is not None:  # defaults: let the thread trial choose first, as a run would
            trainer._next_train_step()
        times = _timed_iterations(lambda: next(trainer.dataloader_train), trainer.train_step, warmup, iterations)
    finally:
        trainer._close_dataloaders()
    return {
        **times,
        **_peak_memory(device),
        "torch_threads": torch.get_num_threads(),
        "workers": trainer.num_data_workers,
    }


def measure_reference(
    dataset: str, configuration: str, device: str, workers: int | None, warmup: int, iterations: int
) -> dict:
    """Time nnU-Net v2's nnUNetTrainer the same way (threads as its nnUNetv2_train -device sets them)."""
    import multiprocessing

    import torch

    import nnunetv2
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

    if device == "cpu":
        torch.set_num_threads(multiprocessing.cpu_count() if workers is None else 1)
    else:
        torch.set_num_threads(1)
    trainer = get_trainer_from_args(dataset, configuration, 0, device=torch.device(device))
    trainer.disable_checkpointing = True
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    try:
        times = _timed_iterations(lambda: next(trainer.dataloader_train), trainer.train_step, warmup, iterations)
    finally:
        for loader in (trainer.dataloader_train, trainer.dataloader_val):
            if hasattr(loader, "_finish"):
                loader._finish()
    return {
        **times,
        **_peak_memory(device),
        "torch_threads": torch.get_num_threads(),
        "workers": get_allowed_n_proc_DA(),
        "package": str(Path(nnunetv2.__file__).parent),
    }


# ----- orchestration -----


def _plans_summary(plans_file: Path, configuration: str) -> dict:
    configuration_plans = json.loads(plans_file.read_text())["configurations"][configuration]
    arch = configuration_plans["architecture"]["arch_kwargs"]
    return {
        "patch_size": configuration_plans["patch_size"],
        "batch_size": configuration_plans["batch_size"],
        "spacing": configuration_plans["spacing"],
        "features_per_stage": arch["features_per_stage"],
        "strides": arch["strides"],
        "kernel_sizes": arch["kernel_sizes"],
    }


def _measure(
    python: Path,
    role: str,
    env: dict[str, str],
    dataset: str,
    configuration: str,
    device: str,
    workers: int | None,
    args: argparse.Namespace,
) -> dict:
    env = {k: v for k, v in env.items() if k not in _THREAD_VARIABLES and k != "PYTHONPATH"}
    if workers is not None:
        env.update(OMP_NUM_THREADS="1", nnUNet_n_proc_DA=str(workers))
    command = [
        str(python),
        str(Path(__file__).resolve()),
        "--measure",
        role,
        "--dataset",
        dataset,
        "--configuration",
        configuration,
        "--device",
        device,
        "--warmup",
        str(args.warmup),
        "--iterations",
        str(args.iterations),
    ] + (["--workers", str(workers)] if workers is not None else [])
    return json.loads(run_checked(command, env).strip().splitlines()[-1])


def _setting_rows(
    label: str,
    device: str,
    setting: str,
    workers: int | None,
    tools: dict,
    envs: dict,
    dataset: str,
    configuration: str,
    args: argparse.Namespace,
) -> list[list]:
    """Measure every implementation (alternating order over the repeats); return its rows and the ratio row."""
    results: dict[str, list[dict]] = {name: [] for name in tools}
    for repeat in range(args.repeats):
        for name in list(tools) if repeat % 2 == 0 else list(tools)[::-1]:
            tool_bin, role = tools[name]
            measured = _measure(tool_bin / "python", role, envs[name], dataset, configuration, device, workers, args)
            results[name].append(measured)
            print(
                f"  {label} {device} {setting} {name}: {measured['load_s']:.3f} + {measured['step_s']:.3f} s/it",
                file=sys.stderr,
                flush=True,
            )
    rows = []
    for name, measured in results.items():
        load = statistics.mean(m["load_s"] for m in measured)
        step = statistics.mean(m["step_s"] for m in measured)
        memory = max(m.get("peak_cuda_mb", m["peak_rss_mb"]) for m in measured)
        rows.append(
            [
                label,
                device,
                setting,
                name,
                f"{measured[0]['torch_threads']}/{measured[0]['workers']}",
                load,
                step,
                load + step,
                memory,
            ]
        )
    reference = next((row for row in rows if row[3] == "nnU-Net v2"), None)
    if reference is not None:
        rows += [
            [
                "",
                "",
                "",
                f"ratio ref/{row[3]}",
                "",
                "",
                reference[6] / row[6],
                reference[7] / row[7],
                reference[8] / row[8],
            ]
            for row in rows
            if row is not reference
        ]
    return rows


def _dataset_rows(key: str, tools: dict, devices: list[str], work: Path, args: argparse.Namespace) -> list[list]:
    """Generate, plan and preprocess one dataset with every implementation, then measure each setting."""
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset

    spec = dict(DATASETS[key])
    dataset_id = spec.pop("dataset_id")
    configuration = CONFIGURATION[key]
    dataset = f"Dataset{dataset_id}_BenchTraining{key.upper()}"
    generate_synthetic_dataset(work / "raw" / dataset, **spec)
    prepared = {
        role: plan_and_preprocess_with(tool_bin, work / role, work / "raw", dataset_id, configuration)
        for tool_bin, role in tools.values()
        if role in ("ours", "reference")
    }
    envs = {name: prepared["reference" if role == "reference" else "ours"] for name, (_, role) in tools.items()}
    summaries = {
        name: _plans_summary(Path(env["nnUNet_preprocessed"]) / dataset / "nnUNetPlans.json", configuration)
        for name, env in envs.items()
    }
    print(f"{key}: plans {json.dumps(summaries['ours'])}")
    if len({json.dumps(s, sort_keys=True) for s in summaries.values()}) > 1:
        print(f"{key}: WARNING the plans differ: {json.dumps(summaries)}")
    label = f"{key} {summaries['ours']['patch_size']}x{summaries['ours']['batch_size']}"
    return [
        row
        for device in devices
        for setting, workers in SETTINGS.items()
        for row in _setting_rows(label, device, setting, workers, tools, envs, dataset, configuration, args)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-bin", type=Path, default=None, help="bin/ of an nnU-Net v2 venv")
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument("--repeats", type=int, default=1, help="measure each row this many times (alternating)")
    parser.add_argument("--only", choices=sorted(DATASETS), default=None)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cpu, plus cuda when present")
    parser.add_argument("--bf16", action="store_true", help="also measure ours with --bf16")
    parser.add_argument("--json", type=Path, default=None, help="also write the table's rows to this JSON file")
    parser.add_argument("--measure", choices=["ours", "ours-bf16", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--configuration", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure = (
            measure_reference
            if args.measure == "reference"
            else functools.partial(measure_ours, cpu_bf16=args.measure == "ours-bf16")
        )
        print(
            json.dumps(
                measure(args.dataset, args.configuration, args.device, args.workers, args.warmup, args.iterations)
            )
        )
        return

    import torch

    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    tools = {"ours": (Path(sys.executable).parent, "ours")}
    if args.bf16:
        tools["ours --bf16"] = (Path(sys.executable).parent, "ours-bf16")
    if args.reference_bin:
        tools["nnU-Net v2"] = (args.reference_bin, "reference")
    print(f"machine: {os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f}")
    work = Path(tempfile.mkdtemp(prefix="bench_training_"))
    try:
        rows = [
            row
            for key in DATASETS
            if args.only in (None, key)
            for row in _dataset_rows(key, tools, devices, work, args)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(
        [
            "data patch x batch",
            "device",
            "setting",
            "implementation",
            "threads/workers",
            "load s/it",
            "step s/it",
            "total s/it",
            "peak MB",
        ],
        rows,
    )
    if args.json:
        args.json.write_text(json.dumps(rows))
    print(
        f"load average at the end {os.getloadavg()[0]:.1f} (other processes share the cores: compare rows measured "
        f"together)"
    )


if __name__ == "__main__":
    main()
