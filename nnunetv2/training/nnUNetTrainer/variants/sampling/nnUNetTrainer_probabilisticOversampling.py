"""Alias of ``nnunetv2.training.trainers.variants_sampling``
(nnU-Net v2's ``variants/sampling/nnUNetTrainer_probabilisticOversampling.py``)."""

from nnunetv2.training.trainers.variants_sampling import (
    nnUNetTrainer_probabilisticOversampling,
    nnUNetTrainer_probabilisticOversampling_010,
    nnUNetTrainer_probabilisticOversampling_033,
)

__all__ = [
    "nnUNetTrainer_probabilisticOversampling",
    "nnUNetTrainer_probabilisticOversampling_033",
    "nnUNetTrainer_probabilisticOversampling_010",
]
