"""float32 vs bfloat16 (``--bf16``) on the CPU: training and prediction seconds, and test Dice, same budget.

    python scripts/benchmarks/bench_precision.py [--only 2d|3d] [--epochs N] [--iterations N] [--threads 1]
                                                 [--shape Z Y X --spacing Z Y X --num-cases N]
                                                 [--precisions float32 bfloat16]

For each dataset: generate a synthetic dataset with test cases, plan and preprocess it, train fold 0
twice with the same epochs, iterations and seed (once in float32, once with ``cpu_bf16``), predict
the test images with each model in its own precision (with test-time mirroring) and evaluate them.
Prints the training and prediction seconds, their float32 / bfloat16 ratios, and the test Dice per
class and their mean. bfloat16 is fast only on CPUs with native bfloat16 arithmetic (AVX512-BF16 or
AMX); the script says whether this one has it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_training_run_arguments, print_table, start_training_run  # noqa: E402

DATASETS = {
    "2d": dict(
        dataset_id=861, shape=(96, 96), spacing=None, configuration="2d", epochs=10, iterations=25, num_cases=30
    ),
    "3d": dict(
        dataset_id=862,
        shape=(32, 64, 64),
        spacing=(3.0, 1.0, 1.0),
        configuration="3d_fullres",
        epochs=10,
        iterations=20,
        num_cases=10,
    ),
}


def train_and_predict(
    dataset_id: int,
    raw_folder: Path,
    configuration: str,
    epochs: int,
    iterations: int,
    seed: int,
    cpu_bf16: bool,
    output: Path,
) -> tuple[float, float, dict]:
    """Train fold 0 and predict the test images in one precision; return (train s, predict s, test summary)."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder_with_plans
    from nnunetv2.inference.predictor import predict_from_model_folder
    from nnunetv2.training.run_training import TrainingRequest, run_training

    start = time.perf_counter()
    fold = run_training(
        TrainingRequest(
            dataset_id,
            configuration,
            0,
            num_epochs=epochs,
            num_iterations_per_epoch=iterations,
            num_val_iterations_per_epoch=5,
            num_data_workers=0,
            seed=seed,
            device="cpu",
            cpu_bf16=cpu_bf16,
            overwrite=True,  # a benchmark retrains on purpose
        )
    )
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predict_from_model_folder(
        raw_folder / "imagesTs",
        output,
        fold.parent,
        folds=[0],
        device="cpu",
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        show_progress=False,
        cpu_bf16=cpu_bf16,
    )
    predict_seconds = time.perf_counter() - start
    summary = compute_metrics_on_folder_with_plans(
        raw_folder / "labelsTs", output, raw_folder / "dataset.json", fold.parent / "plans.json"
    )
    return train_seconds, predict_seconds, summary


def run_dataset(name: str, spec: dict, work: Path, args: argparse.Namespace) -> list[list[object]]:
    """Generate and preprocess one dataset, run both precisions; return table rows."""
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
    from nnunetv2.formats.model_folder import model_folder

    epochs, iterations = args.epochs or spec["epochs"], args.iterations or spec["iterations"]
    shape = tuple(args.shape or spec["shape"])
    spacing = tuple(args.spacing) if args.spacing else spec["spacing"]
    raw = generate_synthetic_dataset_in_raw(
        spec["dataset_id"],
        f"Precision{name.upper()}",
        overwrite=True,
        num_cases=args.num_cases or spec["num_cases"],
        shape=shape,
        spacing=spacing,
        num_test_cases=args.num_test,
        seed=args.seed,
    )
    plan_and_preprocess(
        [spec["dataset_id"]],
        configurations=[spec["configuration"]],
        num_processes=1,
        num_processes_fingerprint=1,
        show_progress=False,
    )
    results = {}
    for precision in args.precisions:
        # both runs train into the same model folder: start each from scratch
        shutil.rmtree(model_folder(raw.name, "nnUNetTrainer", "nnUNetPlans", spec["configuration"]), ignore_errors=True)
        results[precision] = train_and_predict(
            spec["dataset_id"],
            raw,
            spec["configuration"],
            epochs,
            iterations,
            args.seed,
            precision == "bfloat16",
            work / f"pred_{name}_{precision}",
        )
        train_s, predict_s, summary = results[precision]
        print(
            f"[{name}] {precision}: train {train_s:.0f} s, predict {predict_s:.1f} s, test Dice "
            f"{summary['foreground_mean']['Dice']:.3f}",
            flush=True,
        )
    rows = []
    for precision, (train_s, predict_s, summary) in results.items():
        dice = [summary["mean"][key]["Dice"] for key in sorted(summary["mean"], key=str)]
        rows.append(
            [
                f"{name} {'x'.join(map(str, shape))}",
                f"{epochs}x{iterations}",
                precision,
                train_s,
                predict_s,
                " / ".join(f"{d:.3f}" for d in dice),
                f"{summary['foreground_mean']['Dice']:.3f}",
            ]
        )
    if len(results) == 2:
        (train32, predict32, _), (train16, predict16, _) = results["float32"], results["bfloat16"]
        rows.append([name, "", "ratio fp32/bf16", train32 / train16, predict32 / predict16, "", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_run_arguments(parser, DATASETS)
    parser.add_argument("--shape", type=int, nargs="+", default=None, help="image shape (with --only)")
    parser.add_argument("--spacing", type=float, nargs="+", default=None, help="voxel spacing (with --only)")
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=["float32", "bfloat16"],
        default=["float32", "bfloat16"],
        help="run only these (e.g. the two in parallel processes: same data and seed)",
    )
    parser.add_argument("--num-cases", type=int, default=None, help="training cases (default per dataset)")
    args = parser.parse_args()
    if (args.shape or args.spacing) and args.only is None:
        parser.error("--shape and --spacing need --only")

    work = start_training_run(args.threads, "bench_precision_")
    from nnunetv2.utilities.precision import cpu_has_native_bf16

    print(
        f"native bfloat16 on this CPU: {cpu_has_native_bf16()}; {args.threads} torch thread(s); load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    try:
        rows = [
            row
            for name, spec in DATASETS.items()
            if args.only in (None, name)
            for row in run_dataset(name, spec, work, args)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(["data", "budget", "precision", "train s", "predict s", "test Dice per class", "mean Dice"], rows)


if __name__ == "__main__":
    main()
