"""nnUNetv2_find_best_configuration and nnUNetv2_accumulate_crossval_results, with nnU-Net v2's flags."""

from __future__ import annotations

import argparse

from nnunetv2.cli.common import default_num_processes, run_cli

_DEFAULT_CONFIGURATIONS = ["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"]


def find_best_configuration_entry() -> None:
    """nnUNetv2_find_best_configuration."""
    parser = argparse.ArgumentParser(
        description="Compare the cross-validation results of trained models and "
        "their ensembles, choose postprocessing, and write "
        "inference_instructions.txt."
    )
    parser.add_argument("dataset_name_or_id", help="dataset id or name")
    parser.add_argument("-p", nargs="+", default=["nnUNetPlans"], help="plans identifiers (default nnUNetPlans)")
    parser.add_argument(
        "-c",
        nargs="+",
        default=_DEFAULT_CONFIGURATIONS,
        help=f"configurations (default: {' '.join(_DEFAULT_CONFIGURATIONS)}; those the plans lack are skipped)",
    )
    parser.add_argument("-tr", nargs="+", default=["nnUNetTrainer"], help="trainers (default nnUNetTrainer)")
    parser.add_argument(
        "-np",
        type=int,
        default=default_num_processes(),
        help="processes for ensembling, evaluation and postprocessing (default: min(8, CPU count))",
    )
    parser.add_argument("-f", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="folds (default: 0 1 2 3 4)")
    parser.add_argument("--disable_ensembling", action="store_true", help="do not try ensembles")
    parser.add_argument(
        "--no_overwrite",
        action="store_true",
        help="reuse merged cross-validation results and ensembles from an earlier run",
    )
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.model_selection.find_best_configuration import find_best_configuration, models_from_names

        information = find_best_configuration(
            args.dataset_name_or_id,
            models_from_names(args.tr, args.c, args.p),
            allow_ensembling=not args.disable_ensembling,
            num_processes=args.np,
            overwrite=not args.no_overwrite,
            folds=args.f,
        )
        print(f"wrote {information['instructions_file']} and {information['information_file']}")

    run_cli(main)


def accumulate_crossval_results_entry() -> None:
    """nnUNetv2_accumulate_crossval_results."""
    parser = argparse.ArgumentParser(
        description="Copy the validation predictions of all folds of a model into "
        "one folder and evaluate them together."
    )
    parser.add_argument("dataset_name_or_id", help="dataset id or name")
    parser.add_argument("-c", required=True, help="configuration")
    parser.add_argument(
        "-o",
        default=None,
        help="output folder (default: crossval_results_folds_XXX in the model folder); must be empty",
    )
    parser.add_argument("-f", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="folds (default: 0 1 2 3 4)")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer (default nnUNetTrainer)")
    parser.add_argument(
        "-np",
        type=int,
        default=default_num_processes(),
        help="processes for the evaluation (default: min(8, CPU count))",
    )
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.model_selection.accumulate_cv_results import accumulate_crossval_results_for_model

        folder = accumulate_crossval_results_for_model(
            args.dataset_name_or_id, args.c, args.tr, args.p, args.f, args.o, args.np
        )
        print(f"wrote {folder}/summary.json")

    run_cli(main)
