"""Benchmark: where to put correction scribbles - at random, or where the uncertainty worklist says.

Usage: python scripts/benchmarks/bench_guided_annotation.py [--cases 8] [--shape 32 64 64]
            [--budgets 20 40] [--seeds 3] [--regimes systematic epistemic] [--distance_scale 5]

Same pool, same voxel budget, the same strokes (the scribble loop's correction strokes: a curve 3
voxels wide through a wrong piece, reference class), four ways to decide where they go:
- random_slices: a person without guidance opens random slices of random cases and corrects the
                 largest wrong piece they see in each;
- random:        error regions (3D connected wrong voxels of one class) in random order, the budget
                 shared evenly over the cases: the scribble loop's simulated person, who knows where
                 every error is (region_order="random");
- largest:       the same, largest error region first;
- guided:        the worklist of nnUNetv2_suggest_annotations (from the uncertainty map only, no
                 reference), entries by decreasing score; inside each entry's box the person corrects
                 the largest wrong piece; boxes without errors cost nothing.
Error regions under 10 voxels get no stroke in all four. Each case's scribbles are grown into a
pseudo label by geodesic_pseudo_label (default rule) from the image and the simulated network's mean
probabilities. Reported per placement: the pool's summed change of mean foreground Dice (pseudo label
vs the network's prediction) per 1000 scribbled voxels, and its ratio to random_slices and random.

The network is simulated, not trained (honest caveat: its errors and its uncertainty come from one
construction). Per case, logits are MARGIN x the reference one-hot blurred by 1 mm (soft
boundaries) + a smooth random field per class shared by all ensemble members (systematic errors,
std SHARED) + one smooth field per member (disagreement, std MEMBER); a field is white noise blurred by
SMOOTH_MM (periodic edges) and scaled to unit std. The members' softmax outputs give the mean
probabilities, the prediction (their argmax) and the uncertainty map (class entropy of the mean,
nnunetv2.uncertainty.measures). Two regimes: "systematic" errors mostly shared by the members (many
confident errors), "epistemic" errors mostly where the members disagree.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402

MARGIN, SMOOTH_MM, MEMBERS = 8.0, 4.0, 5
REGIMES = {"systematic": (1.5, 1.0), "epistemic": (0.5, 2.5)}  # (SHARED, MEMBER)
PLACEMENTS = ("random_slices", "random", "largest", "guided")
NUM_CLASSES, UNANNOTATED = 3, 3  # background, blob, tube; undrawn voxels hold 3


def smooth_field(shape: tuple[int, ...], sigma_voxels: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """White noise blurred per axis (periodic edges, so its variance is the same everywhere), unit std."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma_voxels, mode="wrap")
    return field / field.std()


