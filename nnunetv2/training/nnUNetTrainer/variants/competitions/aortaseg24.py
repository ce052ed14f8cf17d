"""Alias of ``nnunetv2.training.trainers.variants_data_augmentation``
(nnU-Net v2's ``variants/competitions/aortaseg24.py``)."""

from nnunetv2.training.trainers.variants_data_augmentation import (
    nnUNetTrainer_onlyMirror01_DA5,
)

__all__ = ["nnUNetTrainer_onlyMirror01_DA5"]
