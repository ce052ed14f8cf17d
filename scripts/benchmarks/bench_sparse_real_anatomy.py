"""Scribble-only against dense training on real anatomy: axial brain MRI slices, grey and white matter.

Images: the MNI ICBM152 2009 T1 template and its tissue labels (brain_template.py; read from a nilearn
wheel), ``--train`` axial slices for training and ``--test`` slices between them for testing, every slice
with its own scanner degradation. Labels: 0 background (CSF, skull, outside), 1 grey matter, 2 white matter.

Scribbles are skeleton traces, the way a person draws along the middle of a structure: per class, short
pieces of the class's skeleton (its medial axis) at random places until the class has its share of the
budget (the budget split equally between the three classes, a third each). ``thin`` is the 1 px trace
(--budget of the pixels), ``thick`` the same trace dilated to 3 px inside its class.

Variants, all trained with the same plans, budget and seed (a small 2D U-Net on the CPU):
  dense              every pixel labelled
  <style>            scribble-only (the ignore label: partial loss, annotated-voxel sampling)
  <style>+expanded   the scribbles grown by nnUNetv2_expand_sparse_labels (random walker on the image,
                     ignore where the walker is unsure) and then trained the same way

Prints, per variant: annotated share, test Dice (GM, WM, mean) and the ratio to dense.

Usage: python scripts/benchmarks/bench_sparse_real_anatomy.py --wheel nilearn-*.whl
    [--variants dense thin thin+expanded thick thick+expanded] [--epochs 15] [--iterations 25]
    [--budget 0.004] [--beta 130] [--min_probability 0.8] [--work /tmp/bench_sparse_real_anatomy]
Without --wheel the wheel is fetched with ``pip download nilearn --no-deps``. Trained variants are kept in
the work folder (results.json) and reused unless --retrain. Target: scribble Dice >= 0.9 x dense Dice.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brain_template import LABELS, degraded, download_wheel, template_from_wheel  # noqa: E402
from common import print_table, shrink_planned_network  # noqa: E402

CONFIGURATION = "2d"
FEATURES = [8, 16, 32, 64, 128, 256, 256, 256]  # a small 2D U-Net for the CPU, the plans' topology
IGNORE = 3
DENSE_ID = 880
VARIANT_IDS = {"thin": 881, "thick": 882, "thin+expanded": 883, "thick+expanded": 884}
PIECE_RADIUS = 6  # a skeleton piece: the skeleton pixels within this many pixels of a random skeleton pixel


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=None, help="a nilearn wheel (default: pip download it)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_sparse_real_anatomy"))
    parser.add_argument("--variants", nargs="+", default=["dense", *VARIANT_IDS], choices=["dense", *VARIANT_IDS])
    parser.add_argument("--train", type=int, default=16, help="training slices")
    parser.add_argument("--test", type=int, default=8, help="test slices")
    parser.add_argument("--budget", type=float, default=0.004, help="thin scribble pixels per slice (share)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--method", default="intensity", help="expansion method (intensity, random_walker)")
    for option, kind in (("min_probability", float), ("smoothing", float), ("neighbours", int), ("beta", float)):
        parser.add_argument(f"--{option}", type=kind, default=None, help=f"expansion: {option} (default: library)")
    parser.add_argument("--retrain", action="store_true", help="train the chosen variants again")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def skeleton_scribbles(label: np.ndarray, budget: float, rng: np.random.Generator, thickness: int) -> np.ndarray:
    """Skeleton pieces per class until each class has budget/3 of the pixels; ``IGNORE`` elsewhere (2D map)."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    scribbles = np.full(label.shape, IGNORE, dtype=np.uint8)
    per_class = budget * label.size / len(LABELS)
    rows, cols = np.indices(label.shape)
    for c in LABELS.values():
        mask = label == c
        skeleton = skeletonize(mask)
        candidates = np.argwhere(skeleton)
        drawn = np.zeros_like(mask)
        for r, q in candidates[rng.permutation(len(candidates))]:
            if drawn.sum() >= per_class:
                break
            near = (np.abs(rows - r) <= PIECE_RADIUS) & (np.abs(cols - q) <= PIECE_RADIUS)
            drawn |= skeleton & near
        if thickness > 1:
            drawn = ndimage.binary_dilation(drawn, iterations=(thickness - 1) // 2) & mask
        scribbles[drawn] = c
    return scribbles


def build_raw(args: argparse.Namespace, raw: Path) -> None:
    """Write the dense dataset (with imagesTs/labelsTs) and the two scribble datasets."""
    import SimpleITK as sitk

    wheel = args.wheel or download_wheel(args.work / "wheel")
    t1, label = template_from_wheel(wheel)
    brain_z = np.flatnonzero((label > 0).any((1, 2)))
    z_all = np.linspace(brain_z[0] + 25, brain_z[-1] - 20, args.train + args.test).round().astype(int)
    test_z = set(z_all[1 :: max(1, len(z_all) // args.test)][: args.test].tolist())
    rng = np.random.default_rng(args.seed)

    def write(array: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = sitk.GetImageFromArray(array[None])
        image.SetSpacing((1.0, 1.0, 1.0))
        sitk.WriteImage(image, str(path), True)

    dense = raw / f"Dataset{DENSE_ID}_BrainDense"
    for z in z_all:
        name, image = f"brain_{z:03d}", degraded(t1[z], rng)
        subset = "Ts" if z in test_z else "Tr"
        write(image, dense / f"images{subset}" / f"{name}_0000.nii.gz")
        write(label[z], dense / f"labels{subset}" / f"{name}.nii.gz")
        if subset == "Ts":
            continue
        for style, thickness in (("thin", 1), ("thick", 3)):
            folder = raw / f"Dataset{VARIANT_IDS[style]}_Brain_{style}"
            scribbles = skeleton_scribbles(label[z], args.budget, np.random.default_rng([args.seed, z]), thickness)
            write(scribbles, folder / "labelsTr" / f"{name}.nii.gz")
            write(image, folder / "imagesTr" / f"{name}_0000.nii.gz")
    for folder, labels in (
        (dense, LABELS),
        *((raw / f"Dataset{VARIANT_IDS[s]}_Brain_{s}", None) for s in ("thin", "thick")),
    ):
        dataset_json = {
            "channel_names": {"0": "T1"},
            "labels": labels or {**LABELS, "ignore": IGNORE},
            "numTraining": args.train,
            "file_ending": ".nii.gz",
        }
        (folder / "dataset.json").write_text(json.dumps(dataset_json, indent=2))


def expand(args: argparse.Namespace, style: str) -> dict[str, float]:
    """Grow the ``style`` scribble dataset into its +expanded variant with the library's dataset tool."""
    from nnunetv2.sparse.sparse_dataset import expand_sparse_dataset_by_id

    names = ("min_probability", "smoothing", "neighbours", "beta")
    options = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    _, fractions = expand_sparse_dataset_by_id(
        VARIANT_IDS[style],
        VARIANT_IDS[f"{style}+expanded"],
        name=f"Brain_{style}_expanded",
        overwrite=True,
        method=args.method,
        **options,
    )
    return fractions


def annotated_share(raw_folder: Path) -> tuple[float, dict[int, float]]:
    """Share of training pixels annotated, and per class the share of its pixels that are right (vs dense)."""
    import SimpleITK as sitk

    dense_folder = next(raw_folder.parent.glob(f"Dataset{DENSE_ID}_*")) / "labelsTr"
    annotated, total, right = 0, 0, {}
    for path in sorted((raw_folder / "labelsTr").glob("*.nii.gz")):
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        reference = sitk.GetArrayFromImage(sitk.ReadImage(str(dense_folder / path.name)))
        annotated += int((labels != IGNORE).sum())
        total += labels.size
        for c in LABELS.values():
            hit = right.setdefault(c, [0, 0])
            hit[0] += int(((labels == c) & (reference == c)).sum())
            hit[1] += int((labels == c).sum())
    return annotated / total, {c: h[0] / max(1, h[1]) for c, h in right.items()}


def train_and_test(args: argparse.Namespace, dataset_id: int, root: Path) -> dict:
    """Plan, preprocess, shrink the network, train fold 'all', predict the test slices; return Dice per class."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder_with_plans
    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.inference.predictor import predict_from_model_folder
    from nnunetv2.training.run_training import TrainingRequest, build_trainer

    plan_and_preprocess(
        [dataset_id], configurations=[CONFIGURATION], num_processes=1, num_processes_fingerprint=1, show_progress=False
    )
    name = next((root / "nnUNet_raw").glob(f"Dataset{dataset_id}_*")).name
    plans_file = root / "nnUNet_preprocessed" / name / "nnUNetPlans.json"
    shrink_planned_network(plans_file, CONFIGURATION, FEATURES, batch_size=4)
    start = time.perf_counter()
    build_trainer(
        TrainingRequest(
            dataset_id,
            CONFIGURATION,
            "all",
            num_epochs=args.epochs,
            num_iterations_per_epoch=args.iterations,
            num_val_iterations_per_epoch=2,
            num_data_workers=0,
            seed=args.seed,
            device="cpu",
            show_progress=False,
            overwrite=True,
        )
    ).run_training()
    seconds = time.perf_counter() - start
    model = model_folder(name, "nnUNetTrainer", "nnUNetPlans", CONFIGURATION)
    dense = next((root / "nnUNet_raw").glob(f"Dataset{DENSE_ID}_*"))
    output = root / "predictions" / name
    predict_from_model_folder(
        dense / "imagesTs",
        output,
        model,
        folds=["all"],
        device="cpu",
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        show_progress=False,
    )
    summary = compute_metrics_on_folder_with_plans(
        dense / "labelsTs", output, dense / "dataset.json", model / "plans.json"
    )
    return {
        "gm": summary["mean"][1]["Dice"],
        "wm": summary["mean"][2]["Dice"],
        "mean": summary["foreground_mean"]["Dice"],
        "seconds": seconds,
        "patch_size": json.loads(plans_file.read_text())["configurations"][CONFIGURATION]["patch_size"],
    }


def main() -> None:
    args = parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    root = args.work
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[var] = str(root / var)
        (root / var).mkdir(parents=True, exist_ok=True)
    raw = root / "nnUNet_raw"
    if not list(raw.glob(f"Dataset{DENSE_ID}_*")):
        build_raw(args, raw)
    results_file = root / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    for variant in args.variants:
        if variant in results and not args.retrain:
            continue
        dataset_id = DENSE_ID if variant == "dense" else VARIANT_IDS[variant]
        if variant.endswith("+expanded"):
            expand(args, variant.split("+")[0])
        share, right = annotated_share(next(raw.glob(f"Dataset{dataset_id}_*")))
        figures = train_and_test(args, dataset_id, root)
        results[variant] = {**figures, "annotated": share, "right": right, "epochs": args.epochs,
                            "iterations": args.iterations}  # fmt: skip
        results_file.write_text(json.dumps(results, indent=1))
        print(f"{variant}: test Dice {figures['mean']:.3f} ({figures['seconds']:.0f} s)", flush=True)
    report(results)


def report(results: dict) -> None:
    """One row per variant: annotated share, labels right, Dice GM/WM/mean, ratio to dense."""
    dense = results.get("dense", {}).get("mean")
    rows = []
    for variant in ["dense", *VARIANT_IDS]:
        if variant not in results:
            continue
        r = results[variant]
        right = r["right"]
        rows.append(
            [
                variant,
                f"{100 * r['annotated']:.2f}%",
                f"{min(right.values()):.3f}" if variant != "dense" else "1",
                f"{r['gm']:.3f}",
                f"{r['wm']:.3f}",
                f"{r['mean']:.3f}",
                f"{r['mean'] / dense:.2f}" if dense else "-",
                f"{r['epochs']}x{r['iterations']}",
                f"{r['seconds']:.0f}",
            ]
        )
    print_table(["variant", "annotated", "labels right (worst class)", "GM", "WM", "mean Dice", "x dense",
                 "budget", "train s"], rows)  # fmt: skip


if __name__ == "__main__":
    main()
