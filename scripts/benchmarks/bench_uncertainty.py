"""Benchmark checkpoint-ensemble uncertainty: does the case score track Dice, does the voxel map find errors?

Two graded sets (``--data``):

- ``synthetic`` (default): a generated 2D dataset whose test set holds clean cases and cases of rising
  difficulty (Gaussian noise, contrast loss, an elastic deformation the training augmentation never shows).
- ``brain``: real anatomy (``uncertainty_brain``): axial slices of the MNI ICBM152 T1 template with grey and
  white matter labels; training slices mildly degraded, test slices clean or with noise, contrast loss, a
  bias field or blur at four strengths. Data, model and predictions are kept in ``--root`` and reused.

It trains fold 0 with nnUNetTrainerCyclicLR (short CPU run), predicts the test set with every ensemble
checkpoint and prints: per-case Dice vs uncertainty score, Spearman's rho (target below -0.6), the
AUROC of each voxel measure for finding wrongly labelled pixels, pooled over the test cases, over whole
images and inside the foreground and its border (reference or predicted foreground dilated by 2 pixels;
targets above 0.85 and 0.7), and the extra prediction time per checkpoint. Every measure is scored with
both case-score definitions (ours: mean over the dilated foreground; UnnUNet's edge ring).
``--study`` also scores candidate maps (temperature, smoothing, checkpoint x mirror members) on the same
errors, overall and per shift (``uncertainty_map_study``).

Usage: python scripts/benchmarks/bench_uncertainty.py [--data synthetic|brain] [--root DIR] [--wheel WHEEL]
           [--epochs 30] [--cycles 3] [--iterations 25] [--study] [--figure-dir documentation/images]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import print_table, shrink_planned_network  # noqa: E402

DATASET_ID, DATASET_NAME = 972, "UncertaintyBench"
SHAPE = (64, 64)
LEVELS = (0.25, 0.5, 0.75, 1.0)
KINDS = ("noise", "contrast", "deformation")
BRAIN_ID, BRAIN_NAME = 973, "UncertaintyBrainBench"
BRAIN_FEATURES = [8, 16, 32, 64, 128, 256, 256, 256]  # a small 2D U-Net for the CPU
FIGURE_PREFIX = {"synthetic": "uncertainty", "brain": "uncertainty_brain"}


def degrade(
    image: np.ndarray, label: np.ndarray, kind: str, level: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return a harder (image, label): more noise, less tissue contrast, or an unseen elastic warp."""
    from scipy import ndimage

    body = image > 0
    if kind == "noise":
        noisy = image + rng.normal(0, 70 * level, image.shape)
        return np.where(body, np.maximum(noisy, 1), 0).astype(np.float32), label
    if kind == "contrast":
        # squeeze the smooth signal towards the body mean but keep the noise: contrast-to-noise drops
        signal = ndimage.gaussian_filter(image, 1.5)
        mean = image[body].mean()
        squeezed = mean + (signal - mean) * (1 - 0.85 * level) + (image - signal)
        return np.where(body, np.maximum(squeezed, 1), 0).astype(np.float32), label
    displacement = [ndimage.gaussian_filter(rng.normal(size=image.shape), 6) for _ in image.shape]
    scale = 9 * level / max(np.abs(d).max() for d in displacement)
    grid = np.indices(image.shape).astype(np.float64)
    coordinates = [g + scale * d for g, d in zip(grid, displacement)]
    return (
        ndimage.map_coordinates(image, coordinates, order=1).astype(np.float32),
        ndimage.map_coordinates(label, coordinates, order=0).astype(label.dtype),
    )


def make_dataset(num_training: int) -> tuple[Path, dict[str, str]]:
    """Generate the raw dataset; return it and each test case's degradation ('clean' or kind@level)."""
    import SimpleITK as sitk

    from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw

    num_test = 3 + len(KINDS) * len(LEVELS)
    folder = generate_synthetic_dataset_in_raw(
        DATASET_ID, DATASET_NAME, overwrite=True, num_cases=num_training, shape=SHAPE, num_test_cases=num_test, seed=0
    )
    rng = np.random.default_rng(1)
    plan = ["clean"] * 3 + [f"{kind}@{level}" for kind in KINDS for level in LEVELS]
    difficulty = {}
    for index, what in zip(range(num_training, num_training + num_test), plan):
        case = f"case_{index:03d}"
        difficulty[case] = what
        if what == "clean":
            continue
        kind, level = what.split("@")
        image_file, label_file = folder / "imagesTs" / f"{case}_0000.nii.gz", folder / "labelsTs" / f"{case}.nii.gz"
        image, label = sitk.ReadImage(str(image_file)), sitk.ReadImage(str(label_file))
        new_image, new_label = degrade(
            sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(label), kind, float(level), rng
        )
        for array, source, path in ((new_image, image, image_file), (new_label, label, label_file)):
            out = sitk.GetImageFromArray(array)
            out.CopyInformation(source)
            sitk.WriteImage(out, str(path), True)
    return folder, difficulty


