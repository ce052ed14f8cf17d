"""nnUNetv2_predict_checkpoints and nnUNetv2_uncertainty: checkpoint-ensemble prediction and uncertainty."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nnunetv2.cli.common import run_cli

# uncertainty.measures.MEASURES (the CLI does not import the library at parse time)
MEASURE_NAMES = (
    "class_entropy",
    "total_entropy",
    "t_test",
    "t_test_p_value",
    "mutual_information",
    "margin",
    "class_entropy_regional",
)
CASE_SCORE_NAMES = ("foreground_mean", "edge_ring")  # nnunetv2.uncertainty.measures.CASE_SCORES


def build_predict_checkpoints_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_predict_checkpoints."""
    parser = argparse.ArgumentParser(
        description="Predict images with every checkpoint of a checkpoint ensemble (fold_N/checkpoint_ensemble.json, "
        "written by -tr nnUNetTrainerCyclicLR) and store each checkpoint's probabilities."
    )
    parser.add_argument("-i", required=True, help="input folder: files named CASE_XXXX.<ending> (XXXX = channel)")
    parser.add_argument("-o", required=True, help="output folder (OUT/checkpoints/fold_N/<checkpoint>/CASE.npz)")
    parser.add_argument("-d", default=None, help="dataset id or name (or give the model folder with -m)")
    parser.add_argument("-c", default=None, help="configuration, e.g. 3d_fullres")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-tr", default="nnUNetTrainerCyclicLR", help="trainer name (default nnUNetTrainerCyclicLR)")
    parser.add_argument("-m", default=None, help="model folder (instead of -d/-c/-p/-tr)")
    parser.add_argument(
        "-f",
        nargs="+",
        default=None,
        help="folds to use, e.g. 0 1 2 or all (default: every fold with a checkpoint ensemble)",
    )
    parser.add_argument(
        "-chk",
        nargs="+",
        default=None,
        help="checkpoint file names to use in every fold instead of the ensemble index, e.g. "
        "checkpoint_final.pth checkpoint_best.pth",
    )
    parser.add_argument("-step_size", type=float, default=0.5, help="tile step as a fraction of the patch (0.5)")
    parser.add_argument(
        "--disable_tta",
        action="store_true",
        help="no mirroring at test time: each checkpoint then costs one network pass per tile instead of up to 8 "
        "(3D; 4 in 2D), the largest saving for an ensemble",
    )
    parser.add_argument(
        "-temperature",
        type=float,
        default=1.0,
        help="softmax temperature: logits are divided by it (default 1; > 1 softens)",
    )
    parser.add_argument("-npp", type=int, default=3, help="processes for preprocessing (default 3)")
    parser.add_argument("-prev_stage_predictions", default=None, help="previous stage's predictions (cascade only)")
    parser.add_argument(
        "-device", default=None, choices=["cuda", "cpu", "mps"], help="device (default: cuda when available, else cpu)"
    )
    parser.add_argument(
        "--continue_prediction", action="store_true", help="keep the checkpoint/case probabilities already written"
    )
    parser.add_argument("--disable_progress_bar", action="store_true", help="no progress bar")
    return parser


def predict_checkpoints_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_predict_checkpoints."""
    parser = build_predict_checkpoints_parser()
    args = parser.parse_args(argv)
    if args.m is None and (args.d is None or args.c is None):
        parser.error("give the model folder with -m, or the dataset and configuration with -d and -c")

    def main() -> None:
        kwargs = dict(
            folds=args.f,
            checkpoint_names=args.chk,
            step_size=args.step_size,
            use_mirroring=not args.disable_tta,
            temperature=args.temperature,
            device=args.device,
            overwrite=not args.continue_prediction,
            num_processes_preprocessing=args.npp,
            folder_with_segs_from_prev_stage=args.prev_stage_predictions,
            show_progress=not args.disable_progress_bar,
        )
        if args.m is not None:
            from nnunetv2.uncertainty.checkpoint_prediction import predict_checkpoint_ensemble

            index = predict_checkpoint_ensemble(args.i, args.o, args.m, **kwargs)
        else:
            from nnunetv2.uncertainty.checkpoint_prediction import predict_checkpoint_ensemble_from_dataset_id

            index = predict_checkpoint_ensemble_from_dataset_id(
                args.i, args.o, args.d, args.c, args.tr, args.p, **kwargs
            )
        print(f"wrote the checkpoint predictions listed in {index}")

    run_cli(main)


def build_uncertainty_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_uncertainty."""
    parser = argparse.ArgumentParser(
        description="Ensemble segmentation, uncertainty maps and per-case uncertainty scores from the output "
        "of nnUNetv2_predict_checkpoints."
    )
    parser.add_argument("-i", required=True, help="output folder of nnUNetv2_predict_checkpoints")
    parser.add_argument("-o", required=True, help="output folder: segmentations, uncertainty_maps/, score table")
    parser.add_argument(
        "-measure",
        default="class_entropy",
        choices=MEASURE_NAMES,
        help="voxel uncertainty used for maps, scores and fold selection (default class_entropy); "
        "t_test marks voxels with p >= 0.05, t_test_p_value keeps the p-values (UnnUNet's map), "
        "mutual_information is the checkpoints' disagreement alone, margin is 1 - (p1 - p2), "
        "class_entropy_regional adds half the entropy blurred over 8 voxels",
    )
    parser.add_argument(
        "-case_score",
        default="foreground_mean",
        choices=CASE_SCORE_NAMES,
        help="per-case score: the map's mean over the predicted foreground and -border voxels around it "
        "(foreground_mean, default), or UnnUNet's 100 x sum of the map / voxels of the ring just outside "
        "the foreground (edge_ring)",
    )
    parser.add_argument(
        "--select_fold",
        action="store_true",
        help="per case, keep the fold whose checkpoint ensemble has the lowest score "
        "(default: all checkpoints of all folds form one ensemble)",
    )
    parser.add_argument(
        "-border",
        type=int,
        default=2,
        help="the score averages the predicted foreground and this many voxels around it (2)",
    )
    parser.add_argument(
        "--labels",
        default=None,
        help="folder of reference segmentations: adds each case's Dice, the Spearman "
        "correlation and dice_vs_uncertainty.png",
    )
    parser.add_argument("-np", type=int, default=1, help="processes (default 1; each holds one case)")
    parser.add_argument("--disable_progress_bar", action="store_true", help="no progress bar")
    return parser


def uncertainty_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_uncertainty."""
    args = build_uncertainty_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.uncertainty.ensemble_uncertainty import compute_uncertainty

        report = compute_uncertainty(
            args.i,
            args.o,
            args.measure,
            args.select_fold,
            args.border,
            args.labels,
            args.np,
            show_progress=not args.disable_progress_bar,
            score_definition=args.case_score,
        )
        print(
            f"{len(report['cases'])} case(s), mean {args.measure} score {report['mean_score']:.4f} "
            f"({args.case_score}); table in {args.o}/uncertainty_scores.csv"
        )
        spearman = report.get("spearman_dice_vs_score")
        if spearman is not None:
            print(
                f"Spearman rho (Dice vs score) = {spearman['rho']:.3f}, p = {spearman['p_value']:.3g}, "
                f"n = {spearman['num_cases']} case(s)"
            )

    run_cli(main)
