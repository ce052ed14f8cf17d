"""nnUNetv2_ensemble: average the probabilities of several prediction folders."""

from __future__ import annotations

import argparse

from nnunetv2.cli.common import default_num_processes, run_cli


def ensemble_entry() -> None:
    """nnUNetv2_ensemble."""
    parser = argparse.ArgumentParser(
        description="Ensemble prediction folders made with --save_probabilities: "
        "average each case's probabilities and write its segmentation."
    )
    parser.add_argument("-i", nargs="+", required=True, help="input folders (two or more)")
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument("-np", type=int, default=default_num_processes(), help="processes (default: min(8, CPU count))")
    parser.add_argument(
        "--save_npz", action="store_true", help="also write the averaged probabilities (CASE.npz + CASE.pkl)"
    )
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.ensembling.ensemble import ensemble_folders

        written = ensemble_folders(args.i, args.o, args.save_npz, args.np)
        print(f"wrote the ensemble of {len(written)} case(s) to {args.o}")

    run_cli(main)
