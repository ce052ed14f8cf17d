"""nnUNetv2_generate_synthetic_dataset: write a small synthetic raw dataset into nnUNet_raw."""

from __future__ import annotations

import argparse

from nnunetv2.cli.common import run_cli

_DEFAULT_SHAPES = {2: (64, 64), 3: (24, 40, 40)}
# the documented command chains predict imagesTs, so a dataset made for trying things out has some
DEFAULT_NUM_TEST = 4


def generate_synthetic_dataset_entry() -> None:
    """nnUNetv2_generate_synthetic_dataset."""
    parser = argparse.ArgumentParser(
        description="Write a synthetic dataset (MR- or CT-like, 2D or 3D) to nnUNet_raw/DatasetXXX_NAME."
    )
    parser.add_argument("-d", type=int, required=True, metavar="ID", help="dataset id (1-999)")
    parser.add_argument("-n", required=True, metavar="NAME", help="dataset name (DatasetXXX_NAME)")
    parser.add_argument(
        "--dim", type=int, choices=(2, 3), default=None, help="2D or 3D (default: from --shape, else 3)"
    )
    parser.add_argument("--num_cases", type=int, default=8, help="training cases in imagesTr/labelsTr (default 8)")
    parser.add_argument(
        "--shape",
        type=int,
        nargs="+",
        default=None,
        help="image shape in voxels, z y x or y x (default 24 40 40 / 64 64)",
    )
    parser.add_argument(
        "--spacing", type=float, nargs="+", default=None, help="voxel spacing in mm per axis (default 3 1 1 / 1 1)"
    )
    parser.add_argument("--channels", type=int, default=1, help="input channels (default 1)")
    parser.add_argument("--classes", type=int, default=2, help="foreground classes (default 2)")
    parser.add_argument(
        "--intensity", choices=("mr", "ct"), default="mr", help="MR-like (zero outside the body) or CT-like (HU) images"
    )
    parser.add_argument("--regions", action="store_true", help="nested region labels (BraTS style)")
    parser.add_argument("--ignore", action="store_true", help="mark a slab of each label as 'ignore'")
    parser.add_argument("--file_ending", default=".nii.gz", help="e.g. .nii.gz, .nrrd, .png (2D)")
    parser.add_argument(
        "--num_test",
        type=int,
        default=DEFAULT_NUM_TEST,
        help=f"test cases in imagesTs/labelsTs, for trying prediction and evaluation (default {DEFAULT_NUM_TEST}; "
        "0 writes none)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset with this id")
    args = parser.parse_args()
    dim = args.dim or (len(args.shape) if args.shape else 3)
    shape = args.shape or _DEFAULT_SHAPES[dim]
    if len(shape) != dim:
        parser.error(f"--shape has {len(shape)} values but --dim is {dim}")
    if args.spacing is not None and len(args.spacing) != dim:
        parser.error(f"--spacing has {len(args.spacing)} values but the dataset is {dim}D")

    def main() -> None:
        from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw

        folder = generate_synthetic_dataset_in_raw(
            args.d,
            args.n,
            overwrite=args.overwrite,
            num_cases=args.num_cases,
            shape=shape,
            spacing=args.spacing,
            num_channels=args.channels,
            num_foreground_classes=args.classes,
            intensity=args.intensity,
            regions=args.regions,
            ignore_label=args.ignore,
            file_ending=args.file_ending,
            num_test_cases=args.num_test,
            seed=args.seed,
        )
        print(f"wrote {folder}")

    run_cli(main)
