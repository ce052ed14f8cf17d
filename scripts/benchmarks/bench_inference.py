"""Prediction speed and memory: start-up seconds, seconds per case, peak memory; and the export step's peak memory.

    python scripts/benchmarks/bench_inference.py [--reference-bin DIR] [--only 3d 2d export]
                                                 [--tta off on] [--num-cases-3d 2] [--num-cases-2d 4] [--fp32]

Models have realistic plans and random weights: a generated CT-like dataset of 128x256x256 voxels
(spacing 1.5 x 0.8 x 0.8 mm) and one of 512x512 PNG images are planned with our planner, and a
``fold_0/checkpoint_final.pth`` with random weights is written in nnU-Net v2's checkpoint format,
so both tools load the same model folder. Each run is ``nnUNetv2_predict_from_modelfolder`` on
the training images of that dataset (``-f 0``, ``-npp 2 -nps 2``), with and without test-time
mirroring. Start-up is the time from launching the command until it reports that the network
starts on the first case (imports, model loading and reading and preprocessing the first case);
seconds per case are the time from then until the last segmentation file exists, divided by the
number of cases; total is the command's wall time. Peak memory is the largest resident set of the
command or any of its worker processes (not their sum).

With ``--reference-bin`` (the bin/ folder of a venv holding nnU-Net v2) the same runs are made
with nnU-Net v2 and the table shows nnU-Net v2 / ours ratios. Ours runs with its defaults (bfloat16 on CPUs
with native bfloat16); ``--fp32`` adds runs of ours with ``--fp32`` and prints the fraction of voxels
whose label equals the default's; ``--compile`` adds runs of ours with ``nnUNet_compile=1`` (torch.compile; its
compiling falls in the first case's time). The export benchmark resamples the
logits of a large case (3 classes, 200x384x384 at the network's spacing, 200x512x512 in the
original image) back to the image and writes it, in a fresh process per tool, and reports the
peak memory above the logits already in memory, with and without ``--save_probabilities``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import nnunet_env, print_table  # noqa: E402

DATASET_3D = dict(
    dataset_id=811,
    name="BenchInf3D",
    shape=(128, 256, 256),
    spacing=(1.5, 0.8, 0.8),
    intensity="ct",
    configuration="3d_fullres",
)
DATASET_2D = dict(dataset_id=812, name="BenchInf2D", shape=(512, 512), file_ending=".png", configuration="2d")
# the export case: logits at the network's spacing, written back to a finer original image
EXPORT_ORIGINAL_SHAPE = (200, 512, 512)
EXPORT_ORIGINAL_SPACING = (1.5, 0.6, 0.6)
EXPORT_NUM_CLASSES = 3
# the line each tool prints when the network starts on a case (ours with --verbose)
FIRST_CASE_MARKERS = {"ours": re.compile(r"^predicting \S+"), "nnU-Net v2": re.compile(r"^Predicting \S+:")}
FP32_TOOL = "ours --fp32"
COMPILE_TOOL = "ours nnUNet_compile=1"


def _prepare_model(root: Path, spec: dict, num_cases: int) -> tuple[Path, Path]:
    """Generate and plan a dataset, write a random-weight model folder; return (model folder, input folder)."""
    import torch

    from nnunetv2.architectures.network_builder import build_network
    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset
    from nnunetv2.experiment_planning.fingerprint import extract_fingerprint_for_dataset
    from nnunetv2.experiment_planning.planner import plan_experiment_for_dataset
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.formats.plans import Plans
    from nnunetv2.inference.trained_model import num_input_channels
    from nnunetv2.training.checkpointing import save_checkpoint_file

    dataset_name = f"Dataset{spec['dataset_id']:03d}_{spec['name']}"
    raw = root / "nnUNet_raw" / dataset_name
    configuration_name = spec["configuration"]
    model_folder = root / "nnUNet_results" / dataset_name / f"nnUNetTrainer__nnUNetPlans__{configuration_name}"
    if (model_folder / "fold_0" / "checkpoint_final.pth").is_file():
        return model_folder, raw / "imagesTr"
    generator_args = {k: v for k, v in spec.items() if k in ("shape", "spacing", "intensity", "file_ending")}
    generate_synthetic_dataset(raw, num_cases=max(num_cases, 2), overwrite=True, **generator_args)
    extract_fingerprint_for_dataset(dataset_name, num_processes=1)
    plans_file = plan_experiment_for_dataset(dataset_name)

    plans = Plans.load(plans_file)
    dataset_json = DatasetJson.load(raw / "dataset.json")
    configuration = plans.configuration(configuration_name)
    label_manager = LabelManager.from_dataset_json(dataset_json)
    torch.manual_seed(0)
    network = build_network(
        configuration.architecture,
        num_input_channels(configuration, dataset_json, label_manager),
        label_manager.num_segmentation_heads,
        deep_supervision=True,
    )
    (model_folder / "fold_0").mkdir(parents=True, exist_ok=True)
    plans.save(model_folder / "plans.json")
    dataset_json.save(model_folder / "dataset.json")
    shutil.copy(plans_file.parent / "dataset_fingerprint.json", model_folder / "dataset_fingerprint.json")
    mirror_axes = tuple(range(len(configuration.patch_size)))
    save_checkpoint_file(
        {
            "network_weights": network.state_dict(),
            "optimizer_state": {},
            "grad_scaler_state": None,
            "logging": {},
            "_best_ema": None,
            "current_epoch": 0,
            "init_args": {
                "plans": json.loads(plans_file.read_text()),
                "configuration": configuration_name,
                "fold": 0,
                "dataset_json": json.loads((raw / "dataset.json").read_text()),
                "device": torch.device("cpu"),
            },
            "trainer_name": "nnUNetTrainer",
            "inference_allowed_mirroring_axes": mirror_axes,
        },
        model_folder / "fold_0" / "checkpoint_final.pth",
    )
    return model_folder, raw / "imagesTr"


def _input_subset(images: Path, target: Path, num_cases: int, file_ending: str) -> tuple[Path, list[str]]:
    """Link the first ``num_cases`` cases' files into ``target``; return it and the case ids."""
    target.mkdir(parents=True, exist_ok=True)
    cases = sorted({f.name[: -len(file_ending) - 5] for f in images.glob(f"*{file_ending}")})[:num_cases]
    for f in images.glob(f"*{file_ending}"):
        if f.name[: -len(file_ending) - 5] in cases and not (target / f.name).exists():
            os.symlink(f, target / f.name)
    return target, cases


