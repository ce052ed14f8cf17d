"""Alias of ``nnunetv2.training.trainers.variants_lr_schedule``
(nnU-Net v2's ``variants/lr_schedule/nnUNetTrainerCosAnneal.py``)."""

from nnunetv2.training.trainers.variants_lr_schedule import (
    nnUNetTrainerCosAnneal,
)

__all__ = ["nnUNetTrainerCosAnneal"]
