"""nnU-Net v2's path of the warm-up schedulers: an alias of ``nnunetv2.training.lr_schedule.warmup``."""

from nnunetv2.training.lr_schedule.warmup import (
    Lin_incr_LRScheduler,
    Lin_incr_offset_LRScheduler,
    PolyLRScheduler_offset,
)

__all__ = ["Lin_incr_LRScheduler", "Lin_incr_offset_LRScheduler", "PolyLRScheduler_offset"]
