"""nnU-Net v2's polynomial learning-rate decay, set once per epoch."""

from __future__ import annotations


class PolyLRSchedule:
    """lr(epoch) = initial_lr * (1 - epoch / num_epochs) ** exponent (0 once past the last epoch)."""

    def __init__(self, initial_lr: float, num_epochs: int, exponent: float = 0.9):
        self.initial_lr, self.num_epochs, self.exponent = initial_lr, num_epochs, exponent

    def __call__(self, epoch: int) -> float:
        """Return the learning rate of ``epoch`` (0-based)."""
        remaining = max(0.0, 1 - epoch / self.num_epochs)
        return self.initial_lr * remaining**self.exponent