def _run_timed(
    command: list[str], env: dict[str, str], first_case_marker: re.Pattern, expected_files: list[Path]
) -> tuple[float, float, float, float]:
    """Run ``command``; return (seconds until the first case starts, until the last file, in total; peak MB).

    A case starts when the command prints that it predicts it (``first_case_marker``); output
    files count when they exist.
    """
    start = time.perf_counter()
    first_case: list[float] = []
    log: list[str] = []

    def read_output(stream) -> None:
        for line in stream:
            log.append(line)
            if not first_case and first_case_marker.search(line):
                first_case.append(time.perf_counter() - start)

    process = subprocess.Popen(
        command,
        env=dict(env, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    reader = threading.Thread(target=read_output, args=(process.stdout,), daemon=True)
    reader.start()
    seen: dict[Path, float] = {}
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        now = time.perf_counter() - start
        for f in expected_files:
            if f not in seen and f.exists():
                seen[f] = now
        if pid:
            break
        time.sleep(0.05)
    reader.join()
    returncode = os.waitstatus_to_exitcode(status)
    if returncode != 0 or len(seen) != len(expected_files) or not first_case:
        sys.exit(f"command failed ({returncode}) or printed no case start: {' '.join(command)}\n{''.join(log)[-3000:]}")
    # ru_maxrss: the largest of the process and its waited-for children, in KB on Linux
    return first_case[0], max(seen.values()), now, usage.ru_maxrss / 1024


def bench_prediction(
    root: Path, spec: dict, num_cases: int, tools: dict[str, Path], tta_modes: list[str], devices: list[str]
) -> list[list[object]]:
    """Time nnUNetv2_predict_from_modelfolder of every tool; return table rows."""
    model_folder, images = _prepare_model(root, spec, num_cases)
    file_ending = spec.get("file_ending", ".nii.gz")
    inputs, cases = _input_subset(images, root / f"inputs_{spec['name']}_{num_cases}", num_cases, file_ending)
    env = nnunet_env(root)
    env.pop("OMP_NUM_THREADS", None)  # nnU-Net v2 sets its CPU threads itself; both use every core
    env["nnUNet_compile"] = "0"
    rows = []
    for device in devices:
        for tta in tta_modes:
            results = {}
            for tool, bin_dir in tools.items():
                output = root / "predictions" / f"{spec['name']}_{tool.replace(' ', '_')}_{device}_{tta}"
                shutil.rmtree(output, ignore_errors=True)
                command = [
                    str(bin_dir / "nnUNetv2_predict_from_modelfolder"),
                    "-i",
                    str(inputs),
                    "-o",
                    str(output),
                    "-m",
                    str(model_folder),
                    "-f",
                    "0",
                    "-device",
                    device,
                    "-npp",
                    "2",
                    "-nps",
                    "2",
                    "--disable_progress_bar",
                ] + (["--disable_tta"] if tta == "off" else [])
                ours = tool.startswith("ours")
                command += ["--verbose"] if ours else []  # ours names each case it starts only then
                command += ["--fp32"] if tool == FP32_TOOL else []
                marker = FIRST_CASE_MARKERS["ours" if ours else tool]
                run_env = dict(env, nnUNet_compile="1") if tool == COMPILE_TOOL else env
                startup, last_file, total, peak = _run_timed(
                    command, run_env, marker, [output / f"{c}{file_ending}" for c in cases]
                )
                per_case = (last_file - startup) / len(cases)
                results[tool] = (startup, per_case, total, peak)
                rows.append([spec["name"], device, tta, tool, len(cases), startup, per_case, total, peak])
                print(f"  {rows[-1]}", flush=True)
            for tool in results:
                if tool != "nnU-Net v2" and "nnU-Net v2" in results:
                    rows.append(
                        [
                            spec["name"],
                            device,
                            tta,
                            f"ratio v2/{tool}",
                            "",
                            *(r / o for r, o in zip(results["nnU-Net v2"], results[tool])),
                        ]
                    )
            if FP32_TOOL in results:
                folders = [
                    root / "predictions" / f"{spec['name']}_{t.replace(' ', '_')}_{device}_{tta}"
                    for t in ("ours", FP32_TOOL)
                ]
                agreement = _label_agreement(*folders, cases, file_ending)
                print(
                    f"  {spec['name']} {device} TTA {tta}: default labels equal --fp32 labels at "
                    f"{100 * agreement:.3f}% of voxels",
                    flush=True,
                )
    return rows


def _label_agreement(folder_a: Path, folder_b: Path, cases: list[str], file_ending: str) -> float:
    """Fraction of voxels with the same label in two prediction folders."""
    import numpy as np

    from nnunetv2.imageio.registry import reader_writer_for_ending

    reader = reader_writer_for_ending(file_ending, str(folder_a / f"{cases[0]}{file_ending}"))()
    equal = total = 0
    for case in cases:
        a, _ = reader.read_seg(folder_a / f"{case}{file_ending}")
        b, _ = reader.read_seg(folder_b / f"{case}{file_ending}")
        equal += int(np.count_nonzero(a == b))
        total += a.size
    return equal / total


def _export_case(num_classes: int) -> tuple[object, dict]:
    """Smooth logits of a large case at the network's spacing and the properties of its original image."""
    import numpy as np

    network_spacing = (1.5, 0.8, 0.8)
    shape = [round(n * s / t) for n, s, t in zip(EXPORT_ORIGINAL_SHAPE, EXPORT_ORIGINAL_SPACING, network_spacing)]
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij", sparse=True)
    logits = np.empty((num_classes, *shape), dtype=np.float32)
    for c in range(num_classes):
        centre = np.linspace(-0.5, 0.5, num_classes)[c]
        logits[c] = -sum((g - centre) ** 2 for g in grids) * (4 + c)
    full = [[0, n] for n in EXPORT_ORIGINAL_SHAPE]
    properties = {
        "spacing": list(EXPORT_ORIGINAL_SPACING),
        "shape_before_cropping": list(EXPORT_ORIGINAL_SHAPE),
        "bbox_used_for_cropping": full,
        "shape_after_cropping_and_before_resampling": list(EXPORT_ORIGINAL_SHAPE),
        "sitk_stuff": {
            "spacing": list(EXPORT_ORIGINAL_SPACING[::-1]),
            "origin": [0.0, 0.0, 0.0],
            "direction": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
        },
    }
    return logits, properties


def _resident_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def export_worker(flavour: str, plans_file: str, dataset_json_file: str, output: str, save_probabilities: bool) -> None:
    """Export the large case with one tool's export function (run in that tool's venv); print JSON figures."""
    import scipy.ndimage  # noqa: F401  (imports happen before the measurement)
    import torch

    if flavour == "ours":
        from nnunetv2.formats.dataset_json import DatasetJson
        from nnunetv2.formats.plans import Plans
        from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO  # noqa: F401
        from nnunetv2.inference.export import export_prediction_from_logits
        from nnunetv2.preprocessing.resampling import resample_data_or_seg_to_shape  # noqa: F401

        plans = Plans.load(plans_file)
        arguments = (plans.configuration("3d_fullres"), plans, DatasetJson.load(dataset_json_file))
        keywords = {}
    else:
        from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO  # noqa: F401
        from nnunetv2.inference.export_prediction import export_prediction_from_logits
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        plans = PlansManager(plans_file)
        arguments = (plans.get_configuration("3d_fullres"), plans, dataset_json_file)
        keywords = {"num_threads_torch": 1}
    logits, properties = _export_case(EXPORT_NUM_CLASSES)
    if flavour != "ours":
        logits = torch.from_numpy(logits)
    baseline = _resident_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set, to the current one
    start = time.perf_counter()
    export_prediction_from_logits(logits, properties, *arguments, output, save_probabilities, **keywords)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "logits_mb": logits.nbytes / 2**20,
                "baseline_mb": baseline,
                "peak_mb": _resident_mb("VmHWM"),
            }
        )
    )


