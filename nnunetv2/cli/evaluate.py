"""nnUNetv2_evaluate_folder and nnUNetv2_evaluate_simple: score predictions against references."""

from __future__ import annotations

import argparse
import os

from nnunetv2.cli.common import run_cli


def _default_num_processes() -> int:
    return min(8, os.cpu_count() or 1)


def _add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gt_folder", help="folder with the reference segmentations")
    parser.add_argument("pred_folder", help="folder with the predicted segmentations")
    parser.add_argument("-o", default=None, help="output json file (default: PRED_FOLDER/summary.json)")
    parser.add_argument(
        "-np", type=int, default=_default_num_processes(), help="processes (default: min(8, CPU count))"
    )
    parser.add_argument(
        "--chill",
        action="store_true",
        help="evaluate only the cases that have a prediction instead of failing on missing ones",
    )


def _report(results: dict, label_names: dict[str, str] | None = None) -> None:
    from nnunetv2.evaluation.evaluate_predictions import mean_dice_lines

    print("\n".join(mean_dice_lines(results, label_names)))


def evaluate_folder_entry() -> None:
    """nnUNetv2_evaluate_folder."""
    parser = argparse.ArgumentParser(
        description="Evaluate predictions with the labels/regions and ignore label "
        "of a dataset.json and the reader-writer of a plans file."
    )
    _add_common_args(parser)
    parser.add_argument("-djfile", required=True, help="dataset.json")
    parser.add_argument("-pfile", required=True, help="plans file (e.g. plans.json of a model folder)")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder_with_plans, label_names_by_key

        _report(
            compute_metrics_on_folder_with_plans(
                args.gt_folder, args.pred_folder, args.djfile, args.pfile, args.o, args.np, chill=args.chill
            ),
            label_names_by_key(args.djfile),
        )

    run_cli(main)


def evaluate_simple_entry() -> None:
    """nnUNetv2_evaluate_simple."""
    parser = argparse.ArgumentParser(description="Evaluate predictions for a list of labels.")
    _add_common_args(parser)
    parser.add_argument("-l", type=int, nargs="+", required=True, help="labels to evaluate")
    parser.add_argument("-il", type=int, default=None, help="ignore label: reference voxels never counted")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder_simple

        _report(
            compute_metrics_on_folder_simple(
                args.gt_folder,
                args.pred_folder,
                args.l,
                output_file=args.o,
                num_processes=args.np,
                ignore_label=args.il,
                chill=args.chill,
            )
        )

    run_cli(main)
