"""Choose the torch device from a ``-device`` flag: CUDA when present, else the CPU."""

from __future__ import annotations

from nnunetv2.exceptions import NnUNetError


def resolve_device(name: str | None = None):
    """Return a ``torch.device`` for 'cuda', 'cuda:N', 'cpu', 'mps' or None (auto)."""
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NnUNetError("-device cuda was requested but no CUDA device is available")
        return torch.device(name)
    if name == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise NnUNetError("-device mps was requested but MPS is not available")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise NnUNetError(f"unknown device '{name}' (use cuda, cpu or mps)")
