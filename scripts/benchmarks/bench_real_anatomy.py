"""Benchmark pseudo labels on real anatomy: brain MRI slices and slabs with person-like correction strokes.

The images are the MNI ICBM152 2009 (nonlinear, symmetric) T1 template and its grey- and white-matter
probability maps as shipped inside the nilearn wheel (read from the wheel with zipfile; nilearn is not
installed or imported). Labels: 0 background (CSF, skull, outside), 1 grey matter, 2 white matter, the
most probable tissue per voxel. Every case gets its own scanner degradation (a smooth multiplicative bias
field, a little blur, Gaussian noise), so no two cases look alike.

- labeled: 8 axial slices, evenly spread over the brain; a preliminary 2d model (nnunetv2 pipeline, a
  small U-Net, a few epochs on the CPU) is trained on them.
- pool: 2D axial slices between the labeled ones, and 3D slabs (8 axial slices, the whole head in-plane)
  between them, predicted by the preliminary model (slice by slice). Pool cases alternate between a
  development part (to choose the rule's defaults) and a held-out part (to report them).

Correction strokes are simulated on the preliminary prediction (``simulate_correction_scribbles``, largest
error regions first, strokes in axial slices) in three styles: ``thin`` (1 px centre-line traces), ``dab``
(short 3 px wide dabs at the deepest point of a region) and ``thick`` (the 3 px wide smooth strokes of the
synthetic benchmarks); budgets are fractions of the image's pixels. For every style and budget the script
prints: prediction Dice, the ceiling (Dice if every error region a stroke touches were fixed), pseudo-label
Dice (mean and per class), the worst per-case difference, the share of pixels the pseudo label changed
against the prediction, and the share of those changes that were right.

Usage: python scripts/benchmarks/bench_real_anatomy.py [--wheel nilearn-*.whl] [--work /tmp/bench_real_anatomy]
    [--part dev|heldout|both] [--styles thin dab thick] [--budgets 0.0005 0.001 0.002 0.005 0.01]
    [--dims 2d 3d] [--rule published|network_aware] [--param NAME=VALUE ...] [--figure PATH]
    [--recalibration-figure PATH] [--json PATH]
Without --wheel the wheel is fetched with ``pip download nilearn --no-deps`` into the work folder. Data and
model are kept in the work folder and reused (``--rebuild`` starts over).
Target (held-out, thin strokes at 0.2%): pseudo-label Dice >= prediction Dice + 0.05 on average and never
below the prediction by more than 0.01 on any case.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brain_template import LABELS, degraded, download_wheel, template_from_wheel  # noqa: E402
from common import print_table, shrink_planned_network  # noqa: E402

DATASET_ID, DATASET_NAME = 996, "RealAnatomyBench"
DATASET = f"Dataset{DATASET_ID:03d}_{DATASET_NAME}"
CONFIGURATION = "2d"
FEATURES = [8, 16, 32, 64, 128, 256, 256, 256]  # a small 2D U-Net for the CPU, the plans' topology
UNANNOTATED = 3
NUM_LABELED = 8
SLAB_DEPTH = 8  # 3D cases: slabs of this many axial slices, the whole head in-plane
# style -> (simulate_correction_scribbles style, stroke thickness)
STYLES = {"thin": ("centreline", 1), "dab": ("dab", 3), "thick": ("spline", 3)}
BUDGETS = (0.0005, 0.001, 0.002, 0.005, 0.01)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=None, help="a nilearn wheel (default: pip download it)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_real_anatomy"))
    parser.add_argument("--rebuild", action="store_true", help="rebuild the data and retrain the model")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of the preliminary model")
    parser.add_argument("--iterations", type=int, default=25, help="iterations per epoch")
    parser.add_argument("--part", choices=("dev", "heldout", "both"), default="both")
    parser.add_argument("--dims", nargs="+", choices=("2d", "3d"), default=["2d", "3d"])
    parser.add_argument("--styles", nargs="+", choices=tuple(STYLES), default=list(STYLES))
    parser.add_argument("--budgets", nargs="+", type=float, default=list(BUDGETS))
    parser.add_argument("--rule", default=None, help="pseudo-label rule (default: the library's)")
    parser.add_argument("--param", nargs="*", default=[], help="rule parameters NAME=VALUE")
    parser.add_argument("--figure", type=Path, default=None, help="write the stroke-style figure here (PNG)")
    parser.add_argument(
        "--recalibration-figure",
        type=Path,
        default=None,
        help="write a figure of one slice's pseudo labels with and without the recalibration here (PNG)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all per-case results here")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def case_layout(label: np.ndarray) -> dict[str, list[tuple[str, tuple[slice, ...]]]]:
    """Return the cases per set (labeled, pool2d, pool3d) as (name, box in the template)."""
    brain_z = np.flatnonzero((label > 0).any((1, 2)))
    z_low, z_high = brain_z[0] + 30, brain_z[-1] - 25
    labeled_z = np.linspace(z_low, z_high, NUM_LABELED).round().astype(int)
    gap = int(np.diff(labeled_z).min())
    full = (slice(None), slice(None))
    layout = {
        "labeled": [(f"brain_{i:03d}", (slice(z, z + 1), *full)) for i, z in enumerate(labeled_z)],
        "pool2d": [],
        "pool3d": [],
    }
    for z in labeled_z[:-1]:
        for offset in (gap // 3, 2 * gap // 3):
            layout["pool2d"].append((f"slice_{z + offset:03d}", (slice(z + offset, z + offset + 1), *full)))
    depth = min(SLAB_DEPTH, gap - 2)
    for z in labeled_z[:-1]:
        start = z + (gap - depth) // 2
        layout["pool3d"].append((f"slab_{start:03d}", (slice(start, start + depth), *full)))
    return layout


def part_of(index: int) -> str:
    """Pool cases alternate: even positions are the development part, odd ones the held-out part."""
    return "dev" if index % 2 == 0 else "heldout"


def build(args: argparse.Namespace, root: Path) -> None:
    """Write the raw dataset and pool folders, train the preliminary model and predict the pool."""
    import SimpleITK as sitk

    wheel = args.wheel or download_wheel(root / "wheel")
    t1, label = template_from_wheel(wheel)
    layout = case_layout(label)
    raw = root / "nnUNet_raw" / DATASET
    rng = np.random.default_rng(args.seed)  # one stream over all cases in layout order: the same seed, the same data

    def write(array: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((1.0, 1.0, 1.0))
        sitk.WriteImage(image, str(path), True)

    for subset, cases in layout.items():
        for name, box in cases:
            image = degraded(t1[box], rng)
            if subset == "labeled":
                write(image, raw / "imagesTr" / f"{name}_0000.nii.gz")
                write(label[box], raw / "labelsTr" / f"{name}.nii.gz")
            else:
                write(image, root / subset / "images" / f"{name}_0000.nii.gz")
                write(label[box], root / subset / "labels" / f"{name}.nii.gz")
    dataset_json = {
        "channel_names": {"0": "T1"},
        "labels": LABELS,
        "numTraining": len(layout["labeled"]),
        "file_ending": ".nii.gz",
    }
    (raw / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    train_and_predict(args, root)


def train_and_predict(args: argparse.Namespace, root: Path) -> None:
    """Train the preliminary 2d model unless trained, and predict the pools not predicted yet."""
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.inference.predictor import predict_from_model_folder

    model = model_folder(DATASET, "nnUNetTrainer", "nnUNetPlans", CONFIGURATION)
    if not (model / "fold_all" / "checkpoint_final.pth").is_file():
        train(args, root)
    for subset in ("pool2d", "pool3d"):
        if (root / subset / "predictions").is_dir():
            continue
        predict_from_model_folder(
            root / subset / "images",
            root / subset / "predictions",
            model,
            folds=["all"],
            save_probabilities=True,
            num_processes_preprocessing=1,
            num_processes_segmentation_export=1,
            show_progress=False,
        )


def train(args: argparse.Namespace, root: Path) -> None:
    """Plan and preprocess the labeled slices and train the preliminary 2d model (a small U-Net, batch 4)."""
    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
    from nnunetv2.training.run_training import TrainingRequest, build_trainer

    plan_and_preprocess([DATASET_ID], configurations=[CONFIGURATION], show_progress=False)
    plans_file = root / "nnUNet_preprocessed" / DATASET / "nnUNetPlans.json"
    shrink_planned_network(plans_file, CONFIGURATION, FEATURES, batch_size=4)
    start = time.perf_counter()
    build_trainer(
        TrainingRequest(
            DATASET_ID,
            CONFIGURATION,
            "all",
            num_epochs=args.epochs,
            num_iterations_per_epoch=args.iterations,
            num_val_iterations_per_epoch=2,
            seed=args.seed,
        )
    ).run_training()
    print(
        f"preliminary model: {args.epochs} epochs x {args.iterations} iterations, {time.perf_counter() - start:.0f} s"
    )


def load_case(root: Path, subset: str, name: str) -> dict[str, np.ndarray]:
    """Image (1, *spatial), probabilities (C, *spatial), reference and prediction (*spatial) of a pool case."""
    import SimpleITK as sitk

    def read(path: Path) -> np.ndarray:
        return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))

    with np.load(root / subset / "predictions" / f"{name}.npz") as content:
        probabilities = content["probabilities"].astype(np.float32)
    squeeze = subset == "pool2d"  # single slices are 2D cases
    image = read(root / subset / "images" / f"{name}_0000.nii.gz")
    reference = read(root / subset / "labels" / f"{name}.nii.gz").astype(np.int64)
    prediction = read(root / subset / "predictions" / f"{name}.nii.gz").astype(np.int64)
    if squeeze:
        image, reference, prediction, probabilities = image[0], reference[0], prediction[0], probabilities[:, 0]
    probabilities /= probabilities.sum(0, keepdims=True)
    return {"image": image[None], "probabilities": probabilities, "reference": reference, "prediction": prediction}


def dice_per_class(reference: np.ndarray, label: np.ndarray) -> dict[int, float]:
    """Dice of each foreground class (1 when both are empty)."""
    result = {}
    for c in (1, 2):
        r, p = reference == c, label == c
        total = int(r.sum() + p.sum())
        result[c] = 1.0 if total == 0 else 2.0 * int((r & p).sum()) / total
    return result


def strokes(case: dict[str, np.ndarray], style: str, budget: float, seed: int) -> np.ndarray:
    """Correction strokes of one style on the case's prediction, ``budget`` of its voxels."""
    from nnunetv2.scribble_loop.correction_scribbles import simulate_correction_scribbles

    kind, thickness = STYLES[style]
    return simulate_correction_scribbles(
        case["reference"],
        case["prediction"],
        ignore_value=UNANNOTATED,
        budget=int(round(budget * case["reference"].size)),
        min_region_size=5,
        thickness=thickness,
        style=kind,
        seed=seed,
    )


