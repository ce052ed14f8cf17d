"""nnUNetv2_predict and nnUNetv2_predict_from_modelfolder, with nnU-Net v2's flags."""

from __future__ import annotations

import argparse

from nnunetv2.cli.common import add_precision_arguments, requested_cpu_bf16, run_cli


def _add_shared_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", required=True, help="input folder: files named CASE_XXXX.<ending> (XXXX = channel)")
    parser.add_argument("-o", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "-f", nargs="+", default=["0", "1", "2", "3", "4"], help="folds to use, e.g. 0 1 2 or all (default: 0 1 2 3 4)"
    )
    parser.add_argument(
        "-step_size",
        type=float,
        default=0.5,
        help="tile step as a fraction of the patch size (default 0.5; larger is faster, coarser)",
    )
    parser.add_argument("--disable_tta", action="store_true", help="no mirroring at test time (faster, a bit worse)")
    parser.add_argument("--verbose", action="store_true", help="more output")
    parser.add_argument(
        "--save_probabilities",
        action="store_true",
        help="also write CASE.npz (probabilities) and CASE.pkl, e.g. for ensembling",
    )
    parser.add_argument("--continue_prediction", action="store_true", help="skip cases already predicted")
    parser.add_argument(
        "-chk", default="checkpoint_final.pth", help="checkpoint file name (default checkpoint_final.pth)"
    )
    parser.add_argument("-npp", type=int, default=3, help="processes for preprocessing (default 3)")
    parser.add_argument("-nps", type=int, default=3, help="processes for exporting segmentations (default 3)")
    parser.add_argument(
        "-prev_stage_predictions", default=None, help="folder with the previous stage's predictions (cascade only)"
    )
    parser.add_argument("-num_parts", type=int, default=1, help="split the cases into this many parts (default 1)")
    parser.add_argument("-part_id", type=int, default=0, help="which part this run predicts (0..num_parts-1)")
    parser.add_argument(
        "-device",
        default=None,
        choices=["cuda", "cpu", "mps"],
        help="device (default: cuda when available, else cpu); choose the GPU with CUDA_VISIBLE_DEVICES",
    )
    parser.add_argument("--disable_progress_bar", action="store_true", help="no progress bar")
    parser.add_argument(
        "--not_on_device",
        action="store_true",
        help="accumulate each case's logits in CPU memory, not on the GPU (for cases larger than its memory)",
    )
    parser.add_argument(
        "-temperature",
        type=float,
        default=1.0,
        help="softmax temperature: logits are divided by it (default 1; > 1 softens the saved "
        "probabilities, the segmentation stays the same)",
    )
    add_precision_arguments(parser, "run the network")


def _shared_kwargs(args: argparse.Namespace) -> dict:
    return dict(
        folds=args.f,
        checkpoint_name=args.chk,
        step_size=args.step_size,
        use_mirroring=not args.disable_tta,
        device=args.device,
        verbose=args.verbose,
        save_probabilities=args.save_probabilities,
        overwrite=not args.continue_prediction,
        num_processes_preprocessing=args.npp,
        num_processes_segmentation_export=args.nps,
        folder_with_segs_from_prev_stage=args.prev_stage_predictions,
        num_parts=args.num_parts,
        part_id=args.part_id,
        show_progress=not args.disable_progress_bar,
        perform_everything_on_device=not args.not_on_device,
        temperature=args.temperature,
        cpu_bf16=requested_cpu_bf16(args),
    )


def predict_entry() -> None:
    """nnUNetv2_predict."""
    parser = argparse.ArgumentParser(description="Predict images with a trained model of nnUNet_results.")
    _add_shared_args(parser)
    parser.add_argument("-d", required=True, help="dataset id or name")
    parser.add_argument("-c", required=True, help="configuration, e.g. 3d_fullres")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer name (default nnUNetTrainer)")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.inference.predictor import predict_from_dataset_id

        written = predict_from_dataset_id(args.i, args.o, args.d, args.c, args.tr, args.p, **_shared_kwargs(args))
        print(f"wrote {len(written)} prediction(s) to {args.o}")

    run_cli(main)


def predict_from_modelfolder_entry() -> None:
    """nnUNetv2_predict_from_modelfolder."""
    parser = argparse.ArgumentParser(description="Predict images with the model in a model folder.")
    _add_shared_args(parser)
    parser.add_argument("-m", required=True, help="model folder (holds plans.json, dataset.json, fold_N/)")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.inference.predictor import predict_from_model_folder

        written = predict_from_model_folder(args.i, args.o, args.m, **_shared_kwargs(args))
        print(f"wrote {len(written)} prediction(s) to {args.o}")

    run_cli(main)
