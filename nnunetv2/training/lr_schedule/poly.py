"""nnU-Net v2's polynomial learning-rate decay as a torch scheduler stepped once per epoch.

``EpochLRScheduler`` is the base of every schedule here: ``step(epoch)`` sets the rate of that epoch
(nnU-Net v2's trainer calls ``lr_scheduler.step(self.current_epoch)``), ``step()`` the next one.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


def poly_lr(step: int, initial_lr: float, max_steps: int, exponent: float = 0.9) -> float:
    """Return initial_lr * (1 - step / max_steps) ** exponent (0 once past ``max_steps``)."""
    return initial_lr * max(0.0, 1 - step / max_steps) ** exponent


class EpochLRScheduler(LRScheduler, metaclass=ABCMeta):
    """A scheduler whose rate is a function of the step alone (``lr_at``); ``step(n)`` jumps to step n."""

    def __init__(self, optimizer: Optimizer, current_step: int | None = None):
        self.ctr = 0
        super().__init__(optimizer, current_step if current_step is not None else -1)

    @abstractmethod
    def lr_at(self, step: int) -> float:
        """Return the learning rate of ``step`` (0-based)."""

    def step(self, current_step: int | None = None) -> None:
        """Set every parameter group's rate to that of ``current_step`` (None: the next step)."""
        if current_step is None or current_step == -1:
            current_step = self.ctr
            self.ctr += 1
        lr = self.lr_at(int(current_step))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """Return the rates last set."""
        return self._last_lr


class PolyLRScheduler(EpochLRScheduler):
    """lr(step) = initial_lr * (1 - step / max_steps) ** exponent (nnU-Net v2's name and signature)."""

    def __init__(
        self,
        optimizer: Optimizer,
        initial_lr: float,
        max_steps: int,
        exponent: float = 0.9,
        current_step: int | None = None,
    ):
        self.initial_lr, self.max_steps, self.exponent = initial_lr, max_steps, exponent
        super().__init__(optimizer, current_step)

    def lr_at(self, step: int) -> float:
        """Return the poly-decayed rate of ``step``."""
        return poly_lr(step, self.initial_lr, self.max_steps, self.exponent)
