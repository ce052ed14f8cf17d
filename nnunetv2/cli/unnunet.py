"""UnnUnet_predict_from_folder and UnnUnet_run_uncertainty_on_fold with UnnUNet's flags."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nnunetv2.cli.common import run_cli

RULE_NAMES = ("sparse", "late", "both")  # nnunetv2.uncertainty.unnunet_compat.RULES
SCORE_TYPE_NAMES = ("class_entropy", "total_entropy", "t_test")  # unnunet_compat.SCORE_TYPES


def _rule(value: str) -> str:
    # UnnUNet's README spells the rule 'spars'
    return "sparse" if value == "spars" else value


def build_predict_from_folder_parser() -> argparse.ArgumentParser:
    """Return the argument parser of UnnUnet_predict_from_folder."""
    parser = argparse.ArgumentParser(
        description="UnnUNet's command: predict a folder with every ensemble checkpoint of one fold; "
        "OUT gets one folder per checkpoint (CASE.npz probabilities). Same work as nnUNetv2_predict_checkpoints."
    )
    parser.add_argument("-dataset", required=True, help="dataset name or id")
    parser.add_argument("-fold", required=True, help="the fold whose checkpoints predict")
    parser.add_argument("-input_folder", required=True, help="folder with the images to predict (CASE_0000.ending)")
    parser.add_argument("-output_folder", required=True, help="output folder: one folder per checkpoint")
    parser.add_argument(
        "-rule",
        type=_rule,
        default="both",
        choices=RULE_NAMES,
        help="sparse or late (must match the training's -checkpoints), or both: every ensemble checkpoint (default)",
    )
    parser.add_argument("-c", default="2d", help="configuration (default 2d, as UnnUNet)")
    parser.add_argument(
        "-tr", default=None, help="trainer (default: nnUNetTrainerCyclicLR, else nnUNetTrainer, whichever has one)"
    )
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument(
        "-device", default=None, choices=["cuda", "cpu", "mps"], help="device (default: cuda when available, else cpu)"
    )
    parser.add_argument("--disable_progress_bar", action="store_true", help="no progress bar")
    return parser


def predict_from_folder_entry(argv: Sequence[str] | None = None) -> None:
    """UnnUnet_predict_from_folder."""
    args = build_predict_from_folder_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.uncertainty.unnunet_compat import predict_from_folder

        index = predict_from_folder(
            args.dataset,
            args.fold,
            args.input_folder,
            args.output_folder,
            args.rule,
            configuration=args.c,
            trainer_name=args.tr,
            plans_identifier=args.p,
            device=args.device,
            show_progress=not args.disable_progress_bar,
        )
        print(f"wrote one folder per checkpoint into {args.output_folder} (listed in {index.name})")

    run_cli(main)


def build_run_uncertainty_on_fold_parser() -> argparse.ArgumentParser:
    """Return the argument parser of UnnUnet_run_uncertainty_on_fold."""
    parser = argparse.ArgumentParser(
        description="UnnUNet's command: segmentation, uncertainty map and score per case from the "
        "checkpoint folders of UnnUnet_predict_from_folder (nnUNetv2_uncertainty with -case_score edge_ring)."
    )
    parser.add_argument("--proba_dir", required=True, help="output folder of UnnUnet_predict_from_folder")
    parser.add_argument("--raw_path", required=True, help="the images that were predicted (its input folder)")
    parser.add_argument(
        "--labels", default=None, help="optional: folder of reference segmentations; adds each case's Dice"
    )
    parser.add_argument(
        "--score_type",
        default="class_entropy",
        choices=SCORE_TYPE_NAMES,
        help="uncertainty map: class_entropy (default), total_entropy or t_test (p-values)",
    )
    parser.add_argument(
        "--outpot_pred_path",
        "--output_pred_path",
        dest="output_pred_path",
        default=None,
        help="output folder (default PROBA_DIR/unnunet_pred); both spellings are accepted",
    )
    parser.add_argument("-np", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--disable_progress_bar", action="store_true", help="no progress bar")
    return parser


def run_uncertainty_on_fold_entry(argv: Sequence[str] | None = None) -> None:
    """UnnUnet_run_uncertainty_on_fold."""
    args = build_run_uncertainty_on_fold_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.uncertainty.unnunet_compat import run_uncertainty_on_fold

        report = run_uncertainty_on_fold(
            args.proba_dir,
            args.raw_path,
            args.score_type,
            args.labels,
            args.output_pred_path,
            num_processes=args.np,
            show_progress=not args.disable_progress_bar,
        )
        print(f"{len(report['cases'])} case(s), mean edge-ring {args.score_type} score {report['mean_score']:.4f}")

    run_cli(main)
