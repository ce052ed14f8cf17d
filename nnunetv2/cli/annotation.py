"""nnUNetv2_suggest_annotations: a worklist of where to scribble next, from uncertainty maps."""
from __future__ import annotations

import argparse
from typing import Sequence

from nnunetv2.cli.common import run_cli


def build_suggest_annotations_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_suggest_annotations."""
    parser = argparse.ArgumentParser(
        description="Rank the uncertain regions of a pool of predictions (per case, per slice, per connected "
                    "region) by the expected benefit of a scribble there and write OUT/worklist.csv and "
                    "OUT/worklist.json.")
    parser.add_argument("-i", required=True,
                        help="uncertainty: the output folder of nnUNetv2_uncertainty, or a folder of float maps "
                             "CASE_uncertainty.<ending>")
    parser.add_argument("-o", required=True, help="output folder for worklist.csv and worklist.json")
    parser.add_argument("--predictions", default=None,
                        help="predictions CASE.<ending> (default: the segmentations next to nnUNetv2_uncertainty's "
                             "maps); used to name each region's predicted label")
    parser.add_argument("--scribbles", default=None,
                        help="existing scribbles CASE.<ending>: regions near them rank lower")
    parser.add_argument("-d", default=None, help="dataset id, name or dataset.json (default: the dataset.json "
                                                 "of the predictions)")
    parser.add_argument("--unannotated", type=int, default=None,
                        help="value of undrawn voxels in the scribble files (default: the dataset's ignore "
                             "label, else its number of labels)")
    parser.add_argument("--axis", type=int, default=0, help="slices are perpendicular to this array axis "
                                                            "(0 = z of (z, y, x); default 0)")
    parser.add_argument("--budget", type=int, default=50, help="the most worklist entries (default 50)")
    parser.add_argument("--max_per_case", type=int, default=None, help="the most entries per case (default: no cap)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="voxels with at least this uncertainty form the candidate regions (default 0.5)")
    parser.add_argument("--min_region_size", type=int, default=10,
                        help="smaller regions (voxels within the slice) are left out (default 10)")
    parser.add_argument("--distance_scale", type=float, default=5.0,
                        help="voxels (of the finest axis) over which a scribble or a picked region lowers the "
                             "benefit of regions near it; 0 turns this off (default 5)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def suggest_annotations_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_suggest_annotations."""
    args = build_suggest_annotations_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.annotation.suggest import suggest_annotations
        entries = suggest_annotations(args.i, args.o, predictions_folder=args.predictions,
                                      scribbles_folder=args.scribbles, dataset=args.d,
                                      unannotated_value=args.unannotated, axis=args.axis, budget=args.budget,
                                      threshold=args.threshold, min_region_size=args.min_region_size,
                                      distance_scale=args.distance_scale, max_per_case=args.max_per_case,
                                      progress=not args.quiet)
        for e in entries[:10]:
            box = " ".join(f"{start}:{stop}" for start, stop in e.bbox)
            print(f"{e.rank:4d}  {e.case}  axis {e.axis} slice {e.slice}  box {box}  score {e.score:.2f}")
        if len(entries) > 10:
            print(f"   ... {len(entries) - 10} more")
        cases = len({e.case for e in entries})
        print(f"wrote {len(entries)} entries in {cases} cases to {args.o}/worklist.csv and worklist.json")

    run_cli(main)
