"""One-command check of the CUDA code paths; prints one summary table (run through scripts/gpu_check.sh).

    bash scripts/gpu_check.sh [--reference-bin DIR] [--keep] [--epochs 3] [--iterations 40]

On a machine with CUDA (budget: under 8 minutes on one current datacenter GPU):

1. ``pytest -m cuda``: the tests written for CUDA-only code (compiled AMP training, plain
   checkpoints, CUDA/CPU prediction agreement, 2-GPU DDP), which skip on a CPU-only machine;
2. a 2D and a 3D training of a few epochs on generated data with nnU-Net v2's CUDA defaults
   (float16 AMP, torch.compile; the log must say the network was compiled, not that it fell back);
3. ``-num_gpus 2`` DDP when two devices exist;
4. prediction of the 3D test cases on CUDA and on the CPU: at least 99.9% of the labels equal;
5. with ``--reference-bin`` (bin/ of a venv with nnU-Net v2): bench_training.py on CUDA, ours
   against nnU-Net v2 on the same device and data.

Without CUDA the CPU-safe parts run with a tiny budget (the CUDA tests are collected and skip,
trainings and prediction run on the CPU), so the plumbing is checked; CUDA-only rows say
``skipped``. The exit status is 1 when a row failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# shapes on CUDA / on the CPU (where only the plumbing is checked)
DATASETS = {
    "2d": dict(
        id=871, name="GpuCheck2D", configuration="2d", shape=((256, 256), (96, 96)), args=["--file_ending", ".png"]
    ),
    "3d": dict(id=872, name="GpuCheck3D", configuration="3d_fullres", shape=((48, 128, 128), (24, 48, 48)), args=[]),
}


class Report:
    """Rows of the summary table: step, status, seconds, detail."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, str]] = []

    def add(self, step: str, status: str, seconds: float, detail: str = "") -> None:
        self.rows.append((step, status, seconds, detail))
        print(f"[gpu_check] {step}: {status} ({seconds:.0f} s) {detail}", flush=True)

    def print(self) -> None:
        table = [["step", "status", "s", "detail"]] + [[r[0], r[1], f"{r[2]:.0f}", r[3]] for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        for index, row in enumerate(table):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if index == 0:
                print("  ".join("-" * w for w in widths))

    @property
    def failed(self) -> bool:
        return any(row[1] == "FAIL" for row in self.rows)


def _run(command: list[str], env: dict[str, str], log: Path) -> tuple[bool, float, str]:
    """Run ``command`` with its output in ``log``; return (succeeded, seconds, last line of its output)."""
    start = time.perf_counter()
    with log.open("w") as out:
        status = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO).returncode
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return status == 0, time.perf_counter() - start, (lines[-1][:120] if lines else "")


def _environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("nnUNet_compile", "OMP_NUM_THREADS")}
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (work / name).mkdir(parents=True, exist_ok=True)
        env[name] = str(work / name)
    return env


def check_cuda_tests(report: Report, env: dict, work: Path, cuda: bool) -> None:
    """Run the tests marked cuda (they skip without a device)."""
    ok, seconds, last = _run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests"],
        env,
        work / "pytest_cuda.log",
    )
    status = ("ok" if cuda else "skipped") if ok else "FAIL"
    report.add("pytest -m cuda", status, seconds, last)


def prepare_datasets(report: Report, env: dict, work: Path, cuda: bool) -> bool:
    """Generate the 2D and 3D datasets (with test cases) and plan and preprocess them."""
    start = time.perf_counter()
    shapes = []
    for spec in DATASETS.values():
        shape = [str(s) for s in spec["shape"][0 if cuda else 1]]
        shapes.append("x".join(shape))
        command = [str(BIN / "nnUNetv2_generate_synthetic_dataset"), "-d", str(spec["id"]), "-n", spec["name"]]
        command += ["--num_cases", "12" if cuda else "6", "--num_test", "2", "--overwrite", "--shape", *shape]
        command += spec["args"]
        ok, _, last = _run(command, env, work / f"generate_{spec['id']}.log")
        if ok:
            command = [str(BIN / "nnUNetv2_plan_and_preprocess"), "-d", str(spec["id"]), "-c", spec["configuration"]]
            ok, _, last = _run(command + ["-np", "4"], env, work / f"plan_{spec['id']}.log")
        if not ok:
            report.add("generate + plan + preprocess", "FAIL", time.perf_counter() - start, last)
            return False
    report.add("generate + plan + preprocess", "ok", time.perf_counter() - start, "shapes " + ", ".join(shapes))
    return True


def _model_folder(env: dict, spec: dict) -> Path:
    return (
        Path(env["nnUNet_results"])
        / f"Dataset{spec['id']:03d}_{spec['name']}"
        / (f"nnUNetTrainer__nnUNetPlans__{spec['configuration']}")
    )


