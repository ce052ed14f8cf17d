"""nnUNetv2_plan_and_preprocess and its three parts, with nnU-Net v2's flags."""

from __future__ import annotations

import argparse
import logging

from nnunetv2.cli.common import run_cli

# nnU-Net v2's -fpe default; ours is the only extractor
FINGERPRINT_EXTRACTOR = "DatasetFingerprintExtractor"


def _add_dataset_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-d", nargs="+", required=True, metavar="DATASET", help="dataset ids or names (DatasetXXX_Name)"
    )


def _add_fingerprint_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-npfp", type=int, default=None, help="processes for fingerprint extraction (default: from the machine)"
    )
    parser.add_argument(
        "--verify_dataset_integrity",
        action="store_true",
        help="check the raw dataset first (recommended for a new dataset)",
    )
    parser.add_argument("--clean", action="store_true", help="recompute an existing fingerprint")
    parser.add_argument(
        "-fpe",
        default=FINGERPRINT_EXTRACTOR,
        help=f"fingerprint extractor class (nnU-Net v2's flag; only {FINGERPRINT_EXTRACTOR} exists)",
    )


def _add_planning_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-pl", default="ExperimentPlanner", help="planner class name (or module:Class); default ExperimentPlanner"
    )
    parser.add_argument(
        "-gpu_memory_target", type=float, default=None, help="GPU memory in GB the plans may use (default 8)"
    )
    parser.add_argument("-preprocessor_name", default="DefaultPreprocessor")
    parser.add_argument("-overwrite_plans_name", default=None, help="name of the plans file (default nnUNetPlans)")
    parser.add_argument(
        "-overwrite_target_spacing",
        nargs=3,
        type=float,
        default=None,
        metavar="SPACING",
        help="3d_fullres target spacing, three numbers in the image's axis order (3d_lowres and 2d follow "
        "from it); use a new -overwrite_plans_name so the default plans stay",
    )


def _add_preprocessing_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        nargs="+",
        default=["2d", "3d_fullres", "3d_lowres"],
        help="configurations to preprocess (default: 2d 3d_fullres 3d_lowres)",
    )
    parser.add_argument(
        "-np", nargs="+", type=int, default=None, help="processes per configuration, one number or one per -c entry"
    )
    _add_output_args(parser)


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "--no_pbar", action="store_true", dest="quiet", help="no progress bars")
    parser.add_argument("--verbose", action="store_true", help="more output (debug messages)")


def _check_fpe(args: argparse.Namespace) -> None:
    from nnunetv2.exceptions import NnUNetError

    if args.fpe != FINGERPRINT_EXTRACTOR:
        raise NnUNetError(f"-fpe {args.fpe}: unknown fingerprint extractor (only {FINGERPRINT_EXTRACTOR} exists)")


def _apply_verbose(args: argparse.Namespace) -> None:
    if getattr(args, "verbose", False):
        logging.getLogger("nnunetv2").setLevel(logging.DEBUG)


def _num_processes(values: list[int] | None):
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def plan_and_preprocess_entry() -> None:
    """nnUNetv2_plan_and_preprocess."""
    parser = argparse.ArgumentParser(description="Fingerprint, plan and preprocess datasets.")
    _add_dataset_arg(parser)
    _add_fingerprint_args(parser)
    _add_planning_args(parser)
    _add_preprocessing_args(parser)
    parser.add_argument("--no_pp", action="store_true", help="plan only, do not preprocess")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.experiment_planning.pipeline import plan_and_preprocess

        _check_fpe(args)
        _apply_verbose(args)
        plan_and_preprocess(
            args.d,
            configurations=args.c,
            num_processes=_num_processes(args.np),
            num_processes_fingerprint=args.npfp,
            verify_dataset_integrity=args.verify_dataset_integrity,
            clean=args.clean,
            planner_name=args.pl,
            gpu_memory_target_in_gb=args.gpu_memory_target,
            overwrite_plans_name=args.overwrite_plans_name,
            preprocessor_name=args.preprocessor_name,
            run_preprocessing=not args.no_pp,
            show_progress=not args.quiet,
            overwrite_target_spacing=args.overwrite_target_spacing,
            verbose=args.verbose,
        )

    run_cli(main)


def extract_fingerprint_entry() -> None:
    """nnUNetv2_extract_fingerprint."""
    parser = argparse.ArgumentParser(description="Extract the dataset fingerprint.")
    _add_dataset_arg(parser)
    _add_fingerprint_args(parser)
    parser.add_argument("-np", type=int, default=None, help="same as -npfp")
    _add_output_args(parser)
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.experiment_planning.fingerprint import extract_fingerprint_for_dataset

        _check_fpe(args)
        _apply_verbose(args)
        for dataset in args.d:
            extract_fingerprint_for_dataset(
                dataset,
                num_processes=args.np or args.npfp,
                check_integrity=args.verify_dataset_integrity,
                clean=args.clean,
                show_progress=not args.quiet,
            )

    run_cli(main)


def plan_experiment_entry() -> None:
    """nnUNetv2_plan_experiment."""
    parser = argparse.ArgumentParser(description="Create plans from a dataset fingerprint.")
    _add_dataset_arg(parser)
    _add_planning_args(parser)
    _add_output_args(parser)
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.experiment_planning.planner import plan_experiment_for_dataset

        _apply_verbose(args)
        for dataset in args.d:
            path = plan_experiment_for_dataset(
                dataset,
                planner_name=args.pl,
                gpu_memory_target_in_gb=args.gpu_memory_target,
                overwrite_plans_name=args.overwrite_plans_name,
                preprocessor_name=args.preprocessor_name,
                overwrite_target_spacing=args.overwrite_target_spacing,
            )
            print(f"plans written to {path}")

    run_cli(main)


def preprocess_entry() -> None:
    """nnUNetv2_preprocess."""
    parser = argparse.ArgumentParser(description="Preprocess datasets according to their plans.")
    _add_dataset_arg(parser)
    parser.add_argument("-plans_name", default="nnUNetPlans")
    _add_preprocessing_args(parser)
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.preprocessing.preprocessor import preprocess_dataset

        _apply_verbose(args)
        for dataset in args.d:
            preprocess_dataset(
                dataset,
                plans_identifier=args.plans_name,
                configurations=args.c,
                num_processes=_num_processes(args.np),
                show_progress=not args.quiet,
                verbose=args.verbose,
            )

    run_cli(main)


def move_plans_between_datasets_entry() -> None:
    """nnUNetv2_move_plans_between_datasets."""
    parser = argparse.ArgumentParser(
        description="Copy the plans of a source dataset to a target dataset (pretraining on the source, "
        "fine-tuning on the target with -pretrained_weights)."
    )
    parser.add_argument("-s", required=True, help="source dataset name or id")
    parser.add_argument("-t", required=True, help="target dataset name or id")
    parser.add_argument("-sp", required=True, help="source plans identifier, e.g. nnUNetPlans")
    parser.add_argument(
        "-tp",
        default=None,
        help="target plans identifier (default: the source's; choose a new one, e.g. nnUNetPlansFromS, so the "
        "target's own nnUNetPlans stay)",
    )
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.experiment_planning.plans_for_pretraining.move_plans_between_datasets import (
            move_plans_between_datasets,
        )

        print(f"plans written to {move_plans_between_datasets(args.s, args.t, args.sp, args.tp)}")

    run_cli(main)
