"""nnU-Net v2's ``nnunetv2.dataset_conversion.generate_dataset_json``: an alias of ``nnunetv2.formats.dataset_json``."""

from nnunetv2.formats.dataset_json import generate_dataset_json

__all__ = ["generate_dataset_json"]
