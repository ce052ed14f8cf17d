"""nnU-Net v2's path of PolyLRScheduler: an alias of ``nnunetv2.training.lr_schedule.poly``."""

from nnunetv2.training.lr_schedule.poly import PolyLRScheduler

__all__ = ["PolyLRScheduler"]
