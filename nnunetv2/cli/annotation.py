"""nnUNetv2_suggest_annotations: a worklist of where to scribble next, from uncertainty maps."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nnunetv2.cli.common import run_cli


def build_suggest_annotations_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_suggest_annotations."""
    parser = argparse.ArgumentParser(
        description="Rank the uncertain regions of a pool of predictions (per case, per slice, per connected "
        "region) by the expected benefit of a scribble there and write OUT/worklist.csv and "
        "OUT/worklist.json."
    )
    parser.add_argument(
        "-i",
        required=True,
        help="uncertainty: the output folder of nnUNetv2_uncertainty, or a folder of float maps "
        "CASE_uncertainty.<ending>",
    )
    parser.add_argument("-o", required=True, help="output folder for worklist.csv and worklist.json")
    parser.add_argument(
        "--predictions",
        default=None,
        help="predictions CASE.<ending> (default: the segmentations next to nnUNetv2_uncertainty's "
        "maps); used to name each region's predicted label",
    )
    parser.add_argument(
        "--scribbles", default=None, help="existing scribbles CASE.<ending>: regions near them rank lower"
    )
    parser.add_argument(
        "-d", default=None, help="dataset id, name or dataset.json (default: the dataset.json of the predictions)"
    )
    parser.add_argument(
        "--unannotated",
        type=int,
        default=None,
        help="value of undrawn voxels in the scribble files (default: the dataset's ignore "
        "label, else its number of labels)",
    )
    parser.add_argument(
        "--axis",
        type=int,
        default=0,
        help="slices are perpendicular to this array axis (0 = z of (z, y, x); default 0)",
    )
    parser.add_argument("--budget", type=int, default=50, help="the most worklist entries (default 50)")
    parser.add_argument("--max_per_case", type=int, default=None, help="the most entries per case (default: no cap)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="voxels with at least this uncertainty form the candidate regions (default 0.5)",
    )
    parser.add_argument(
        "--min_region_size",
        type=int,
        default=10,
        help="smaller regions (voxels within the slice) are left out (default 10)",
    )
    parser.add_argument(
        "--distance_scale",
        type=float,
        default=5.0,
        help="voxels (of the finest axis) over which a scribble or a picked region lowers the "
        "benefit of regions near it; 0 turns this off (default 5)",
    )
    parser.add_argument(
        "--window_radius",
        type=float,
        default=1.0,
        help="an entry is a stroke window of a region: a box of 2 x radius + 1 voxels (of the finest "
        "axis) per in-plane axis where the region is most uncertain; a short stroke there, the "
        "pseudo-label rule's growth does the rest; 0 makes each whole region one entry "
        "(default 1)",
    )
    parser.add_argument(
        "--exclusion_radius",
        type=float,
        default=6.0,
        help="after an entry is picked, candidates of its case whose centroid lies closer than this "
        "(voxels of the finest axis) are dropped: the stroke's growth reaches them; 0 turns this "
        "off (default 6)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def suggest_annotations_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_suggest_annotations."""
    args = build_suggest_annotations_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.annotation.suggest import suggest_annotations

        entries = suggest_annotations(
            args.i,
            args.o,
            predictions_folder=args.predictions,
            scribbles_folder=args.scribbles,
            dataset=args.d,
            unannotated_value=args.unannotated,
            axis=args.axis,
            budget=args.budget,
            threshold=args.threshold,
            min_region_size=args.min_region_size,
            distance_scale=args.distance_scale,
            max_per_case=args.max_per_case,
            window_radius=args.window_radius,
            exclusion_radius=args.exclusion_radius,
            progress=not args.quiet,
        )
        if entries:
            print("rank  case  voxel (x, y, z)  point (x, y, z) mm, LPS  score")
        for e in entries[:10]:
            voxel = ", ".join(str(v) for v in e.voxel_xyz or ())
            point = ", ".join(f"{v:.1f}" for v in e.point_mm or ())
            print(f"{e.rank:4d}  {e.case}  ({voxel})  ({point})  {e.score:.2f}")
        if len(entries) > 10:
            print(f"   ... {len(entries) - 10} more")
        cases = len({e.case for e in entries})
        print(f"wrote {len(entries)} entries in {cases} cases to {args.o}/worklist.csv and worklist.json")

    run_cli(main)


def _budget(text: str) -> int | float:
    """A voxel count ('500') or a fraction of the wrong voxels ('0.3')."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a voxel count or a fraction, got {text!r}") from None


def build_simulate_correction_scribbles_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_simulate_correction_scribbles."""
    parser = argparse.ArgumentParser(
        description="Simulate a person drawing correction scribbles where the predictions differ from the "
        "reference, and write them as scribble files OUT/CASE.<ending> (the stroke's class where drawn, "
        "the unannotated value elsewhere) for nnUNetv2_scribble_pseudolabels / nnUNetv2_scribble_loop."
    )
    parser.add_argument("-i", required=True, help="predictions CASE.<ending> (what the person corrects)")
    parser.add_argument("-r", required=True, help="reference segmentations CASE.<ending> (other cases are ignored)")
    parser.add_argument("-o", required=True, help="output folder for the scribble files")
    parser.add_argument(
        "--budget",
        type=_budget,
        default=0.3,
        help="voxels to scribble over all cases: a count (e.g. 500) or a fraction of the wrongly "
        "predicted voxels (e.g. 0.3, the default)",
    )
    parser.add_argument(
        "--placement",
        default="largest",
        choices=["largest", "random", "random_slices", "guided"],
        help="largest / random: error regions of each case largest first / in random order, the "
        "budget shared evenly over the cases; random_slices: random slices of random cases; "
        "guided: the worklist's entries by decreasing score (default largest)",
    )
    parser.add_argument("-w", default=None, help="worklist.json / worklist.csv or its folder (placement guided)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same strokes (default 0)")
    parser.add_argument(
        "-d",
        default=None,
        help="dataset id, name or dataset.json (default: the dataset.json of "
        "the predictions): file ending, reader-writer, labels",
    )
    parser.add_argument(
        "--unannotated",
        type=int,
        default=None,
        help="value of undrawn voxels (default: the dataset's ignore label, else its number of labels)",
    )
    parser.add_argument(
        "--axis",
        type=int,
        default=0,
        help="strokes lie in slices perpendicular to this array axis (0 = z of (z, y, x); default 0)",
    )
    parser.add_argument(
        "--min_region_size", type=int, default=10, help="error regions with fewer voxels get no stroke (default 10)"
    )
    parser.add_argument("--strokes_per_region", type=int, default=1, help="strokes per error region (default 1)")
    parser.add_argument("--thickness", type=int, default=3, help="stroke width in voxels (default 3)")
    return parser


def simulate_correction_scribbles_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_simulate_correction_scribbles."""
    args = build_simulate_correction_scribbles_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.annotation.simulated_scribble_files import SUMMARY_FILE, write_simulated_correction_scribbles

        summary = write_simulated_correction_scribbles(
            args.i,
            args.r,
            args.o,
            budget=args.budget,
            placement=args.placement,
            worklist=args.w,
            seed=args.seed,
            dataset=args.d,
            unannotated_value=args.unannotated,
            axis=args.axis,
            min_region_size=args.min_region_size,
            strokes_per_region=args.strokes_per_region,
            thickness=args.thickness,
        )
        drawn = sum(1 for c in summary["cases"].values() if c["scribbled_voxels"])
        print(
            f"{args.placement}: scribbled {summary['scribbled_voxels']} of {summary['budget_voxels']} budget voxels "
            f"({summary['wrong_voxels']} wrong voxels) in {drawn} of {len(summary['cases'])} cases; wrote "
            f"{len(summary['cases'])} scribble files and {SUMMARY_FILE} to {args.o}"
        )
        unspent = summary["budget_voxels"] - summary["scribbled_voxels"]
        for number, reason in enumerate(summary["unspent_budget_reasons"]):
            print(f"{unspent} budget voxels left unspent: {reason}" if number == 0 else f"  and {reason}")

    run_cli(main)