def check_training(report: Report, env: dict, work: Path, key: str, device: str, args, num_gpus: int = 1) -> None:
    """Train fold 0 for a few epochs; check the compile line of the log and report the validation Dice."""
    spec = DATASETS[key]
    fold = "1" if num_gpus > 1 else "0"  # DDP trains another fold: fold 0's model stays for the prediction check
    command = [str(BIN / "nnUNetv2_train"), str(spec["id"]), spec["configuration"], fold, "-device", device]
    command += ["-num_epochs", str(args.epochs), "-num_iterations_per_epoch", str(args.iterations)]
    command += ["-num_val_iterations_per_epoch", "5", "-num_gpus", str(num_gpus)]
    label = f"train {key} {device}" + (f" DDP x{num_gpus}" if num_gpus > 1 else "")
    ok, seconds, last = _run(command, env, work / f"train_{key}_{device}_{num_gpus}.log")
    if not ok:
        report.add(label, "FAIL", seconds, last)
        return
    fold = _model_folder(env, spec) / f"fold_{fold}"
    log = "\n".join(p.read_text() for p in fold.glob("training_log_*.txt"))
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    detail = f"{args.epochs}x{args.iterations} it, val Dice {summary['foreground_mean']['Dice']:.3f}"
    status = "ok"
    if device == "cuda":
        if "torch.compile failed" in log:
            status, detail = "FAIL", detail + ", torch.compile fell back to eager"
        elif "torch.compile on" in log:
            detail += ", AMP + compiled"
        else:
            detail += ", not compiled (nnUNet_compile set?)"
    report.add(label, status, seconds, detail)


def check_prediction_agreement(report: Report, env: dict, work: Path, cuda: bool) -> None:
    """Predict the 3D test cases on CUDA and on the CPU and compare the labels."""
    import numpy as np
    import SimpleITK as sitk

    spec = DATASETS["3d"]
    images = Path(env["nnUNet_raw"]) / f"Dataset{spec['id']:03d}_{spec['name']}" / "imagesTs"
    outputs = {}
    for device in ("cuda", "cpu") if cuda else ("cpu",):
        outputs[device] = work / f"predict_{device}"
        command = [str(BIN / "nnUNetv2_predict"), "-i", str(images), "-o", str(outputs[device])]
        command += ["-d", str(spec["id"]), "-c", spec["configuration"], "-f", "0", "-device", device]
        command += ["-npp", "2", "-nps", "2", "--disable_progress_bar"]
        ok, seconds, last = _run(command, env, work / f"predict_{device}.log")
        report.add(f"predict 3d {device}", "ok" if ok else "FAIL", seconds, "" if ok else last)
        if not ok:
            return
    if not cuda:
        report.add("CUDA vs CPU labels", "skipped", 0.0, "no CUDA device")
        return
    equal, total = 0, 0
    for cuda_file in sorted(outputs["cuda"].glob("*.nii.gz")):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(cuda_file)))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(outputs["cpu"] / cuda_file.name)))
        equal, total = equal + int(np.sum(a == b)), total + a.size
    fraction = equal / max(total, 1)
    report.add("CUDA vs CPU labels", "ok" if fraction >= 0.999 and total else "FAIL", 0.0, f"{fraction:.4%} equal")


def check_reference_timings(report: Report, env: dict, work: Path, reference_bin: Path | None, cuda: bool) -> None:
    """bench_training.py on CUDA against nnU-Net v2 on the same device and data."""
    if reference_bin is None or not cuda:
        report.add("timings vs nnU-Net v2", "skipped", 0.0, "no CUDA device" if not cuda else "no --reference-bin")
        return
    rows_file = work / "bench_training.json"
    command = [sys.executable, str(REPO / "scripts/benchmarks/bench_training.py"), "--device", "cuda"]
    command += ["--reference-bin", str(reference_bin), "--iterations", "20", "--json", str(rows_file)]
    ok, seconds, last = _run(command, env, work / "bench_training.log")
    if not ok:
        report.add("timings vs nnU-Net v2", "FAIL", seconds, last)
        return
    for row in json.loads(rows_file.read_text()):
        if str(row[3]).startswith("ratio"):
            continue
        report.add(f"step {row[0]} {row[2]} {row[3]}", "ok", 0.0, f"{row[5]:.3f} + {row[6]:.3f} s/it (load + step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-bin", type=Path, default=None, help="bin/ of a venv with nnU-Net v2")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 3 on CUDA, 1 on the CPU)")
    parser.add_argument("--iterations", type=int, default=None, help="iterations per epoch (default 40 / 2)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, models)")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    devices = torch.cuda.device_count() if cuda else 0
    args.epochs = args.epochs or (3 if cuda else 1)
    args.iterations = args.iterations or (40 if cuda else 2)
    name = torch.cuda.get_device_name(0) if cuda else "none"
    print(f"[gpu_check] torch {torch.__version__}, CUDA devices: {devices} ({name})", flush=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    env = _environment(work)
    report = Report()
    start = time.perf_counter()
    try:
        check_cuda_tests(report, env, work, cuda)
        if prepare_datasets(report, env, work, cuda):
            for key in DATASETS:
                check_training(report, env, work, key, "cuda" if cuda else "cpu", args)
            if devices >= 2:
                check_training(report, env, work, "2d", "cuda", args, num_gpus=2)
            else:
                report.add("train 2d DDP x2", "skipped", 0.0, f"{devices} CUDA device(s)")
            check_prediction_agreement(report, env, work, cuda)
        check_reference_timings(report, env, work, args.reference_bin, cuda)
    finally:
        keep = args.keep or report.failed
        detail = f"logs in {work}" if keep else "work folder removed (--keep keeps it)"
        report.add("total", "FAIL" if report.failed else "ok", time.perf_counter() - start, detail)
        print()
        report.print()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
