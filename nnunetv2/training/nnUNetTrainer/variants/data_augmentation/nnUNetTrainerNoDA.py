"""Alias of ``nnunetv2.training.trainers.variants_data_augmentation``
(nnU-Net v2's ``variants/data_augmentation/nnUNetTrainerNoDA.py``)."""

from nnunetv2.training.trainers.variants_data_augmentation import (
    nnUNetTrainerNoDA,
)

__all__ = ["nnUNetTrainerNoDA"]
