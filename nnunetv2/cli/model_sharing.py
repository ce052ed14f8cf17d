"""Model zips: nnUNetv2_export_model_to_zip, _install_pretrained_model_from_zip, _download_pretrained_model_by_url."""

from __future__ import annotations

import argparse

from nnunetv2.cli.common import run_cli


def export_model_to_zip_entry() -> None:
    """nnUNetv2_export_model_to_zip."""
    parser = argparse.ArgumentParser(description="Export trained models of a dataset as a zip file.")
    parser.add_argument("-d", required=True, help="dataset id or name")
    parser.add_argument("-o", required=True, help="output zip file")
    parser.add_argument(
        "-c", nargs="+", default=None, help="configurations (default: every configuration trained with -tr and -p)"
    )
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer (default nnUNetTrainer)")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"], help="folds (default: 0 1 2 3 4)")
    parser.add_argument(
        "-chk",
        nargs="+",
        default=["checkpoint_final.pth"],
        help="checkpoint files to export (default: checkpoint_final.pth)",
    )
    parser.add_argument(
        "--not_strict",
        action="store_true",
        help="skip missing configurations, folds and checkpoints instead of failing",
    )
    parser.add_argument("--exp_cv_preds", action="store_true", help="also export the cross-validation predictions")
    parser.add_argument(
        "--checkpoint_ensemble",
        action="store_true",
        help="also export each fold's checkpoint_ensemble.json and its checkpoints (cyclic-LR "
        "training), so nnUNetv2_predict_checkpoints works after installing",
    )
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.model_sharing.model_export import export_pretrained_model

        names = export_pretrained_model(
            args.d,
            args.o,
            args.c,
            args.tr,
            args.p,
            args.f,
            strict=not args.not_strict,
            save_checkpoints=args.chk,
            export_crossval_predictions=args.exp_cv_preds,
            checkpoint_ensemble=args.checkpoint_ensemble,
        )
        print(f"wrote {len(names)} file(s) to {args.o}")

    run_cli(main)


def install_from_zip_entry() -> None:
    """nnUNetv2_install_pretrained_model_from_zip."""
    parser = argparse.ArgumentParser(description="Install a model zip file into nnUNet_results.")
    parser.add_argument("zip", help="zip file made by nnUNetv2_export_model_to_zip")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.model_sharing.model_import import install_model_from_zip_file

        written = install_model_from_zip_file(args.zip)
        print(f"installed {len(written)} file(s)")

    run_cli(main)


def download_by_url_entry() -> None:
    """nnUNetv2_download_pretrained_model_by_url."""
    parser = argparse.ArgumentParser(description="Download a model zip from a URL and install it into nnUNet_results.")
    parser.add_argument("url", help="URL of the model zip (https://, http:// or file://)")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.model_sharing.model_download import download_and_install_from_url

        written = download_and_install_from_url(args.url)
        print(f"installed {len(written)} file(s)")

    run_cli(main)
