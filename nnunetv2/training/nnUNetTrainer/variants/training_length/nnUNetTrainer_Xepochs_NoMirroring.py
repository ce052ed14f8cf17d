"""Alias of ``nnunetv2.training.trainers.variants_training_length``
(nnU-Net v2's ``variants/training_length/nnUNetTrainer_Xepochs_NoMirroring.py``)."""

from nnunetv2.training.trainers.variants_training_length import (
    nnUNetTrainer_250epochs_NoMirroring,
    nnUNetTrainer_2000epochs_NoMirroring,
    nnUNetTrainer_4000epochs_NoMirroring,
    nnUNetTrainer_8000epochs_NoMirroring,
)

__all__ = [
    "nnUNetTrainer_250epochs_NoMirroring",
    "nnUNetTrainer_2000epochs_NoMirroring",
    "nnUNetTrainer_4000epochs_NoMirroring",
    "nnUNetTrainer_8000epochs_NoMirroring",
]