def pooled_auroc(prediction_folder: Path, raw: Path, cases: list[str], measure: str) -> list[float]:
    """AUROC of the float voxel map for wrong voxels: whole images, fg+border, pred+border (see the study)."""
    import SimpleITK as sitk
    from uncertainty_map_study import foreground_and_border, predicted_foreground_and_border, region_aurocs

    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.uncertainty.checkpoint_prediction import RUN_INDEX_FILE
    from nnunetv2.uncertainty.ensemble_uncertainty import case_uncertainty
    from nnunetv2.utilities.file_io import load_json

    labels = LabelManager.from_dataset_json(DatasetJson.load(prediction_folder / "dataset.json"))
    members = [m["folder"] for m in load_json(prediction_folder / RUN_INDEX_FILE)["members"]]
    maps, wrong, union, predicted = [], [], [], []
    for case in cases:
        result = case_uncertainty(
            case, {"all": [prediction_folder / m / f"{case}.npz" for m in members]}, labels, measure
        )
        reference = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTs" / f"{case}.nii.gz")))
        reference = reference.reshape(result.segmentation.shape)
        maps.append(result.uncertainty.ravel())
        wrong.append((result.segmentation != reference).ravel())
        union.append(foreground_and_border(reference, result.segmentation).ravel())
        predicted.append(predicted_foreground_and_border(result.segmentation).ravel())
    regions = {"fg+border": np.concatenate(union), "pred+border": np.concatenate(predicted)}
    return region_aurocs(np.concatenate(maps), np.concatenate(wrong), regions)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=("synthetic", "brain"), default="synthetic")
    parser.add_argument("--root", default=None, help="working folder (default: a temporary one); reused when rerun")
    parser.add_argument("--wheel", type=Path, default=None, help="--data brain: a nilearn wheel (default: download)")
    parser.add_argument("--num-training", type=int, default=None, help="training cases (synthetic 16, brain 24)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--rule", default="sparse", choices=["sparse", "late"])
    parser.add_argument("--iterations", type=int, default=25, help="training iterations per epoch")
    parser.add_argument("--retrain", action="store_true", help="train again although the root holds a model")
    parser.add_argument("--study", action="store_true", help="also score candidate maps (mirror members too)")
    parser.add_argument("--figure-dir", default=None, help="also save the Dice-vs-score plot and an example here")
    return parser.parse_args()


