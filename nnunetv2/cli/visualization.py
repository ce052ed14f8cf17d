"""nnUNetv2_plot_overlay_pngs and nnUNetv2_make_report: overlay pictures and an HTML report."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nnunetv2.cli.common import default_num_processes, run_cli


def _add_drawing_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by both commands: what to draw and how."""
    parser.add_argument("-channel_idx", type=int, default=0, help="image channel shown (0 = _0000; default 0)")
    parser.add_argument(
        "-overlay_intensity",
        type=float,
        default=0.6,
        help="opacity of the label colours, 0..1 (default 0.6); the heat map's opacity follows its value",
    )
    parser.add_argument(
        "-u",
        default=None,
        help="uncertainty maps (nnUNetv2_uncertainty's output folder or "
        "CASE_uncertainty files): a heat-map panel with a colour bar beside each overlay",
    )
    parser.add_argument("--scribbles", default=None, help="scribble files CASE.<ending>, drawn opaque")
    parser.add_argument(
        "--unannotated",
        type=int,
        default=None,
        help="value of undrawn voxels in the scribble files (default: the dataset's ignore label, "
        "else its number of labels)",
    )
    parser.add_argument(
        "-w",
        default=None,
        help="worklist (worklist.json/.csv or its folder): its slices are drawn too, with its regions boxed",
    )
    parser.add_argument("--axis", type=int, default=0, help="slices perpendicular to this array axis (default 0)")
    parser.add_argument("--num_slices", type=int, default=1, help="slices with most foreground per case (default 1)")
    parser.add_argument(
        "--max_worklist_slices", type=int, default=3, help="worklist slices per case, in worklist order (default 3)"
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        help="output pixels per voxel along the finer in-plane axis (default: the smallest whole number that makes "
        "each panel at least 256 pixels on its short side; upscaling is nearest neighbour)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _options(args: argparse.Namespace):
    from nnunetv2.visualization.overlay_pngs import OverlayOptions

    return OverlayOptions(
        channel_idx=args.channel_idx,
        overlay_intensity=args.overlay_intensity,
        axis=args.axis,
        num_slices=args.num_slices,
        max_worklist_slices=args.max_worklist_slices,
        scale=args.scale,
    )


def build_plot_overlay_pngs_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_plot_overlay_pngs."""
    parser = argparse.ArgumentParser(
        description="PNG overlays of the slice(s) with most foreground of every case: a dataset's preprocessed "
        "or raw training cases (-d, as in nnU-Net v2), or any images folder with a folder of labels "
        "or predictions (-i, -s). Note that a slice's pixels are stretched to the spacing's aspect."
    )
    parser.add_argument("-d", default=None, help="dataset name or id")
    parser.add_argument("-i", default=None, help="images folder (CASE_XXXX.<ending>), instead of -d")
    parser.add_argument("-s", default=None, help="labels or predictions folder (CASE.<ending>) for -i")
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument(
        "-np",
        type=int,
        default=default_num_processes(),
        help="accepted for compatibility with nnU-Net v2; drawing takes milliseconds per case and runs in this process",
    )
    parser.add_argument(
        "--use_raw", action="store_true", help="with -d: draw the raw training cases instead of the preprocessed ones"
    )
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier, without --use_raw (default nnUNetPlans)")
    parser.add_argument(
        "-c", default=None, help="configuration, without --use_raw (default: 3d_fullres if the plans have it, else 2d)"
    )
    parser.add_argument(
        "-dataset_json",
        default=None,
        help="dataset.json for -i/-s (default: the one in the -s folder; else the ending is taken from the images)",
    )
    _add_drawing_flags(parser)
    return parser


def plot_overlay_pngs_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_plot_overlay_pngs."""
    parser = build_plot_overlay_pngs_parser()
    args = parser.parse_args(argv)
    if (args.d is None) == (args.i is None):
        parser.error("give either a dataset (-d) or an images folder (-i, with -s for its labels or predictions)")
    layers_given = args.u is not None or args.scribbles is not None or args.w is not None
    if args.d is not None and not args.use_raw and layers_given:
        parser.error("-u, --scribbles and -w are in the raw images' geometry: add --use_raw (or use -i/-s)")

    def main() -> None:
        from nnunetv2.visualization.case_layers import folder_inputs, raw_dataset_inputs
        from nnunetv2.visualization.overlay_pngs import plot_overlays, plot_preprocessed_overlays

        options = _options(args)
        if args.d is not None and not args.use_raw:
            written = plot_preprocessed_overlays(args.d, args.o, args.p, args.c, options, progress=not args.quiet)
        else:
            inputs = (
                raw_dataset_inputs(args.d, args.u, args.scribbles, args.unannotated)
                if args.d is not None
                else folder_inputs(args.i, args.s, args.dataset_json, args.u, args.scribbles, args.unannotated)
            )
            written = plot_overlays(inputs, args.o, options, args.w, progress=not args.quiet)
        print(f"wrote {sum(len(v) for v in written.values())} PNGs of {len(written)} cases to {args.o}")

    run_cli(main)


def build_make_report_parser() -> argparse.ArgumentParser:
    """Return the argument parser of nnUNetv2_make_report."""
    parser = argparse.ArgumentParser(
        description="An HTML report (OUT/index.html, pictures in OUT/pngs/) of a folder of labels or predictions: "
        "per case the overlay PNGs, Dice per label (with -ref), uncertainty score (with -u) and "
        "worklist rank (with -w). Opens in a browser from disk, no server needed."
    )
    parser.add_argument("-i", required=True, help="images folder (CASE_XXXX.<ending>)")
    parser.add_argument("-s", required=True, help="labels or predictions folder (CASE.<ending>)")
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument("-ref", default=None, help="reference labels folder (CASE.<ending>): Dice per case")
    parser.add_argument("-d", default=None, help="dataset id, name or dataset.json (default: the one in -s)")
    parser.add_argument("-title", default=None, help="report title")
    _add_drawing_flags(parser)
    return parser


def make_report_entry(argv: Sequence[str] | None = None) -> None:
    """nnUNetv2_make_report."""
    args = build_make_report_parser().parse_args(argv)

    def main() -> None:
        from nnunetv2.visualization.report import make_report

        path = make_report(
            args.i,
            args.s,
            args.o,
            reference_folder=args.ref,
            uncertainty_folder=args.u,
            scribbles_folder=args.scribbles,
            worklist=args.w,
            dataset=args.d,
            unannotated_value=args.unannotated,
            options=_options(args),
            title=args.title,
            progress=not args.quiet,
        )
        print(f"wrote {path} (open file://{path.resolve()} in a browser)")

    run_cli(main)
