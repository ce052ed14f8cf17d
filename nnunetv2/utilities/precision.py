"""Mixed precision for the network: float16 autocast on CUDA (as nnU-Net v2), bfloat16 on the CPU where native.

On CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX) bfloat16 convolutions run about
twice as fast as float32 ones, for training and prediction; results then differ slightly from
float32 (as nnU-Net v2's float16 results on a GPU do). It is the default there (``--fp32`` opts
out) and opt-in elsewhere (``--bf16``, emulated and slow).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

_NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes in bfloat16 natively (Linux: from /proc/cpuinfo; elsewhere False)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    return bool(flags & _NATIVE_BF16_FLAGS)


def default_cpu_bf16() -> bool:
    """Whether the network runs in bfloat16 on the CPU unless told otherwise: where the CPU has native bfloat16.

    Measured (documentation/benchmarks.md): about 2x faster training steps and prediction tiles, the
    same test Dice within 0.005 as float32 for training, and predicted labels equal to float32's at
    99.95% of the voxels of a trained model.
    """
    return cpu_has_native_bf16()


def resolve_cpu_bf16(requested: bool | None) -> bool:
    """``requested`` when given (``--bf16`` / ``--fp32``), else ``default_cpu_bf16()``."""
    return default_cpu_bf16() if requested is None else requested


@functools.cache
def _warn_emulated_bf16() -> None:
    logger.warning(
        "bfloat16 was requested but this CPU has no native bfloat16 arithmetic: expect it to be slower than float32"
    )


def network_autocast(device: torch.device, cpu_bf16: bool = False) -> contextlib.AbstractContextManager:
    """The autocast context for running the network on ``device`` (a no-op for float32)."""
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda")
    if device.type == "cpu" and cpu_bf16:
        if not cpu_has_native_bf16():
            _warn_emulated_bf16()
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
