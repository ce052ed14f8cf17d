"""nnUNetv2_simulate_sparse_annotation: make a scribble/slices/patches copy of a dense dataset."""

from __future__ import annotations

import argparse

from nnunetv2.cli.common import run_cli
from nnunetv2.sparse.expand import DEFAULTS as EXPANSION_DEFAULTS


def simulate_sparse_annotation_entry() -> None:
    """nnUNetv2_simulate_sparse_annotation."""
    parser = argparse.ArgumentParser(
        description="Write a sparsely annotated copy of a densely labeled raw dataset: unannotated "
        "voxels get a new 'ignore' label. Prints the annotated fraction per class."
    )
    parser.add_argument("-d", required=True, help="source dataset id or name")
    parser.add_argument("-o", required=True, type=int, help="id of the new dataset")
    parser.add_argument("-n", "--name", default=None, help="name of the new dataset (default: SOURCE_MODE)")
    parser.add_argument("--mode", required=True, choices=["scribble", "slices", "patches"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copy", action="store_true", help="copy images instead of linking them")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing target dataset")
    scribble = parser.add_argument_group("scribble mode")
    scribble.add_argument("--axis", type=int, default=0, help="array axis whose slices get scribbles")
    scribble.add_argument("--slice_fraction", type=float, default=1.0, help="fraction of slices scribbled")
    scribble.add_argument("--thickness", type=int, default=3, help="scribble thickness in voxels")
    slices = parser.add_argument_group("slices mode")
    slices.add_argument("--fraction", type=float, default=0.1, help="fraction of slices kept per axis")
    slices.add_argument("--axes", type=int, nargs="+", default=[0], help="axes (e.g. 0 1 2)")
    slices.add_argument("--evenly_spaced", action="store_true", help="evenly spaced instead of random")
    patches = parser.add_argument_group("patches mode")
    patches.add_argument("--num_patches", type=int, default=3)
    patches.add_argument("--patch_size", type=int, default=32, help="edge length in voxels")
    args = parser.parse_args()

    options = {
        "scribble": dict(axis=args.axis, slice_fraction=args.slice_fraction, thickness=args.thickness),
        "slices": dict(fraction=args.fraction, axes=args.axes, evenly_spaced=args.evenly_spaced),
        "patches": dict(num_patches=args.num_patches, patch_size=args.patch_size),
    }[args.mode]

    def main() -> None:
        from nnunetv2.sparse.sparse_dataset import simulate_sparse_dataset_by_id

        target, fractions = simulate_sparse_dataset_by_id(
            args.d,
            args.o,
            args.mode,
            name=args.name,
            seed=args.seed,
            copy_images=args.copy,
            overwrite=args.overwrite,
            **options,
        )
        print(f"wrote {target}")
        for name, fraction in fractions.items():
            print(f"annotated {name}: {100 * fraction:.2f}%")

    run_cli(main)


def expand_sparse_labels_entry() -> None:
    """nnUNetv2_expand_sparse_labels."""
    parser = argparse.ArgumentParser(
        description="Write a copy of a sparse raw dataset (with an 'ignore' label) whose scribbles are grown "
        "into confident pseudo labels on the image; unsure voxels stay 'ignore'. Train the copy as usual."
    )
    parser.add_argument("-d", required=True, help="sparse source dataset id or name")
    parser.add_argument("-o", required=True, type=int, help="id of the new dataset")
    parser.add_argument("-n", "--name", default=None, help="name of the new dataset (default: SOURCE_expanded)")
    parser.add_argument("--method", default="intensity", choices=["intensity", "random_walker"])
    parser.add_argument("--axis", type=int, default=0, help="grow each slice along this axis (default 0)")
    parser.add_argument("--whole_volume", action="store_true", help="grow each case as one volume, not per slice")
    for option, kind, what in (
        ("min_probability", float, "grow where the most probable class is at least this sure"),
        ("smoothing", float, "intensity: Gaussian sigma in voxels"),
        ("neighbours", int, "intensity: nearest scribbled voxels that vote"),
        ("beta", float, "random_walker: how strongly image edges stop the walk"),
    ):
        default = kind(EXPANSION_DEFAULTS[option])
        parser.add_argument(f"--{option}", type=kind, default=default, help=f"{what} (default {default})")
    parser.add_argument("--copy", action="store_true", help="copy images instead of linking them")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing target dataset")
    args = parser.parse_args()
    options = {"min_probability": args.min_probability}
    if args.method == "intensity":
        options.update(smoothing=args.smoothing, neighbours=args.neighbours)
    else:
        options["beta"] = args.beta

    def main() -> None:
        from nnunetv2.sparse.sparse_dataset import expand_sparse_dataset_by_id

        target, fractions = expand_sparse_dataset_by_id(
            args.d,
            args.o,
            name=args.name,
            overwrite=args.overwrite,
            method=args.method,
            axis=None if args.whole_volume else args.axis,
            copy_images=args.copy,
            **options,
        )
        print(f"wrote {target}")
        for name, fraction in fractions.items():
            print(f"{name}: {100 * fraction:.2f}% of the voxels")

    run_cli(main)