def evaluate(case: dict[str, np.ndarray], scribbles: np.ndarray, rule: dict) -> dict[str, float]:
    """Pseudo label of one case and stroke set; return its figures."""
    from nnunetv2.scribble_loop.pseudo_labels import geodesic_pseudo_label

    label, _ = geodesic_pseudo_label(
        case["image"], case["probabilities"], scribbles, None, UNANNOTATED, device="cpu", **rule
    )
    reference, prediction = case["reference"], case["prediction"]
    before, after = dice_per_class(reference, prediction), dice_per_class(reference, label)
    changed = label != prediction
    return {
        "ceiling_dice": ceiling_dice(reference, prediction, scribbles),
        "prediction_dice": float(np.mean(list(before.values()))),
        "pseudo_dice": float(np.mean(list(after.values()))),
        "pseudo_dice_gm": after[1],
        "pseudo_dice_wm": after[2],
        "prediction_dice_gm": before[1],
        "prediction_dice_wm": before[2],
        "scribbled": float((scribbles != UNANNOTATED).mean()),
        "changed": float(changed.mean()),
        "changed_right": float((label[changed] == reference[changed]).mean()) if changed.any() else float("nan"),
    }


def ceiling_dice(reference: np.ndarray, prediction: np.ndarray, scribbles: np.ndarray) -> float:
    """Mean foreground Dice if every error region a stroke touches were fixed and nothing else changed.

    Error regions are those the stroke simulator draws in (connected wrong voxels of one reference class);
    a rule can only beat this by fixing untouched regions the strokes reach through correctly labelled voxels.
    """
    import cc3d

    wrong = np.where(reference != prediction, reference.astype(np.int64) + 1, 0)
    regions = cc3d.connected_components(wrong, connectivity=6 if wrong.ndim == 3 else 4)
    touched = np.unique(regions[scribbles != UNANNOTATED])
    fixed = np.where(np.isin(regions, touched[touched > 0]), reference, prediction)
    return float(np.mean(list(dice_per_class(reference, fixed).values())))


