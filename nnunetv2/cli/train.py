"""nnUNetv2_train with nnU-Net v2's flags."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nnunetv2.cli.common import add_precision_arguments, requested_cpu_bf16, run_cli


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_train."""
    parser = argparse.ArgumentParser(description="Train one fold of an nnU-Net configuration.")
    parser.add_argument("dataset_name_or_id", help="dataset id or name (DatasetXXX_Name)")
    parser.add_argument("configuration", help="configuration, e.g. 2d, 3d_fullres, 3d_lowres")
    parser.add_argument("fold", help="fold of the 5-fold cross-validation (0-4), or 'all'")
    parser.add_argument(
        "-tr",
        default="nnUNetTrainer",
        help="trainer class name, or package.module:ClassName for your own (default nnUNetTrainer)",
    )
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument(
        "-pretrained_weights",
        default=None,
        help="checkpoint to initialise the network from (shape-compatible layers only)",
    )
    parser.add_argument(
        "-num_gpus", type=int, default=1, help="processes for DistributedDataParallel, one per device (default 1)"
    )
    parser.add_argument(
        "-device", default=None, choices=["cuda", "cpu", "mps"], help="device (default: cuda when available, else cpu)"
    )
    parser.add_argument(
        "--c",
        action="store_true",
        help="continue from checkpoint_latest (or checkpoint_final, e.g. with more -num_epochs)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train a fold that already finished again from scratch (without it that is refused; nnU-Net v2 "
        "overwrites silently)",
    )
    parser.add_argument("--val", action="store_true", help="only run the final validation (needs checkpoint_final)")
    parser.add_argument(
        "--val_best", action="store_true", help="validate with checkpoint_best instead of checkpoint_final"
    )
    parser.add_argument("--npz", action="store_true", help="also save validation softmax outputs (.npz)")
    parser.add_argument(
        "--disable_progress_bar",
        action="store_true",
        help="no bar inside epochs (and no plain progress lines when the output is redirected); the one-line "
        "report of each epoch, with the estimate for the run, stays",
    )
    parser.add_argument("--disable_checkpointing", action="store_true", help="write no checkpoints (testing)")
    parser.add_argument("-num_epochs", type=int, default=None, help="override the trainer's epoch count")
    parser.add_argument(
        "-num_iterations_per_epoch",
        type=int,
        default=None,
        help="override the training iterations per epoch (default 250)",
    )
    parser.add_argument(
        "-num_val_iterations_per_epoch",
        type=int,
        default=None,
        help="override the validation iterations per epoch (default 50)",
    )
    parser.add_argument(
        "-save_every", type=int, default=None, help="write checkpoint_latest every N epochs (default 50)"
    )
    parser.add_argument(
        "-seed",
        type=int,
        default=None,
        help="seed network initialisation and sampling (repeatable on CPU with nnUNet_n_proc_DA=0)",
    )
    parser.add_argument(
        "-num_of_cycles",
        type=int,
        default=None,
        help="restart the learning rate this many times; the checkpoints near each cycle's end form an "
        "ensemble for uncertainty (default 1 = plain nnU-Net). With the default trainer, more than one "
        "cycle or -checkpoints trains nnUNetTrainerCyclicLR (as UnnUNet's nnUNetTrainer did)",
    )
    parser.add_argument(
        "-checkpoints",
        default=None,
        choices=["sparse", "late"],
        help="ensemble checkpoints per cycle (cyclic trainer), six from 70%% of "
        "the cycle to its end (sparse, default) or its last ten epochs (late)",
    )
    add_precision_arguments(parser, "train the network")
    return parser


def train_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_train."""
    args = build_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.training.run_training import TrainingRequest, run_training

        folder = run_training(
            TrainingRequest(
                dataset_name_or_id=args.dataset_name_or_id,
                configuration=args.configuration,
                fold=args.fold,
                trainer_name=args.tr,
                plans_identifier=args.p,
                pretrained_weights=args.pretrained_weights,
                num_gpus=args.num_gpus,
                device=args.device,
                continue_training=args.c,
                only_run_validation=args.val,
                validate_with_best=args.val_best,
                export_validation_probabilities=args.npz,
                disable_checkpointing=args.disable_checkpointing,
                num_epochs=args.num_epochs,
                num_iterations_per_epoch=args.num_iterations_per_epoch,
                num_val_iterations_per_epoch=args.num_val_iterations_per_epoch,
                save_every=args.save_every,
                seed=args.seed,
                num_of_cycles=args.num_of_cycles,
                checkpoint_rule=args.checkpoints,
                cpu_bf16=requested_cpu_bf16(args),
                show_progress=not args.disable_progress_bar,
                overwrite=args.overwrite,
            )
        )
        print(f"done: {folder}")

    run_cli(main)
