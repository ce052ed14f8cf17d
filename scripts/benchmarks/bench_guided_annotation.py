"""Benchmark: where to put correction scribbles - at random, or where the uncertainty worklist says.

Usage: python scripts/benchmarks/bench_guided_annotation.py [--work DIR] [--reuse] [--data-seed 0]
            [--train 4] [--pool 16] [--shape 96 96] [--noise 0.5] [--epochs 18] [--cycles 3]
            [--iterations 25] [--budgets 20 40] [--seeds 5] [--distance_scale 5]
            [--window_radius R] [--exclusion_radius R]
       python scripts/benchmarks/bench_guided_annotation.py --network simulated [--regimes ...]

Same pool, same voxel budget, the same strokes (the scribble loop's correction strokes: a curve 3
voxels wide through a wrong piece, reference class), four ways to decide where they go:
- random_slices: a person without guidance opens random slices of random cases and corrects the
                 largest wrong piece they see in each;
- random:        error regions (connected wrong voxels of one class) in random order, the budget
                 shared evenly over the cases: the scribble loop's simulated person, who knows where
                 every error is (region_order="random");
- largest:       the same, largest error region first;
- guided:        the worklist of nnUNetv2_suggest_annotations (from the uncertainty maps and the
                 ensemble segmentation only, no reference; default settings, up to 100 entries per
                 case), entries by decreasing score; inside each entry's box the person corrects the
                 largest wrong piece; boxes without errors cost nothing.
Error regions under 10 voxels get no stroke in all four. Each case's scribbles are grown into a
pseudo label by geodesic_pseudo_label (default rule) from the image and the ensemble's mean
probabilities. Reported per placement: the pool's summed change of mean foreground Dice (pseudo label
vs the ensemble segmentation) per 1000 scribbled voxels, per stroke seed and summed over the seeds,
and its ratio to random_slices and random.

--network trained (default): a generated 2D dataset (blob, thin tube, spots; extra noise as in
bench_scribble_loop), a small 2D U-Net trained briefly with nnUNetTrainerCyclicLR on --train cases,
the pool (imagesTs) predicted with every ensemble checkpoint (nnUNetv2_predict_checkpoints), then
nnUNetv2_uncertainty (class entropy) and nnUNetv2_suggest_annotations, all through their library
functions. --network simulated: the earlier simulated ensemble (reference logits blurred + shared and
per-member smooth random fields) in two regimes, for comparison.
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
from common import print_table, shrink_planned_network  # noqa: E402

DATASET_ID, DATASET_NAME = 991, "GuidedAnnotationBench"
DATASET = f"Dataset{DATASET_ID:03d}_{DATASET_NAME}"
FEATURES = [8, 16, 32, 64, 128, 256]  # a CPU-sized 2D U-Net with the plans' topology
PLACEMENTS = ("random_slices", "random", "largest", "guided")
WORKLIST_ENTRIES_PER_CASE = 100  # long enough that the voxel budget, not the list, ends the guided person's work
SIM_MARGIN, SIM_SMOOTH_MM, SIM_MEMBERS = 8.0, 4.0, 5
REGIMES = {"systematic": (1.5, 1.0), "epistemic": (0.5, 2.5)}  # simulated network: (shared, member) field std


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", choices=["trained", "simulated"], default="trained")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_guided_annotation"))
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the trained model and uncertainty of an earlier run in --work"
    )
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the generated dataset")
    parser.add_argument("--train", type=int, default=4, help="labeled training cases")
    parser.add_argument("--pool", type=int, default=16, help="pool cases to scribble on")
    parser.add_argument("--shape", type=int, nargs="+", default=[96, 96])
    parser.add_argument("--noise", type=float, default=0.5, help="extra noise in units of the body-tube contrast")
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, 40], help="scribbled voxels per case")
    parser.add_argument("--seeds", type=int, default=5, help="stroke seeds per row")
    parser.add_argument("--distance_scale", type=float, default=5.0, help="the worklist's distance_scale")
    parser.add_argument(
        "--window_radius",
        type=float,
        default=None,
        help="the worklist's window_radius (trained network; default: the library's)",
    )
    parser.add_argument(
        "--exclusion_radius",
        type=float,
        default=None,
        help="the worklist's exclusion_radius (trained network; default: the library's)",
    )
    parser.add_argument(
        "--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES), help="simulated network only"
    )
    return parser.parse_args()


def trained_pool(args: argparse.Namespace) -> tuple[dict[str, dict], Path, str]:
    """Train, predict the pool with the checkpoint ensemble, compute uncertainty; return (pool, uncertainty folder,
    description)."""
    from nnunetv2.ensembling.ensemble import load_probabilities
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.uncertainty.checkpoint_prediction import RUN_INDEX_FILE
    from nnunetv2.utilities.file_io import load_json

    root = args.work
    if not (args.reuse and (root / "uncertainty" / "uncertainty_scores.json").is_file()):
        train_and_predict(args, root)
    description = (root / "description.txt").read_text()
    raw = root / "nnUNet_raw" / DATASET
    members = [m["folder"] for m in load_json(root / "checkpoints" / RUN_INDEX_FILE)["members"]]
    io = SimpleITKIO()
    pool = {}
    for image_file in sorted((raw / "imagesTs").glob("*_0000.nii.gz")):
        case = image_file.name[: -len("_0000.nii.gz")]
        image, properties = io.read_images([image_file])
        probabilities = np.mean([load_probabilities(root / "checkpoints" / m / f"{case}.npz") for m in members], 0)
        pool[case] = {
            "image": image,
            "spacing": np.asarray(properties["spacing"], dtype=float),
            "reference": io.read_seg(raw / "labelsTs" / f"{case}.nii.gz")[0][0].astype(np.int64),
            "prediction": io.read_seg(root / "uncertainty" / f"{case}.nii.gz")[0][0].astype(np.int64),
            "probabilities": probabilities,
        }
        pool[case]["uncertainty"] = (
            io.read_seg(root / "uncertainty" / "uncertainty_maps" / f"{case}.nii.gz")[0][0] / 1000.0
        )
    return pool, root / "uncertainty", description


def train_and_predict(args: argparse.Namespace, root: Path) -> None:
    """Generate and preprocess the dataset, train the cyclic-LR model, predict the pool and its uncertainty."""
    import SimpleITK as sitk

    from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
    from nnunetv2.training.run_training import TrainingRequest, run_training
    from nnunetv2.uncertainty.checkpoint_prediction import predict_checkpoint_ensemble
    from nnunetv2.uncertainty.ensemble_uncertainty import compute_uncertainty

    if root.exists():
        shutil.rmtree(root)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir(parents=True)
    start = time.perf_counter()
    raw = generate_synthetic_dataset_in_raw(
        DATASET_ID,
        DATASET_NAME,
        overwrite=True,
        num_cases=args.train,
        num_test_cases=args.pool,
        shape=tuple(args.shape),
        num_foreground_classes=3,
        seed=args.data_seed,
    )
    rng = np.random.default_rng([args.data_seed, 1])
    for image_file in sorted(raw.glob("images*/*.nii.gz")):
        image = sitk.ReadImage(str(image_file))
        array = sitk.GetArrayFromImage(image)
        # the generator's tube (60) and body (100) differ by 40: noise of that size needs context to see through
        array = np.where(array > 0, np.maximum(array + rng.normal(0, 40 * args.noise, array.shape), 1), 0)
        noisy = sitk.GetImageFromArray(array.astype(np.float32))
        noisy.CopyInformation(image)
        sitk.WriteImage(noisy, str(image_file), True)
    configuration = "2d" if len(args.shape) == 2 else "3d_fullres"
    plan_and_preprocess(
        [DATASET_ID], [configuration], num_processes=1, num_processes_fingerprint=1, show_progress=False
    )
    plans_file = root / "nnUNet_preprocessed" / DATASET / "nnUNetPlans.json"
    shrink_planned_network(plans_file, configuration, FEATURES)
    fold_folder = run_training(
        TrainingRequest(
            DATASET_ID,
            configuration,
            "all",
            trainer_name="nnUNetTrainerCyclicLR",
            num_epochs=args.epochs,
            num_of_cycles=args.cycles,
            num_iterations_per_epoch=args.iterations,
            num_val_iterations_per_epoch=5,
            seed=0,
            device="cpu",
            num_data_workers=0,
            overwrite=True,  # a benchmark retrains on purpose
        )
    )
    trained = time.perf_counter() - start
    predict_checkpoint_ensemble(
        raw / "imagesTs",
        root / "checkpoints",
        fold_folder.parent,
        device="cpu",
        num_processes_preprocessing=1,
        show_progress=False,
    )
    compute_uncertainty(root / "checkpoints", root / "uncertainty", show_progress=False)
    members = len(json.loads((fold_folder / "checkpoint_ensemble.json").read_text())["checkpoints"])
    (root / "description.txt").write_text(
        f"trained network: {args.train} training cases {tuple(args.shape)} (data seed {args.data_seed}, noise "
        f"{args.noise}), nnUNetTrainerCyclicLR {args.epochs} epochs x {args.iterations} iterations, {args.cycles} "
        f"cycles -> {members} checkpoints (generate + train {trained:.0f} s, total "
        f"{time.perf_counter() - start:.0f} s); pool of {args.pool} cases"
    )


def simulated_network(
    reference: np.ndarray, spacing: np.ndarray, shared: float, member: float, rng: np.random.Generator
) -> np.ndarray:
    """Return a simulated ensemble's probabilities ``(members, 3, *spatial)``: logits = SIM_MARGIN x the blurred
    reference one-hot + a smooth field shared by the members (std ``shared``) + one per member (std ``member``)."""
    from scipy import ndimage

    one_hot = (reference[None] == np.arange(3).reshape(-1, 1, 1, 1)).astype(np.float64)
    sigma = (0, *(SIM_SMOOTH_MM / spacing))

    def field() -> np.ndarray:  # white noise blurred with periodic edges (same variance everywhere), unit std
        noise = ndimage.gaussian_filter(rng.normal(size=one_hot.shape), sigma, mode="wrap")
        return noise / noise.std()

    common = SIM_MARGIN * ndimage.gaussian_filter(one_hot, (0, *(1.0 / spacing))) + shared * field()
    members = []
    for _ in range(SIM_MEMBERS):
        logits = common + member * field()
        exp = np.exp(logits - logits.max(0, keepdims=True))
        members.append(exp / exp.sum(0, keepdims=True))
    return np.stack(members).astype(np.float32)


def simulated_pool(args: argparse.Namespace, regime: str) -> tuple[dict[str, dict], str]:
    """Generate the dataset and simulate the ensemble on every case."""
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.uncertainty.measures import class_entropy

    shared, member = REGIMES[regime]
    folder = args.work / "simulated" / "Dataset990_GuidedBench"
    shape = tuple(args.shape) if len(args.shape) == 3 else (32, 64, 64)
    generate_synthetic_dataset(folder, num_cases=args.pool, shape=shape, seed=args.data_seed, overwrite=True)
    reader, pool = SimpleITKIO(), {}
    for index in range(args.pool):
        case = f"case_{index:03d}"
        image, properties = reader.read_images([folder / "imagesTr" / f"{case}_0000.nii.gz"])
        reference = reader.read_seg(folder / "labelsTr" / f"{case}.nii.gz")[0][0].astype(np.int64)
        spacing = np.asarray(properties["spacing"], dtype=float)
        ensemble = simulated_network(reference, spacing, shared, member, np.random.default_rng([args.data_seed, index]))
        probabilities = ensemble.mean(0)
        pool[case] = {
            "image": image,
            "spacing": spacing,
            "reference": reference,
            "probabilities": probabilities,
            "prediction": probabilities.argmax(0),
            "uncertainty": class_entropy(ensemble),
        }
    return pool, f"simulated network, regime '{regime}' (shared {shared}, member {member}): {args.pool} cases {shape}"


def simulated_worklist(pool: dict[str, dict], budget_entries: int, distance_scale: float):
    """The worklist nnUNetv2_suggest_annotations would write for the simulated maps (default settings)."""
    from nnunetv2.annotation.ranking import build_worklist, find_uncertain_regions

    regions = {
        case: find_uncertain_regions(c["uncertainty"], spacing=c["spacing"], prediction=c["prediction"])
        for case, c in pool.items()
    }
    return build_worklist(regions, budget_entries, distance_scale)[0]


def mean_foreground_dice(reference: np.ndarray, segmentation: np.ndarray, num_classes: int) -> float:
    from nnunetv2.evaluation.metrics import metrics_from_segmentations

    metrics = metrics_from_segmentations(reference, segmentation, list(range(1, num_classes)))
    return float(np.nanmean([m["Dice"] for m in metrics.values()]))


def dice_gain(pool: dict[str, dict], scribbles: dict[str, np.ndarray], unannotated: int) -> tuple[float, int]:
    """Return (summed Dice change of the pool's pseudo labels vs the predictions, scribbled voxels)."""
    from nnunetv2.scribble_loop.pseudo_labels import geodesic_pseudo_label

    gain, voxels = 0.0, 0
    for case, drawn in scribbles.items():
        count = int(np.count_nonzero(drawn != unannotated))
        if count == 0:
            continue  # no scribble: the pseudo label is the prediction
        c = pool[case]
        label, _ = geodesic_pseudo_label(c["image"], c["probabilities"], drawn, c["spacing"], unannotated, device="cpu")
        label = label.reshape(c["reference"].shape)
        gain += mean_foreground_dice(c["reference"], label, unannotated) - mean_foreground_dice(
            c["reference"], c["prediction"], unannotated
        )
        voxels += count
    return gain, voxels


def pool_summary(pool: dict[str, dict], num_classes: int) -> str:
    from nnunetv2.uncertainty.score_report import error_detection_auroc

    dice = np.mean([mean_foreground_dice(c["reference"], c["prediction"], num_classes) for c in pool.values()])
    wrong = sum(int(np.count_nonzero(c["reference"] != c["prediction"])) for c in pool.values())
    u = np.concatenate([c["uncertainty"].ravel() for c in pool.values()])
    p = np.concatenate([c["prediction"].ravel() for c in pool.values()])
    r = np.concatenate([c["reference"].ravel() for c in pool.values()])
    return (
        f"ensemble mean foreground Dice {dice:.3f}, {wrong} wrong voxels, error-detection AUROC of the map "
        f"{error_detection_auroc(u, p, r):.3f}"
    )


def compare_placements(pool: dict[str, dict], worklist, args: argparse.Namespace) -> None:
    """Print the table of every placement and budget (module docstring)."""
    from nnunetv2.annotation.guided_scribbles import simulate_pool_correction_scribbles

    num_classes = next(iter(pool.values()))["probabilities"].shape[0]
    unannotated = num_classes
    references = {k: c["reference"] for k, c in pool.items()}
    predictions = {k: c["prediction"] for k, c in pool.items()}
    print(pool_summary(pool, num_classes))
    rows = []
    for per_case in args.budgets:
        per_voxel = {}
        for placement in PLACEMENTS:
            gains, voxels = [], []
            for seed in range(args.seeds):
                scribbles = simulate_pool_correction_scribbles(
                    references, predictions, unannotated, per_case * len(pool), placement, worklist, seed=seed
                )
                gain, count = dice_gain(pool, scribbles, unannotated)
                gains.append(gain)
                voxels.append(count)
            per_voxel[placement] = 1000 * sum(gains) / max(sum(voxels), 1)
            per_seed = " ".join(f"{1000 * g / max(v, 1):.1f}" for g, v in zip(gains, voxels))
            rows.append(
                [
                    per_case,
                    placement,
                    f"{np.mean(voxels):.0f}",
                    float(np.mean(gains)),
                    per_seed,
                    f"{per_voxel[placement]:.2f}",
                    f"{per_voxel[placement] / per_voxel['random_slices']:.3f}",
                    f"{per_voxel[placement] / per_voxel['random']:.3f}" if "random" in per_voxel else "",
                ]
            )
    print_table(
        [
            "voxels/case",
            "placement",
            "scribbled",
            "sum dDice",
            "per seed",
            "dDice/1000 vox",
            "x random_slices",
            "x random",
        ],
        rows,
    )


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("nnUNet_n_proc_DA", "0")
    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    start = time.perf_counter()
    if args.network == "simulated":
        for regime in args.regimes:
            pool, description = simulated_pool(args, regime)
            print(f"\n{description}")
            worklist = simulated_worklist(pool, WORKLIST_ENTRIES_PER_CASE * len(pool), args.distance_scale)
            compare_placements(pool, worklist, args)
    else:
        for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            os.environ[name] = str(args.work / name)
        from nnunetv2.annotation.suggest import suggest_annotations

        pool, uncertainty_folder, description = trained_pool(args)
        print(f"\n{description}")
        worklist = suggest_annotations(
            uncertainty_folder,
            args.work / "worklist",
            budget=WORKLIST_ENTRIES_PER_CASE * len(pool),
            distance_scale=args.distance_scale,
            progress=False,
            **{
                name: getattr(args, name)
                for name in ("window_radius", "exclusion_radius")
                if getattr(args, name) is not None
            },
        )
        compare_placements(pool, worklist, args)
    print(
        f"\n({args.seeds} stroke seeds per row, scribbled = mean voxels per seed; per seed = dDice/1000 vox; "
        f"{time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