def prepare(args: argparse.Namespace, root: Path) -> tuple[int, Path, dict[str, str]]:
    """Write (or find) the raw dataset and preprocess it; return its id, raw folder and test-case shifts."""
    import json

    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess

    if args.data == "synthetic":
        raw, difficulty = make_dataset(args.num_training or 16)
        plan_and_preprocess([DATASET_ID], ["2d"], num_processes=1, num_processes_fingerprint=1, show_progress=False)
        return DATASET_ID, raw, difficulty
    from brain_template import download_wheel
    from uncertainty_brain import make_brain_dataset

    raw = root / "nnUNet_raw" / f"Dataset{BRAIN_ID:03d}_{BRAIN_NAME}"
    if (raw / "test_shifts.json").is_file():
        return BRAIN_ID, raw, json.loads((raw / "test_shifts.json").read_text())
    difficulty = make_brain_dataset(raw, args.wheel or download_wheel(root / "wheel"), args.num_training or 24)
    plan_and_preprocess([BRAIN_ID], ["2d"], num_processes=1, num_processes_fingerprint=1, show_progress=False)
    # a small U-Net so a CPU trains it in minutes; the plans' topology stays
    plans_file = root / "nnUNet_preprocessed" / raw.name / "nnUNetPlans.json"
    shrink_planned_network(plans_file, "2d", BRAIN_FEATURES, batch_size=4)
    return BRAIN_ID, raw, difficulty


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path(args.root or tempfile.mkdtemp(prefix="bench_uncertainty_"))
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(root / name)
    os.environ.setdefault("nnUNet_n_proc_DA", "0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

    from nnunetv2.inference.predictor import nnUNetPredictor
    from nnunetv2.training.run_training import TrainingRequest, run_training
    from nnunetv2.uncertainty.checkpoint_prediction import predict_checkpoint_ensemble
    from nnunetv2.uncertainty.ensemble_uncertainty import compute_uncertainty
    from nnunetv2.uncertainty.measures import MEASURES
    from nnunetv2.uncertainty.score_report import spearman_correlation

    start = time.perf_counter()
    dataset_id, raw, difficulty = prepare(args, root)
    prepared = time.perf_counter() - start
    start = time.perf_counter()
    fold_folder = root / "nnUNet_results" / raw.name / "nnUNetTrainerCyclicLR__nnUNetPlans__2d" / "fold_0"
    if args.retrain or args.data == "synthetic" or not (fold_folder / "checkpoint_final.pth").is_file():
        fold_folder = run_training(
            TrainingRequest(
                dataset_id,
                "2d",
                0,
                trainer_name="nnUNetTrainerCyclicLR",
                num_epochs=args.epochs,
                num_of_cycles=args.cycles,
                checkpoint_rule=args.rule,
                num_iterations_per_epoch=args.iterations,
                num_val_iterations_per_epoch=5,
                seed=0,
                device="cpu",
                num_data_workers=0,
                overwrite=True,  # a benchmark retrains on purpose
            )
        )
    trained = time.perf_counter() - start
    model = fold_folder.parent

    start = time.perf_counter()
    predictor = nnUNetPredictor(device="cpu", allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model, [0])
    predictor.predict_from_files(
        raw / "imagesTs", root / "plain", num_processes_preprocessing=1, num_processes_segmentation_export=1
    )
    plain_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predict_checkpoint_ensemble(
        raw / "imagesTs", root / "checkpoints", model, device="cpu", num_processes_preprocessing=1, show_progress=False
    )
    ensemble_seconds = time.perf_counter() - start
    report = compute_uncertainty(
        root / "checkpoints", root / "uncertainty", reference_folder=raw / "labelsTs", show_progress=False
    )
    edge_ring_rows = compute_uncertainty(
        root / "checkpoints",
        root / "uncertainty_edge_ring",
        reference_folder=raw / "labelsTs",
        show_progress=False,
        score_definition="edge_ring",
    )["cases"]
    rows = report["cases"]
    num_checkpoints = rows[0]["num_checkpoints"]

    print(
        f"\ndataset: {args.data}, {len(rows)} test cases; prepared in {prepared:.0f} s; trained {args.epochs} "
        f"epochs x {args.iterations} iterations in {trained:.0f} s (0: cached), "
        f"{args.cycles} cycle(s), rule '{args.rule}' -> {num_checkpoints} checkpoints\n"
    )
    print_table(
        ["case", "degradation", "Dice", "class_entropy", "total_entropy", "t_test"],
        [
            [
                r["case"],
                difficulty[r["case"]],
                r["dice"],
                r["score_class_entropy"],
                r["score_total_entropy"],
                r["score_t_test"],
            ]
            for r in sorted(rows, key=lambda r: r["dice"], reverse=True)
        ],
    )
    cases = [r["case"] for r in rows]
    summary = []
    for measure in MEASURES:
        rho = spearman_correlation([r["dice"] for r in rows], [r[f"score_{measure}"] for r in rows])["rho"]
        ring = [r[f"score_{measure}"] for r in edge_ring_rows]
        rho_ring = spearman_correlation([r["dice"] for r in edge_ring_rows], ring)["rho"]
        aurocs = pooled_auroc(root / "checkpoints", raw, cases, measure)
        summary.append([measure, f"{rho:.3f}", f"{rho_ring:.3f}", *(f"{a:.3f}" for a in aurocs)])
    print()
    print_table(
        [
            "measure",
            "rho (Dice vs foreground_mean score)",
            "rho (Dice vs edge_ring score)",
            "AUROC wrong voxels (image)",
            "AUROC (fg+border)",
            "AUROC (pred+border)",
        ],
        summary,
    )
    extra = (ensemble_seconds - plain_seconds) / max(num_checkpoints - 1, 1)
    print(
        "\nfg+border: reference or predicted foreground dilated by 2 px; pred+border: predicted foreground "
        "dilated by 2 px\ntargets: rho < -0.6, AUROC > 0.85 (image), > 0.7 (fg+border); class_entropy is the default"
    )
    print(
        f"prediction of {len(rows)} cases: 1 checkpoint (nnUNetPredictor) {plain_seconds:.2f} s; "
        f"{num_checkpoints} checkpoints {ensemble_seconds:.2f} s; extra per checkpoint {extra:.2f} s "
        f"({extra / plain_seconds:.0%} of a single-checkpoint run)"
    )
    print(f"outputs: {root / 'uncertainty'}")
    if args.study:
        study(root, raw, model, {r["case"]: r["dice"] for r in rows}, difficulty)
    if args.figure_dir:
        save_figures(Path(args.figure_dir), root, raw, rows, difficulty, FIGURE_PREFIX[args.data])


def study(root: Path, raw: Path, model: Path, dice: dict[str, float], difficulty: dict[str, str]) -> None:
    """Score the candidate maps on this run (predicting flipped test images without mirroring once)."""
    import SimpleITK as sitk
    from uncertainty_map_study import (
        MIRRORS,
        CaseData,
        candidate_maps,
        load_members,
        load_mirrored,
        mirror_folder_name,
        score_groups,
        score_maps,
    )

    from nnunetv2.uncertainty.checkpoint_prediction import RUN_INDEX_FILE, predict_checkpoint_ensemble
    from nnunetv2.utilities.file_io import load_json

    for axes in MIRRORS:
        run = root / mirror_folder_name(axes)
        if (run / RUN_INDEX_FILE).is_file():
            continue
        images = root / f"images_{run.name}"
        images.mkdir(exist_ok=True)
        for path in sorted((raw / "imagesTs").glob("*.nii.gz")):
            image = sitk.ReadImage(str(path))
            array = sitk.GetArrayFromImage(image)
            flipped = sitk.GetImageFromArray(np.ascontiguousarray(np.flip(array, axes) if axes else array))
            flipped.CopyInformation(image)
            sitk.WriteImage(flipped, str(images / path.name), True)
        predict_checkpoint_ensemble(
            images, run, model, use_mirroring=False, device="cpu", num_processes_preprocessing=1, show_progress=False
        )
    names = [m["folder"] for m in load_json(root / "checkpoints" / RUN_INDEX_FILE)["members"]]

    def case_data(case: str) -> CaseData:
        checkpoints = load_members([root / "checkpoints" / n for n in names], case)
        segmentation = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "uncertainty" / f"{case}.nii.gz")))
        reference = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTs" / f"{case}.nii.gz")))
        maps = candidate_maps(checkpoints, load_mirrored(root, names, case))
        return (
            reference.reshape(segmentation.shape),
            segmentation,
            {k: v.reshape(segmentation.shape) for k, v in maps.items()},
        )

    data = {case: case_data(case) for case in dice}
    print("\ncandidate maps (same errors: the ensemble segmentation with mirroring)")
    print_table(
        ["map", "AUROC image", "AUROC fg+border", "AUROC pred+border", "rho (Dice vs fg-mean score)"],
        score_maps(list(dice), dice, data),
    )
    groups: dict[str, list[str]] = {}
    for case in dice:
        groups.setdefault(difficulty[case].split("@")[0], []).append(case)
    shown = ["class_entropy", "class_entropy_regional"]
    print("\nper shift (AUROC image / fg+border)")
    print_table(
        ["shift", "cases", "Dice"] + [f"{n} {where}" for n in shown for where in ("image", "fg+border")],
        score_groups(groups, dice, data, shown),
    )