def parse_rule(args: argparse.Namespace) -> dict:
    rule = {} if args.rule is None else {"rule": args.rule}
    for item in args.param:
        name, value = item.split("=", 1)
        if value.lower() in ("true", "false"):
            rule[name] = value.lower() == "true"
        else:
            rule[name] = int(value) if value.lstrip("-").isdigit() else float(value)
    return rule


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    root = args.work
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[var] = str(root / var)
    if args.rebuild and root.exists():
        shutil.rmtree(root)
    if not (root / "pool3d" / "predictions").is_dir():
        for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            (root / var).mkdir(parents=True, exist_ok=True)
        build(args, root)
    rule = parse_rule(args)
    parts = ("dev", "heldout") if args.part == "both" else (args.part,)
    results = []
    start = time.perf_counter()
    for dim in args.dims:
        subset = f"pool{dim}"
        names = sorted(p.name[: -len(".npz")] for p in (root / subset / "predictions").glob("*.npz"))
        for index, name in enumerate(names):
            if part_of(index) not in parts:
                continue
            case = load_case(root, subset, name)
            for style in args.styles:
                for budget in args.budgets:
                    scribbles = strokes(case, style, budget, seed=index)
                    figures = evaluate(case, scribbles, rule)
                    results.append({"case": name, "dim": dim, "part": part_of(index), "style": style,
                                    "budget": budget, **figures})  # fmt: skip
    report(results, rule, time.perf_counter() - start)
    if args.json:
        args.json.write_text(json.dumps({"rule": rule, "results": results}, indent=1))
    names = sorted(p.name[: -len(".npz")] for p in (root / "pool2d" / "predictions").glob("*.npz"))
    middle = len(names) // 2  # a held-out slice (odd position)
    if args.figure:
        draw_stroke_styles(load_case(root, "pool2d", names[middle]), strokes, args.figure)
    if args.recalibration_figure:
        case = load_case(root, "pool2d", names[middle])
        draw_recalibration(case, strokes(case, "thin", 0.002, seed=middle), rule, args.recalibration_figure)


