"""nnUNetv2_convert_MSD_dataset: turn a Medical Segmentation Decathlon task into a raw dataset."""

from __future__ import annotations

import argparse

from nnunetv2.cli.common import run_cli


def convert_msd_entry() -> None:
    """nnUNetv2_convert_MSD_dataset."""
    parser = argparse.ArgumentParser(
        description="Convert an MSD TaskXX_Name folder into nnUNet_raw/DatasetXXX_Name "
        "(one 3D file per channel, v2 dataset.json)."
    )
    parser.add_argument("-i", required=True, metavar="TASK_FOLDER", help="the downloaded TaskXX_Name folder")
    parser.add_argument("-overwrite_id", type=int, default=None, help="dataset id to use instead of the task number")
    parser.add_argument("-np", type=int, default=1, help="processes for splitting the 4D images (default 1)")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.dataset.msd_conversion import convert_msd_dataset

        folder = convert_msd_dataset(args.i, overwrite_id=args.overwrite_id, num_processes=args.np)
        print(f"wrote {folder}")

    run_cli(main)
