"""nnU-Net v2's ``...dataset_conversion.convert_raw_dataset_from_old_nnunet_format``: an alias of
``nnunetv2.dataset.v1_conversion`` (nnUNetv2_convert_old_nnUNet_dataset)."""

from nnunetv2.cli.dataset_conversion import convert_old_nnunet_dataset_entry as convert_entry_point
from nnunetv2.dataset.v1_conversion import convert_v1_dataset as convert

__all__ = ["convert", "convert_entry_point"]
