"""Alias of ``nnunetv2.training.trainers.variants_data_augmentation``
(nnU-Net v2's ``variants/data_augmentation/nnUNetTrainerNoMirroring.py``)."""

from nnunetv2.training.trainers.variants_data_augmentation import (
    nnUNetTrainer_onlyMirror01,
    nnUNetTrainer_onlyMirror01_1500ep,
    nnUNetTrainer_onlyMirror01_DASegOrd0,
    nnUNetTrainerNoMirroring,
)

__all__ = [
    "nnUNetTrainerNoMirroring",
    "nnUNetTrainer_onlyMirror01",
    "nnUNetTrainer_onlyMirror01_1500ep",
    "nnUNetTrainer_onlyMirror01_DASegOrd0",
]
