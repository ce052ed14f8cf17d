"""nnUNetv2_convert_MSD_dataset and nnUNetv2_convert_old_nnUNet_dataset: other tasks into raw datasets."""

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


def convert_old_nnunet_dataset_entry() -> None:
    """nnUNetv2_convert_old_nnUNet_dataset."""
    parser = argparse.ArgumentParser(
        description="Convert an nnU-Net v1 raw task (TaskXXX_Name with imagesTr, labelsTr, ...) into "
        "nnUNet_raw/DatasetXXX_Name with a v2 dataset.json."
    )
    parser.add_argument("input_folder", help="path of the v1 task folder (the one holding imagesTr, labelsTr)")
    parser.add_argument("output_dataset_name", help="new dataset name (not a path), DatasetXXX_Name")
    args = parser.parse_args()

    def main() -> None:
        from nnunetv2.dataset.v1_conversion import convert_v1_dataset

        print(f"wrote {convert_v1_dataset(args.input_folder, args.output_dataset_name)}")

    run_cli(main)