def save_figures(
    folder: Path, root: Path, raw: Path, rows: list[dict], difficulty: dict[str, str], prefix: str
) -> None:
    """Copy the Dice-vs-score plot and draw image / prediction / uncertainty of the clean and hardest cases."""
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "uncertainty" / "dice_vs_uncertainty.png", folder / f"{prefix}_dice_vs_score.png")
    ordered = sorted(rows, key=lambda r: r["dice"])
    chosen = [ordered[-1], ordered[len(ordered) // 2], ordered[0]]
    figure, axes = plt.subplots(len(chosen), 4, figsize=(10, 2.7 * len(chosen)), dpi=100)
    for row, axis_row in zip(chosen, axes):
        case = row["case"]
        panels = [
            sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
            for path in (
                raw / "imagesTs" / f"{case}_0000.nii.gz",
                raw / "labelsTs" / f"{case}.nii.gz",
                root / "uncertainty" / f"{case}.nii.gz",
                root / "uncertainty" / "uncertainty_maps" / f"{case}.nii.gz",
            )
        ]
        titles = [
            f"{case} ({difficulty[case]})",
            "reference",
            f"ensemble, Dice {row['dice']:.2f}",
            f"class entropy, score {row['score']:.3f}",
        ]
        for axis, panel, title, cmap in zip(axis_row, panels, titles, ["gray", "viridis", "viridis", "magma"]):
            axis.imshow(
                panel.reshape(panel.shape[-2:]),
                cmap=cmap,
                vmin=0 if cmap == "magma" else None,
                vmax=1000 if cmap == "magma" else None,
            )
            axis.set_title(title, fontsize=8)
            axis.axis("off")
    figure.tight_layout()
    figure.savefig(folder / f"{prefix}_example.png")
    plt.close(figure)


if __name__ == "__main__":
    main()
