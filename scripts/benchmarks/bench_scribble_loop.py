"""Benchmark the scribble-correction loop on a generated 2D dataset.

A preliminary network is trained on 3 labeled cases; it predicts a pool of unlabeled cases, on which
simulated correction scribbles are drawn (strokes of the true class in the largest error regions);
nnUNetv2_scribble_loop then fine-tunes and regenerates the pseudo labels for a few rounds. Printed per
round: Dice of the pool's predictions and pseudo labels against the pool's references, Dice on a
held-out test set, the fraction of pool voxels scribbled. A control fine-tunes the preliminary network
on the 3 labeled cases alone for as many epochs as all rounds together, to tell the pool's contribution
from that of more training.

The images are the synthetic generator's (blob, thin tube, spots; 96 x 96) with extra noise. By
default the pool and test images show the tube with another contrast than the 3 labeled cases (a new
scanner: ``--tube-shift``), the situation the loop is meant for; ``--tube-shift 0`` draws all cases
from one distribution.

With one torch thread a run is deterministic: the same ``--seed`` gives the same figures; other seeds
(same images; another preliminary model, hence other scribbles, and other training batches) show the
run-to-run spread. The pseudo-label rule and the update between rounds are the library's defaults unless given.

Usage: python scripts/benchmarks/bench_scribble_loop.py [--work /tmp/bench_scribble_loop] [--rounds 3]
    [--epochs 10] [--iterations 25] [--preliminary-epochs 15] [--pool 8] [--test 8] [--noise 0.5]
    [--tube-shift 2] [--budget 0.3] [--seed 0] [--rule network_aware|published] [--threshold T]
    [--intensity-weight W] [--probability-weight W] [--resolved-stroke-agreement A]
    [--unbraked-stroke-probability P] [--support-fraction F] [--supported-threshold T] [--recalibration-sigma S]
    [--recalibration-prior P] [--recalibration-scale F] [--update-min-probability U] [--refresh-every N]
    [--no-control]
The published loop: --rule published --update-min-probability 0.
Targets: pool pseudo-label Dice of round 1 >= preliminary pool prediction Dice + 0.05, never falling in
later rounds; test Dice after the last round above the preliminary model's.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, shrink_planned_network  # noqa: E402

DATASET_ID, DATASET_NAME = 997, "ScribbleLoopBench"
DATASET = f"Dataset{DATASET_ID:03d}_{DATASET_NAME}"
CONFIGURATION = "2d"
FEATURES = [8, 16, 32, 64, 128, 256]  # a small 2D U-Net: CPU-sized, same topology as the plans
RULE_NUMBERS = (
    "threshold",
    "intensity_weight",
    "probability_weight",
    "resolved_stroke_agreement",
    "unbraked_stroke_probability",
    "support_fraction",
    "supported_threshold",
    "recalibration_sigma",
    "recalibration_prior",
    "recalibration_scale",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_scribble_loop"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10, help="epochs per round")
    parser.add_argument("--iterations", type=int, default=25, help="training iterations per epoch")
    parser.add_argument("--preliminary-epochs", type=int, default=15)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=2, default=(96, 96))
    parser.add_argument(
        "--noise",
        type=float,
        default=0.5,
        help="extra Gaussian noise, in units of the body-vs-tube contrast (makes 3 cases too few)",
    )
    parser.add_argument(
        "--tube-shift",
        type=float,
        default=2.0,
        help="domain shift of the pool and test images: added to the tube's intensity, in units of "
        "the body-vs-tube contrast (0: same distribution as the labeled cases)",
    )
    parser.add_argument("--budget", type=float, default=0.3, help="scribbled fraction of the wrong voxels")
    parser.add_argument(
        "--rule", default=None, help="pseudo-label rule: published or network_aware (default: the library's)"
    )
    for name in RULE_NUMBERS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            default=None,
            help="pseudo-label rule parameter (default: the rule's)",
        )
    parser.add_argument(
        "--update-min-probability",
        type=float,
        default=None,
        help="rounds >= 1: a voxel's pseudo label changes only to a class the new network gives at "
        "least this probability (default: the loop's; 0: always renew)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of all network training (preliminary model, loop, control); the data stay the same",
    )
    parser.add_argument(
        "--refresh-every",
        type=int,
        default=None,
        help="also renew the pseudo labels every N epochs within a round (e.g. --rounds 1 --epochs 30 "
        "--refresh-every 10 against the default 3 rounds of 10 epochs)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-control", action="store_true", help="skip the labeled-cases-only control")
    return parser.parse_args()


def prepare_dataset(args: argparse.Namespace, root: Path) -> tuple[list[str], list[str]]:
    """Generate, degrade, plan and preprocess; return (pool cases, test cases) from imagesTs."""
    import SimpleITK as sitk

    from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
    from nnunetv2.experiment_planning.pipeline import plan_and_preprocess

    raw = generate_synthetic_dataset_in_raw(
        DATASET_ID,
        DATASET_NAME,
        overwrite=True,
        num_cases=3,
        num_test_cases=args.pool + args.test,
        shape=tuple(args.shape),
        num_foreground_classes=3,
        seed=0,
    )
    rng = np.random.default_rng(1)
    for image_file in sorted(raw.glob("images*/*.nii.gz")):
        image = sitk.ReadImage(str(image_file))
        array = sitk.GetArrayFromImage(image)
        body = array > 0
        if image_file.parent.name == "imagesTs":  # a new scanner: the tube looks different in the unlabeled images
            label = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTs" / image_file.name.replace("_0000", ""))))
            array = array + 40 * args.tube_shift * (label == 2)
        # the generator's tube (60) and body (100) differ by 40: noise of that size needs context to see through
        array = np.where(body, np.maximum(array + rng.normal(0, 40 * args.noise, array.shape), 1), 0)
        noisy = sitk.GetImageFromArray(array.astype(np.float32))
        noisy.CopyInformation(image)
        sitk.WriteImage(noisy, str(image_file), True)
    plan_and_preprocess([DATASET_ID], configurations=[CONFIGURATION], show_progress=False)
    plans_file = root / "nnUNet_preprocessed" / DATASET / "nnUNetPlans.json"
    shrink_planned_network(plans_file, CONFIGURATION, FEATURES)
    cases = sorted(p.name[: -len("_0000.nii.gz")] for p in (raw / "imagesTs").glob("*_0000.nii.gz"))
    for subset, names in (("pool", cases[: args.pool]), ("test", cases[args.pool :])):
        for name in names:
            (root / subset / "images").mkdir(parents=True, exist_ok=True)
            (root / subset / "labels").mkdir(parents=True, exist_ok=True)
            shutil.copy(raw / "imagesTs" / f"{name}_0000.nii.gz", root / subset / "images")
            shutil.copy(raw / "labelsTs" / f"{name}.nii.gz", root / subset / "labels")
    return cases[: args.pool], cases[args.pool :]


def train_preliminary(args: argparse.Namespace) -> float:
    from nnunetv2.training.run_training import TrainingRequest, build_trainer

    start = time.perf_counter()
    build_trainer(
        TrainingRequest(
            DATASET_ID,
            CONFIGURATION,
            "all",
            num_epochs=args.preliminary_epochs,
            num_iterations_per_epoch=args.iterations,
            num_val_iterations_per_epoch=5,
            seed=args.seed,
        )
    ).run_training()
    return time.perf_counter() - start


def simulate_scribbles(args: argparse.Namespace, root: Path, pool: list[str]) -> None:
    """Predict the pool with the preliminary model and draw correction scribbles where it is wrong."""
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predictor import predict_from_model_folder
    from nnunetv2.scribble_loop.correction_scribbles import simulate_correction_scribbles

    predict_from_model_folder(
        root / "pool" / "images",
        root / "preliminary_pool",
        model_folder(DATASET, "nnUNetTrainer", "nnUNetPlans", CONFIGURATION),
        folds=["all"],
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        show_progress=False,
    )
    io = SimpleITKIO()
    (root / "scribbles").mkdir(exist_ok=True)
    for index, case in enumerate(pool):
        reference, properties = io.read_seg(root / "pool" / "labels" / f"{case}.nii.gz")
        prediction, _ = io.read_seg(root / "preliminary_pool" / f"{case}.nii.gz")
        scribbles = simulate_correction_scribbles(
            reference[0].astype(np.int64),
            prediction[0].astype(np.int64),
            ignore_value=4,
            budget=args.budget,
            min_region_size=5,
            strokes_per_region=1,
            thickness=3,
            seed=index,
        )
        io.write_seg(scribbles, root / "scribbles" / f"{case}.nii.gz", properties)


def run_control(args: argparse.Namespace, root: Path) -> tuple[float, float]:
    """Fine-tune the preliminary network on the labeled cases only, as long as all rounds; return (test Dice, s)."""
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.inference.predictor import predict_from_model_folder
    from nnunetv2.training.checkpointing import load_pretrained_weights
    from nnunetv2.training.run_training import TrainingRequest, build_trainer

    start = time.perf_counter()
    preliminary = model_folder(DATASET, "nnUNetTrainer", "nnUNetPlans", CONFIGURATION)
    # another trainer name gives the control its own model folder
    trainer = build_trainer(
        TrainingRequest(
            DATASET_ID,
            CONFIGURATION,
            "all",
            trainer_name="nnUNetTrainer_1epoch",
            num_epochs=args.epochs * args.rounds,
            num_iterations_per_epoch=args.iterations,
            num_val_iterations_per_epoch=5,
            seed=args.seed + 100,
        )
    )
    trainer.initialize()
    load_pretrained_weights(trainer.unwrapped_network(), preliminary / "fold_all" / "checkpoint_final.pth")
    trainer.run_training()
    predict_from_model_folder(
        root / "test" / "images",
        root / "control_test",
        trainer.output_folder_base,
        folds=["all"],
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        show_progress=False,
    )
    return mean_test_dice(root, root / "control_test"), time.perf_counter() - start


def mean_test_dice(root: Path, predictions: Path) -> float:
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.scribble_loop.loop_metrics import folder_dice

    dataset_json = DatasetJson.load(root / "nnUNet_preprocessed" / DATASET / "dataset.json")
    return folder_dice(root / "test" / "labels", predictions, dataset_json, "SimpleITKIO")["mean"]


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    root = args.work
    if root.exists():
        shutil.rmtree(root)
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / var).mkdir(parents=True)
        os.environ[var] = str(root / var)

    from nnunetv2.scribble_loop.loop import ScribbleLoopRequest, run_scribble_loop

    start = time.perf_counter()
    pool, test = prepare_dataset(args, root)
    preliminary_seconds = train_preliminary(args)
    simulate_scribbles(args, root, pool)
    rule = {name: getattr(args, name) for name in ("rule",) + RULE_NUMBERS if getattr(args, name) is not None}
    loop_start = time.perf_counter()
    rounds = run_scribble_loop(
        ScribbleLoopRequest(
            DATASET_ID,
            CONFIGURATION,
            "all",
            str(root / "pool" / "images"),
            str(root / "scribbles"),
            str(root / "loop"),
            num_rounds=args.rounds,
            epochs_per_round=args.epochs,
            iterations_per_epoch=args.iterations,
            val_iterations_per_epoch=5,
            seed=args.seed,
            pool_reference=str(root / "pool" / "labels"),
            test_images=str(root / "test" / "images"),
            test_reference=str(root / "test" / "labels"),
            show_progress=False,
            pseudo_label_parameters=rule,
            update_min_probability=args.update_min_probability,
            refresh_every=args.refresh_every,
        )
    )
    loop_seconds = time.perf_counter() - loop_start
    control = None if args.no_control else run_control(args, root)

    print(
        f"{len(pool)} pool / {len(test)} test cases {tuple(args.shape)}, noise {args.noise}, tube shift of pool and "
        f"test {args.tube_shift}, preliminary: 3 cases x "
        f"{args.preliminary_epochs} epochs x {args.iterations} iterations ({preliminary_seconds:.0f} s); rounds of "
        f"{args.epochs} epochs; scribble budget {args.budget} of the wrong voxels; rule {rule or 'defaults'}"
    )
    report(rounds, control, args, loop_seconds, time.perf_counter() - start)


def report(
    rounds: list[dict],
    control: tuple[float, float] | None,
    args: argparse.Namespace,
    loop_seconds: float,
    total_seconds: float,
) -> None:
    """Print the per-round table, the control and the targets."""

    def per_label(dice: dict) -> str:
        return "/".join(f"{v:.2f}" for _, v in sorted(dice["per_label"].items()))

    rows = []
    for metrics in rounds:
        pool = metrics["pool"]
        rows.append(
            [
                metrics["round"],
                f"{pool['prediction_dice']['mean']:.4f}",
                f"{pool['pseudo_label_dice']['mean']:.4f}",
                per_label(pool["pseudo_label_dice"]),
                f"{metrics['test']['dice']['mean']:.4f}",
                per_label(metrics["test"]["dice"]),
                f"{100 * pool['scribbled_fraction']:.3f}%",
                f"{metrics.get('training', {}).get('seconds', 0):.0f}",
            ]
        )
    print_table(
        [
            "round",
            "pool prediction Dice",
            "pool pseudo-label Dice",
            "(per label)",
            "test Dice",
            "(per label)",
            "scribbled",
            "training s",
        ],
        rows,
    )
    if control is not None:
        print(
            f"control (labeled cases only, {args.epochs * args.rounds} epochs from the preliminary network): "
            f"test Dice {control[0]:.4f} ({control[1]:.0f} s)"
        )
    preliminary = rounds[0]["pool"]["prediction_dice"]["mean"]
    pseudo = [m["pool"]["pseudo_label_dice"]["mean"] for m in rounds]
    test = [m["test"]["dice"]["mean"] for m in rounds]
    gain = pseudo[1] - preliminary
    never_falls = all(b >= a for a, b in zip(pseudo[1:], pseudo[2:]))
    print(
        f"round-1 pseudo labels vs preliminary prediction: {gain:+.4f} (target >= +0.05: "
        f"{'met' if gain >= 0.05 else 'NOT met'}); after round 1 the pseudo-label Dice "
        f"{'never falls' if never_falls else 'falls'} (target: never falls)"
    )
    print(
        f"test Dice {test[0]:.4f} -> {test[-1]:.4f} (target: higher: {'met' if test[-1] > test[0] else 'NOT met'}); "
        f"loop {loop_seconds:.0f} s, total {total_seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