def bench_export(root: Path, tools: dict[str, Path]) -> list[list[object]]:
    """Run the export worker in each tool's venv; return table rows."""
    model_folder, _ = _prepare_model(root, DATASET_3D, 2)
    plans = json.loads((model_folder / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["spacing"] = [1.5, 0.8, 0.8]  # the export case's network spacing
    plans_file = root / "export_plans.json"
    plans_file.write_text(json.dumps(plans))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rows = []
    for save_probabilities in (False, True):
        for tool, bin_dir in tools.items():
            if tool == FP32_TOOL:
                continue  # the export does not run the network
            output = root / "export" / f"{tool.replace(' ', '_')}_{int(save_probabilities)}"
            output.parent.mkdir(parents=True, exist_ok=True)
            command = [
                str(bin_dir / "python"),
                __file__,
                "--export-worker",
                "ours" if tool == "ours" else "nnunet_v2",
                str(plans_file),
                str(model_folder / "dataset.json"),
                str(output),
            ]
            command += ["--save-probabilities"] if save_probabilities else []
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"export worker failed: {' '.join(command)}\n{done.stderr[-3000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(
                [
                    "export " + "x".join(map(str, EXPORT_ORIGINAL_SHAPE)),
                    "cpu",
                    "probabilities" if save_probabilities else "seg only",
                    tool,
                    1,
                    "",
                    figures["seconds"],
                    figures["logits_mb"],
                    figures["peak_mb"] - figures["baseline_mb"],
                ]
            )
            print(f"  {rows[-1]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-bin", type=Path, default=None, help="bin/ of an nnU-Net v2 venv")
    parser.add_argument("--only", nargs="+", choices=["3d", "2d", "export"], default=["3d", "2d", "export"])
    parser.add_argument(
        "--tta", nargs="+", choices=["off", "on"], default=["off", "on"], help="test-time mirroring off and/or on"
    )
    parser.add_argument("--fp32", action="store_true", help="also time ours with --fp32 and compare its labels")
    parser.add_argument("--compile", action="store_true", help="also time ours with nnUNet_compile=1 (torch.compile)")
    parser.add_argument("--num-cases-3d", type=int, default=2)
    parser.add_argument("--num-cases-2d", type=int, default=4)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep data and models here (reused if present)")
    parser.add_argument(
        "--export-worker", nargs=4, metavar=("FLAVOUR", "PLANS", "DATASET_JSON", "OUTPUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--save-probabilities", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_worker:
        export_worker(*args.export_worker, save_probabilities=args.save_probabilities)
        return

    import torch

    torch.set_num_threads(1)  # model preparation only; the measured commands pick their own threads
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    tools = {"ours": Path(sys.executable).parent}
    if args.fp32:
        tools[FP32_TOOL] = tools["ours"]
    if args.compile:
        tools[COMPILE_TOOL] = tools["ours"]
    if args.reference_bin:
        tools["nnU-Net v2"] = args.reference_bin
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="bench_inference_"))
    root.mkdir(parents=True, exist_ok=True)
    for name, value in nnunet_env(root).items():
        if name.startswith("nnUNet_"):
            os.environ[name] = value
    rows = []
    try:
        if "3d" in args.only:
            rows += bench_prediction(root, DATASET_3D, args.num_cases_3d, tools, args.tta, devices)
        if "2d" in args.only:
            rows += bench_prediction(root, DATASET_2D, args.num_cases_2d, tools, args.tta, devices)
        if "export" in args.only:
            rows += bench_export(root, tools)
    finally:
        if args.work_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(
        ["case", "device", "TTA", "tool", "cases", "start-up s", "s/case", "total s", "peak MB"],
        [r for r in rows if not str(r[0]).startswith("export")],
    )
    export_rows = [r for r in rows if str(r[0]).startswith("export")]
    if export_rows:
        print()
        print_table(
            ["export case", "device", "output", "tool", "cases", "", "seconds", "logits MB", "peak MB above logits"],
            export_rows,
        )


if __name__ == "__main__":
    main()
