"""Alias of ``nnunetv2.training.trainers.variants_data_augmentation``
(nnU-Net v2's ``variants/data_augmentation/nnUNetTrainerDAOrd0.py``)."""

from nnunetv2.training.trainers.variants_data_augmentation import (
    nnUNetTrainer_DASegOrd0,
    nnUNetTrainer_DASegOrd0_NoMirroring,
)

__all__ = ["nnUNetTrainer_DASegOrd0", "nnUNetTrainer_DASegOrd0_NoMirroring"]