def report(results: list[dict], rule: dict, seconds: float) -> None:
    """Print one table row per (part, dimension, style, budget), and the targets."""
    rows = []
    keys = sorted({(r["part"], r["dim"], r["style"], r["budget"]) for r in results})
    for part, dim, style, budget in keys:
        group = [r for r in results if (r["part"], r["dim"], r["style"], r["budget"]) == (part, dim, style, budget)]
        gain = [r["pseudo_dice"] - r["prediction_dice"] for r in group]

        def mean(key: str, group: list[dict] = group) -> float:
            return float(np.nanmean([r[key] for r in group]))

        rows.append(
            [
                part,
                dim,
                style,
                f"{100 * budget:.2f}%",
                len(group),
                f"{100 * mean('scribbled'):.3f}%",
                f"{mean('prediction_dice'):.4f}",
                f"{mean('ceiling_dice'):.4f}",
                f"{mean('pseudo_dice'):.4f}",
                f"{mean('pseudo_dice_gm'):.3f}/{mean('pseudo_dice_wm'):.3f}",
                f"{np.mean(gain):+.4f}",
                f"{min(gain):+.4f}",
                f"{100 * mean('changed'):.2f}%",
                f"{mean('changed_right'):.2f}",
            ]
        )
    print(f"rule: {rule or 'library defaults'} ({seconds:.0f} s)")
    print_table(
        [
            "part",
            "dim",
            "style",
            "budget",
            "cases",
            "drawn",
            "prediction Dice",
            "ceiling",
            "pseudo Dice",
            "GM/WM",
            "gain",
            "worst case",
            "changed",
            "right",
        ],
        rows,
    )
    target = [r for r in results if r["part"] == "heldout" and r["style"] == "thin" and r["budget"] == 0.002]
    if target:
        gain = [r["pseudo_dice"] - r["prediction_dice"] for r in target]
        met = np.mean(gain) >= 0.05 and min(gain) >= -0.01
        print(
            f"target (held-out, thin, 0.2%): mean gain {np.mean(gain):+.4f} (>= +0.05), worst case {min(gain):+.4f} "
            f"(>= -0.01): {'met' if met else 'NOT met'}"
        )


