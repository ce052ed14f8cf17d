"""nnUNetv2_apply_postprocessing and nnUNetv2_determine_postprocessing, with nnU-Net v2's flags."""

from __future__ import annotations

import argparse

from nnunetv2.cli.common import default_num_processes, run_cli


def _add_plans_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-plans_json", default=None, help="plans file (default: plans.json in the input folder)")
    parser.add_argument("-dataset_json", default=None, help="dataset.json (default: dataset.json in the input folder)")
    parser.add_argument("-np", type=int, default=default_num_processes(), help="processes (default: min(8, CPU count))")


def apply_postprocessing_entry() -> None:
    """nnUNetv2_apply_postprocessing."""
    parser = argparse.ArgumentParser(
        description="Apply the postprocessing chosen by nnUNetv2_find_best_configuration to a folder of predictions."
    )
    parser.add_argument("-i", required=True, help="input folder with predicted segmentations")
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument(
        "-pp_pkl_file",
        required=True,
        help="postprocessing.json (or nnU-Net v2's postprocessing.pkl), as named in inference_instructions.txt",
    )
    _add_plans_args(parser)
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.postprocessing.determine import apply_postprocessing_file_to_folder

        written = apply_postprocessing_file_to_folder(
            args.i, args.o, args.pp_pkl_file, args.plans_json, args.dataset_json, args.np
        )
        print(f"wrote {len(written)} postprocessed segmentation(s) to {args.o}")

    run_cli(main)


def determine_postprocessing_entry() -> None:
    """nnUNetv2_determine_postprocessing."""
    parser = argparse.ArgumentParser(
        description="Decide which connected-component postprocessing raises the "
        "Dice of a folder of predictions; writes postprocessing.json "
        "into it."
    )
    parser.add_argument("-i", required=True, help="folder with predictions (e.g. crossval_results_folds_0_1_2_3_4)")
    parser.add_argument("-ref", required=True, help="folder with the reference segmentations")
    _add_plans_args(parser)
    parser.add_argument(
        "--remove_postprocessed",
        action="store_true",
        help="do not keep the postprocessed segmentations (INPUT/postprocessed)",
    )
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.postprocessing.determine import determine_postprocessing

        result = determine_postprocessing(
            args.i,
            args.ref,
            args.plans_json,
            args.dataset_json,
            args.np,
            keep_postprocessed_files=not args.remove_postprocessed,
        )
        print(
            f"{len(result.operations)} postprocessing step(s) kept; foreground mean Dice "
            f"{result.dice_before:.5f} -> {result.dice_after:.5f}; wrote {result.postprocessing_file}"
        )

    run_cli(main)
