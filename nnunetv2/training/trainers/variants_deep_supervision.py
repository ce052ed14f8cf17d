"""Trainer variants around deep supervision."""

from __future__ import annotations

from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


class nnUNetTrainerNoDeepSupervision(nnUNetTrainer):
    """Supervises only the full-resolution output (the decoder returns one tensor)."""

    enable_deep_supervision = False