def simulated_network(reference: np.ndarray, spacing: np.ndarray, shared: float, member: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Return the ensemble's probabilities ``(MEMBERS, C, *spatial)`` of a simulated network (module docstring)."""
    one_hot = (reference[None] == np.arange(NUM_CLASSES).reshape(-1, 1, 1, 1)).astype(np.float64)
    soft = ndimage.gaussian_filter(one_hot, (0, *(1.0 / spacing)))
    field_sigma = (0, *(SMOOTH_MM / spacing))
    common = MARGIN * soft + shared * smooth_field(one_hot.shape, field_sigma, rng)
    members = []
    for _ in range(MEMBERS):
        logits = common + member * smooth_field(one_hot.shape, field_sigma, rng)
        exp = np.exp(logits - logits.max(0, keepdims=True))
        members.append(exp / exp.sum(0, keepdims=True))
    return np.stack(members).astype(np.float32)


def make_pool(num_cases: int, shape: tuple[int, ...], regime: str) -> dict[str, dict]:
    """Generate a synthetic dataset (seed 0) and simulate the network on every case."""
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.uncertainty.measures import class_entropy

    shared, member = REGIMES[regime]
    pool = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "Dataset990_GuidedBench"
        generate_synthetic_dataset(folder, num_cases=num_cases, shape=shape, seed=0)
        reader = SimpleITKIO()
        for index in range(num_cases):
            case = f"case_{index:03d}"
            image, properties = reader.read_images([folder / "imagesTr" / f"{case}_0000.nii.gz"])
            reference = reader.read_seg(folder / "labelsTr" / f"{case}.nii.gz")[0][0].astype(np.int64)
            spacing = np.asarray(properties["spacing"], dtype=float)
            ensemble = simulated_network(reference, spacing, shared, member, np.random.default_rng([0, index]))
            probabilities = ensemble.mean(0)
            pool[case] = {"image": image, "spacing": spacing, "reference": reference,
                          "probabilities": probabilities, "prediction": probabilities.argmax(0),
                          "uncertainty": class_entropy(ensemble)}
    return pool


def mean_foreground_dice(reference: np.ndarray, segmentation: np.ndarray) -> float:
    from nnunetv2.evaluation.metrics import metrics_from_segmentations
    metrics = metrics_from_segmentations(reference, segmentation, list(range(1, NUM_CLASSES)))
    return float(np.nanmean([m["Dice"] for m in metrics.values()]))


def dice_gain(pool: dict[str, dict], scribbles: dict[str, np.ndarray]) -> tuple[float, int]:
    """Return (summed Dice change of the pool's pseudo labels vs the predictions, scribbled voxels)."""
    from nnunetv2.scribble_loop.pseudo_labels import geodesic_pseudo_label

    gain, voxels = 0.0, 0
    for case, drawn in scribbles.items():
        count = int(np.count_nonzero(drawn != UNANNOTATED))
        if count == 0:
            continue  # no scribble: the pseudo label is the prediction
        c = pool[case]
        label, _ = geodesic_pseudo_label(c["image"], c["probabilities"], drawn, c["spacing"], UNANNOTATED,
                                         device="cpu")
        gain += mean_foreground_dice(c["reference"], label) - mean_foreground_dice(c["reference"], c["prediction"])
        voxels += count
    return gain, voxels


def worklist_for(pool: dict[str, dict], budget_entries: int, distance_scale: float):
    """The worklist nnUNetv2_suggest_annotations would write (default threshold and region size)."""
    from nnunetv2.annotation.ranking import build_worklist, find_uncertain_regions
    regions = {case: find_uncertain_regions(c["uncertainty"], spacing=c["spacing"], prediction=c["prediction"])
               for case, c in pool.items()}
    return build_worklist(regions, budget_entries, distance_scale)[0]


def pool_summary(pool: dict[str, dict]) -> str:
    from nnunetv2.uncertainty.score_report import error_detection_auroc
    dice = np.mean([mean_foreground_dice(c["reference"], c["prediction"]) for c in pool.values()])
    wrong = sum(int(np.count_nonzero(c["reference"] != c["prediction"])) for c in pool.values())
    auroc = np.mean([error_detection_auroc(c["uncertainty"], c["prediction"], c["reference"]) for c in pool.values()])
    return f"network mean foreground Dice {dice:.3f}, {wrong} wrong voxels, error-detection AUROC {auroc:.3f}"


def run_regime(regime: str, args: argparse.Namespace) -> None:
    from nnunetv2.annotation.guided_scribbles import simulate_pool_correction_scribbles

    pool = make_pool(args.cases, tuple(args.shape), regime)
    print(f"\nregime '{regime}' (shared {REGIMES[regime][0]}, member {REGIMES[regime][1]}): {args.cases} cases "
          f"{tuple(args.shape)}, {pool_summary(pool)}")
    worklist = worklist_for(pool, 20 * args.cases, args.distance_scale)
    references = {k: c["reference"] for k, c in pool.items()}
    predictions = {k: c["prediction"] for k, c in pool.items()}
    rows = []
    for per_case in args.budgets:
        per_voxel = {}
        for placement in PLACEMENTS:
            gains, voxels = [], []
            for seed in range(args.seeds):
                scribbles = simulate_pool_correction_scribbles(references, predictions, UNANNOTATED,
                                                               per_case * args.cases, placement, worklist, seed=seed)
                gain, count = dice_gain(pool, scribbles)
                gains.append(gain)
                voxels.append(count)
            per_voxel[placement] = 1000 * sum(gains) / max(sum(voxels), 1)
            rows.append([per_case, placement, f"{np.mean(voxels):.0f}", float(np.mean(gains)),
                         f"{per_voxel[placement]:.2f}", f"{per_voxel[placement] / per_voxel['random_slices']:.2f}",
                         f"{per_voxel[placement] / per_voxel['random']:.2f}" if "random" in per_voxel else ""])
    print_table(["voxels/case", "placement", "scribbled", "sum dDice", "dDice/1000 vox", "x random_slices",
                 "x random"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=3, default=[32, 64, 64])
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, 40], help="scribbled voxels per case")
    parser.add_argument("--seeds", type=int, default=3, help="stroke seeds summed per row")
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--distance_scale", type=float, default=5.0, help="the worklist's distance_scale")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    for regime in args.regimes:
        run_regime(regime, args)
    print(f"\n({args.seeds} stroke seeds per row, scribbled = mean voxels per seed; "
          f"{time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
