"""Alias of ``nnunetv2.training.trainers.variants_training_length``
(nnU-Net v2's ``variants/training_length/nnUNetTrainer_Xepochs.py``)."""

from nnunetv2.training.trainers.variants_training_length import (
    nnUNetTrainer_1epoch,
    nnUNetTrainer_5epochs,
    nnUNetTrainer_10epochs,
    nnUNetTrainer_20epochs,
    nnUNetTrainer_50epochs,
    nnUNetTrainer_100epochs,
    nnUNetTrainer_250epochs,
    nnUNetTrainer_500epochs,
    nnUNetTrainer_750epochs,
    nnUNetTrainer_2000epochs,
    nnUNetTrainer_4000epochs,
    nnUNetTrainer_8000epochs,
)

__all__ = [
    "nnUNetTrainer_5epochs",
    "nnUNetTrainer_1epoch",
    "nnUNetTrainer_10epochs",
    "nnUNetTrainer_20epochs",
    "nnUNetTrainer_50epochs",
    "nnUNetTrainer_100epochs",
    "nnUNetTrainer_250epochs",
    "nnUNetTrainer_500epochs",
    "nnUNetTrainer_750epochs",
    "nnUNetTrainer_2000epochs",
    "nnUNetTrainer_4000epochs",
    "nnUNetTrainer_8000epochs",
]
