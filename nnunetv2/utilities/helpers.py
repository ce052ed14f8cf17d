"""nnU-Net v2's ``nnunetv2.utilities.helpers``: small torch helpers under their nnU-Net v2 names."""

from __future__ import annotations

import contextlib

import torch


def softmax_helper_dim0(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, 0)


def softmax_helper_dim1(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, 1)


def empty_cache(device: torch.device) -> None:
    """Release cached accelerator memory (nothing to do on the CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


dummy_context = contextlib.nullcontext
