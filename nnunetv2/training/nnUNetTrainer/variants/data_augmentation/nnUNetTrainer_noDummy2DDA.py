"""Alias of ``nnunetv2.training.trainers.variants_data_augmentation``
(nnU-Net v2's ``variants/data_augmentation/nnUNetTrainer_noDummy2DDA.py``)."""

from nnunetv2.training.trainers.variants_data_augmentation import (
    nnUNetTrainer_noDummy2DDA,
)

__all__ = ["nnUNetTrainer_noDummy2DDA"]
