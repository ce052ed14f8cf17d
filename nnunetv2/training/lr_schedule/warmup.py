"""Warm-up schedules of nnU-Net v2's ``nnUNetTrainer_warmup`` (upstream names and signatures)."""

from __future__ import annotations

from torch.optim import Optimizer

from nnunetv2.training.lr_schedule.poly import EpochLRScheduler, poly_lr


class Lin_incr_LRScheduler(EpochLRScheduler):
    """lr(step) = max_lr * (step + 1) / max_steps: a linear ramp reaching ``max_lr`` after ``max_steps``."""

    def __init__(self, optimizer: Optimizer, max_lr: float, max_steps: int, current_step: int | None = None):
        self.max_lr, self.max_steps = max_lr, max_steps
        super().__init__(optimizer, current_step)

    def lr_at(self, step: int) -> float:
        """Return the ramped rate of ``step``."""
        return self.max_lr / self.max_steps * (1 + step)


class Lin_incr_offset_LRScheduler(EpochLRScheduler):
    """The linear ramp of Lin_incr_LRScheduler starting at ``start_step``."""

    def __init__(
        self, optimizer: Optimizer, max_lr: float, max_steps: int, start_step: int, current_step: int | None = None
    ):
        self.max_lr, self.max_steps, self.start_step = max_lr, max_steps, start_step
        super().__init__(optimizer, current_step)

    def lr_at(self, step: int) -> float:
        """Return the ramped rate of ``step``."""
        return self.max_lr / self.max_steps * (1 + step - self.start_step)


class PolyLRScheduler_offset(EpochLRScheduler):
    """Poly decay from ``initial_lr`` over steps ``start_step`` .. ``max_steps`` (constant before)."""

    def __init__(
        self,
        optimizer: Optimizer,
        initial_lr: float,
        max_steps: int,
        start_step: int,
        exponent: float = 0.9,
        current_step: int | None = None,
    ):
        self.initial_lr, self.start_step, self.exponent = initial_lr, start_step, exponent
        self.max_steps = max_steps - start_step
        super().__init__(optimizer, current_step)

    def lr_at(self, step: int) -> float:
        """Return the decayed rate of ``step``."""
        return poly_lr(max(0, step - self.start_step), self.initial_lr, self.max_steps, self.exponent)
