"""Alias of ``nnunetv2.training.trainers.variants_data_augmentation``
(nnU-Net v2's ``variants/data_augmentation/nnUNetTrainerDA5.py``)."""

from nnunetv2.training.trainers.variants_data_augmentation import (
    nnUNetTrainerDA5,
    nnUNetTrainerDA5_10epochs,
    nnUNetTrainerDA5ord0,
    nnUNetTrainerDA5Segord0,
)

__all__ = ["nnUNetTrainerDA5", "nnUNetTrainerDA5ord0", "nnUNetTrainerDA5Segord0", "nnUNetTrainerDA5_10epochs"]
