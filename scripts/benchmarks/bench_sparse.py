"""Scribble vs dense training with the same budget, scored on dense test labels (2D and 3D generated data).

    python scripts/benchmarks/bench_sparse.py [--only 2d|3d] [--epochs N] [--iterations N]
        [--thickness T] [--slice_fraction F] [--expand]

For each dataset: generate a dense synthetic dataset with test cases, make its scribble copy
(nnUNetv2_simulate_sparse_annotation), plan and preprocess both, train fold 0 of each with the same
epochs, iterations and seed (default plans and network), predict the dense test images with each
model, and evaluate against the dense test labels. Prints, per dataset, the test Dice of both models
(per class and the foreground mean), their ratio, the annotated fraction of the scribble dataset and
the training times. With --expand a third model trains on the scribbles grown by
nnUNetv2_expand_sparse_labels (library defaults) and gets its own rows.
Target: scribble Dice >= 0.9 x dense Dice with under 10% of voxels annotated.
Runs on one torch thread (the machine is shared); --threads changes that.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_training_run_arguments, print_table, start_training_run  # noqa: E402

DATASETS = {
    "2d": dict(shape=(96, 96), spacing=None, configuration="2d", epochs=16, iterations=25, num_cases=40),
    "3d": dict(
        shape=(20, 56, 56), spacing=(3.0, 1.0, 1.0), configuration="3d_fullres", epochs=16, iterations=20, num_cases=10
    ),
}
CLASS_NAMES = {1: "blob", 2: "tube"}


def _train_predict_evaluate(
    dataset_id: int, raw_folder: Path, configuration: str, epochs: int, iterations: int, seed: int, output: Path
) -> tuple[dict, dict, float]:
    """Train fold 0, predict the dense test images, evaluate on the dense test labels.

    Returns (test summary, fold-0 validation summary, training seconds).
    """
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder_with_plans, load_summary_json
    from nnunetv2.inference.predictor import predict_from_dataset_id
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
            overwrite=True,  # a benchmark retrains on purpose
        )
    )
    seconds = time.perf_counter() - start
    predict_from_dataset_id(
        raw_folder / "imagesTs",
        output,
        dataset_id,
        configuration,
        folds=[0],
        device="cpu",
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        show_progress=False,
    )
    summary = compute_metrics_on_folder_with_plans(
        raw_folder / "labelsTs", output, raw_folder / "dataset.json", fold.parent / "plans.json"
    )
    return summary, load_summary_json(fold / "validation" / "summary.json"), seconds


def run_dataset(name: str, spec: dict, work: Path, args: argparse.Namespace) -> dict:
    """Generate, simulate, preprocess, train both versions; return the figures of one table row."""
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
    from nnunetv2.sparse.sparse_dataset import simulate_sparse_dataset_by_id

    dense_id, sparse_id = (851, 852) if name == "2d" else (853, 854)
    raw = generate_synthetic_dataset_in_raw(
        dense_id,
        f"Dense{name.upper()}",
        overwrite=True,
        num_cases=args.num_cases or spec["num_cases"],
        shape=spec["shape"],
        spacing=spec["spacing"],
        num_test_cases=args.num_test,
        seed=args.seed,
    )
    sparse_raw, fractions = simulate_sparse_dataset_by_id(
        dense_id,
        sparse_id,
        "scribble",
        overwrite=True,
        seed=args.seed,
        thickness=args.thickness,
        slice_fraction=args.slice_fraction,
    )
    print(
        f"[{name}] scribbles annotate {100 * fractions['all voxels']:.1f}% of the voxels "
        f"({', '.join(f'{k} {100 * v:.1f}%' for k, v in fractions.items() if k != 'all voxels')})",
        flush=True,
    )
    epochs = args.epochs or spec["epochs"]
    iterations = args.iterations or spec["iterations"]
    results = {}
    variants = [("dense", dense_id, raw), ("scribble", sparse_id, sparse_raw)]
    if args.expand:
        from nnunetv2.sparse.sparse_dataset import expand_sparse_dataset_by_id

        expanded_raw, grown = expand_sparse_dataset_by_id(sparse_id, sparse_id + 10, overwrite=True)
        print(f"[{name}] expanded scribbles annotate {100 * grown['annotated after']:.1f}% of the voxels", flush=True)
        variants.append(("expanded", sparse_id + 10, expanded_raw))
        results["expanded_fraction"] = grown["annotated after"]
    for kind, dataset_id, folder in variants:
        plan_and_preprocess(
            [dataset_id],
            configurations=[spec["configuration"]],
            num_processes=1,
            num_processes_fingerprint=1,
            show_progress=False,
        )
        test, validation, seconds = _train_predict_evaluate(
            dataset_id, folder, spec["configuration"], epochs, iterations, args.seed, work / f"pred_{name}_{kind}"
        )
        results[kind] = (test, validation, seconds)
        print(
            f"[{name}] {kind}: {epochs} x {iterations} iterations in {seconds:.0f} s, test Dice "
            f"{test['foreground_mean']['Dice']:.3f}, fold-0 validation Dice "
            f"{validation['foreground_mean']['Dice']:.3f}",
            flush=True,
        )
    return {"name": name, "fractions": fractions, "epochs": epochs, "iterations": iterations, **results}


def table_rows(result: dict) -> list[list[str]]:
    """One row per class and one for the foreground mean: both test Dice, ratio, annotated share, budget."""
    rows = table_rows_of(result, "scribble")
    if "expanded" in result:
        rows += table_rows_of(result, "expanded")
    return rows


def table_rows_of(result: dict, kind: str) -> list[list[str]]:
    """The rows of one sparse model (``scribble`` or ``expanded``) against the dense one."""
    dense, scribble, scribble_validation = result["dense"][0], result[kind][0], result[kind][1]
    rows = []
    for key in (1, 2, None):
        if key is None:
            d, s = dense["foreground_mean"]["Dice"], scribble["foreground_mean"]["Dice"]
            v, fraction, label = (
                scribble_validation["foreground_mean"]["Dice"],
                result["fractions"]["all voxels"] if kind == "scribble" else result["expanded_fraction"],
                "mean",
            )
        else:
            d, s = dense["mean"][key]["Dice"], scribble["mean"][key]["Dice"]
            label = CLASS_NAMES[key]
            v = scribble_validation["mean"][key]["Dice"]
            fraction = result["fractions"][label] if kind == "scribble" else float("nan")
        rows.append(
            [
                result["name"] if kind == "scribble" else f"{result['name']} expanded",
                label,
                f"{d:.3f}",
                f"{s:.3f}",
                f"{s / d:.2f}",
                f"{100 * fraction:.1f}%",
                f"{v:.3f}",
                f"{result['epochs']}x{result['iterations']}",
                f"{result['dense'][2]:.0f} / {result[kind][2]:.0f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_run_arguments(parser, DATASETS)
    parser.add_argument("--thickness", type=int, default=3, help="scribble thickness in voxels (default 3)")
    parser.add_argument(
        "--slice_fraction",
        type=float,
        default=1.0,
        help="3D: scribble only this fraction of the slices along z (default 1: every slice)",
    )
    parser.add_argument("--num_cases", type=int, default=None, help="training cases (default per dataset)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--expand", action="store_true", help="also train on the scribbles grown before training")
    args = parser.parse_args()

    work = start_training_run(args.threads, "bench_sparse_")
    rows = []
    try:
        for name, spec in DATASETS.items():
            if args.only and name != args.only:
                continue
            rows += table_rows(run_dataset(name, spec, work, args))
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(
        [
            "data",
            "class",
            "dense Dice",
            "scribble Dice",
            "ratio",
            "annotated",
            "scribble val Dice*",
            "budget",
            "train s dense / scribble",
        ],
        rows,
    )
    print(
        "* fold-0 validation of the scribble model, counted on annotated voxels only (what cross-validation "
        "on a sparse dataset reports)"
    )


if __name__ == "__main__":
    main()