def draw_stroke_styles(case: dict[str, np.ndarray], make_strokes, path: Path, budget: float = 0.005) -> None:
    """Save a figure: the reference, the prediction's errors, and the strokes of each style at ``budget``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image, reference, prediction = case["image"][0], case["reference"], case["prediction"]
    colours = np.array([[0.9, 0.2, 0.9], [1.0, 0.6, 0.0], [0.2, 0.9, 1.0]])  # background, grey, white matter

    def overlay(axis, mask_values: np.ndarray, title: str) -> None:
        axis.imshow(image[::-1], cmap="gray")
        rgba = np.zeros((*mask_values.shape, 4))
        drawn = mask_values < len(colours)
        rgba[drawn, :3] = colours[mask_values[drawn]]
        rgba[drawn, 3] = 1.0
        axis.imshow(rgba[::-1], interpolation="nearest")
        axis.set_title(title, fontsize=9)
        axis.axis("off")

    panels = [("reference (grey/white matter)", np.where(reference > 0, reference, len(colours)))]
    panels.append(("prediction's errors (true class)", np.where(prediction != reference, reference, len(colours))))
    for style in STYLES:
        scribbles = make_strokes(case, style, budget, 0)
        drawn = scribbles != UNANNOTATED
        panels.append((f"{style} strokes ({100 * drawn.mean():.2f}%)", np.where(drawn, scribbles, len(colours))))
    figure, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 3.4), layout="constrained")
    for axis, (title, values) in zip(axes, panels):
        overlay(axis, values, title)
    names = ("background (CSF, outside)", "grey matter", "white matter")
    _legend(figure, [(colour, name) for colour, name in zip(colours, names)])
    _save(figure, path)


def draw_recalibration(case: dict[str, np.ndarray], scribbles: np.ndarray, rule: dict, path: Path) -> None:
    """Save a figure: one slice's thin strokes on the prediction's errors, and what the pseudo label changes
    against the prediction (right / wrong) without and with the recalibration around the strokes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnunetv2.scribble_loop.pseudo_labels import geodesic_pseudo_label

    image, reference, prediction = case["image"][0], case["reference"], case["prediction"]
    drawn = scribbles != UNANNOTATED
    right, wrong, stroke, error = (0.0, 0.62, 0.45), (0.84, 0.37, 0.0), (0.94, 0.89, 0.26), (0.8, 0.47, 0.65)

    def panel(axis, layers: list[tuple[np.ndarray, tuple, float]], title: str) -> None:
        axis.imshow(image[::-1], cmap="gray")
        for mask, colour, alpha in layers:
            rgba = np.zeros((*mask.shape, 4))
            rgba[mask, :3] = colour
            rgba[mask, 3] = alpha
            axis.imshow(rgba[::-1], interpolation="nearest")
        axis.set_title(title, fontsize=9)
        axis.axis("off")

    before = float(np.mean(list(dice_per_class(reference, prediction).values())))
    figure, axes = plt.subplots(1, 3, figsize=(10.5, 4.8), layout="constrained")
    first_title = (
        f"prediction, Dice {before:.3f}: its errors and\nthin strokes ({100 * drawn.mean():.2f}% of the pixels)"
    )
    panel(axes[0], [(prediction != reference, error, 0.6), (drawn, stroke, 1.0)], first_title)
    variants = (("growth only\n(--recalibration_sigma 0)", 0.0), ("default: recalibration,\nthen growth", None))
    for axis, (title, sigma) in zip(axes[1:], variants):
        options = {**rule, "recalibration_sigma": sigma} if sigma is not None else rule
        label, _ = geodesic_pseudo_label(
            case["image"], case["probabilities"], scribbles, None, UNANNOTATED, device="cpu", **options
        )
        changed = label != prediction
        after = float(np.mean(list(dice_per_class(reference, label).values())))
        panel(axis, [(changed & (label == reference), right, 1.0), (changed & (label != reference), wrong, 1.0),
                     (drawn, stroke, 1.0)], f"pseudo label, {title}: Dice {after:.3f}")  # fmt: skip
    _legend(figure, [(error, "prediction wrong"), (stroke, "stroke"), (right, "changed, now right"),
                     (wrong, "changed, now wrong")])  # fmt: skip
    _save(figure, path)


def _legend(figure, entries: list[tuple]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=colour, label=name) for colour, name in entries]
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)
    plt.close(figure)


if __name__ == "__main__":
    main()
