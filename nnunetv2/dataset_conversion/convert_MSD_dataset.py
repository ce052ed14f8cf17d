"""nnU-Net v2's ``nnunetv2.dataset_conversion.convert_MSD_dataset``: an alias of ``nnunetv2.dataset.msd_conversion``."""

from nnunetv2.cli.dataset_conversion import convert_msd_entry as entry_point
from nnunetv2.dataset.msd_conversion import convert_msd_dataset

__all__ = ["convert_msd_dataset", "entry_point"]
