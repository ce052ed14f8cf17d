"""Deep supervision: one loss per decoder output, weighted 1/2^i and normalised, the lowest ignored."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def deep_supervision_weights(num_outputs: int, keep_lowest_output: bool = False) -> list[float]:
    """Return nnU-Net v2's output weights: 1/2^i, the lowest resolution 0 (1e-6 if kept), summing to 1.

    ``keep_lowest_output`` is for DDP, which fails on parameters that receive no gradient. A network
    with a single output keeps it (nnU-Net would divide by zero there).
    """
    weights = np.array([1 / 2**i for i in range(num_outputs)])
    if num_outputs > 1:
        weights[-1] = 1e-6 if keep_lowest_output else 0.0
    return (weights / weights.sum()).tolist()


class DeepSupervisionWrapper(nn.Module):
    """Weighted sum of ``loss`` over (output, target) pairs, highest resolution first (nnU-Net v2's signature).

    ``weight_factors`` None weighs every output 1.
    """

    def __init__(self, loss: nn.Module, weight_factors: Sequence[float] | None = None):
        super().__init__()
        self.loss = loss
        self.weight_factors = None if weight_factors is None else [float(w) for w in weight_factors]

    @property
    def weights(self) -> list[float] | None:
        """Return the output weights."""
        return self.weight_factors

    def forward(self, *args: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the weighted loss over zipped arguments; outputs with weight 0 are not computed at all."""
        weights = self.weight_factors or [1.0] * len(args[0])
        if any(len(a) != len(weights) for a in args):
            raise ValueError(
                f"deep supervision expects {len(weights)} outputs and targets, got {[len(a) for a in args]}"
            )
        return sum(w * self.loss(*inputs) for w, inputs in zip(weights, zip(*args)) if w != 0)


# the name this package used before adopting nnU-Net v2's
DeepSupervisionLoss = DeepSupervisionWrapper
