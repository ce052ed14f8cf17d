"""nnUNetv2_convert_seed_scribbles: AnatomySketch .seed scribbles to scribble label maps."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nnunetv2.cli.common import run_cli


def build_convert_seed_scribbles_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_convert_seed_scribbles."""
    parser = argparse.ArgumentParser(
        description="Convert AnatomySketch .seed scribble files (strokes with a label, points in world "
        "coordinates) into scribble label maps OUT/CASE.ending in each case's image geometry, for "
        "nnUNetv2_scribble_pseudolabels and nnUNetv2_scribble_loop."
    )
    parser.add_argument("-i", required=True, help="folder of CASE.seed (or CASE_scribble.seed) files")
    parser.add_argument(
        "-r", required=True, help="reference images: CASE_0000.ending (or CASE.ending) whose geometry the maps take"
    )
    parser.add_argument("-o", required=True, help="output folder for the scribble label maps")
    parser.add_argument(
        "-d",
        default=None,
        help="dataset id, name or dataset.json: file ending, valid labels and the default unannotated value",
    )
    parser.add_argument(
        "--unannotated",
        type=int,
        default=None,
        help="value of undrawn voxels (default: the dataset's ignore label, else its number of labels)",
    )
    return parser


def convert_seed_scribbles_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_convert_seed_scribbles."""
    args = build_convert_seed_scribbles_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.annotation.seed_scribbles import convert_seed_scribbles

        scribbled = convert_seed_scribbles(args.i, args.r, args.o, args.d, args.unannotated)
        for case_id, voxels in scribbled.items():
            print(f"{case_id}: {voxels} scribbled voxel(s)")
        print(f"wrote {len(scribbled)} scribble map(s) to {args.o}")

    run_cli(main)
