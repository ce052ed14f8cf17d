"""Alias of ``nnunetv2.training.trainers.variants_lr_schedule``
(nnU-Net v2's ``variants/lr_schedule/nnUNetTrainer_warmup.py``)."""

from nnunetv2.training.trainers.variants_lr_schedule import (
    nnUNetTrainer_warmup,
)

__all__ = ["nnUNetTrainer_warmup"]
