"""Channels-last memory format for the network (``nnUNet_channels_last=1``), used by training and prediction.

oneDNN's convolutions run 15-21% faster on channels-last (NHWC / NDHWC) tensors in bfloat16 on
this project's benchmark CPU, but the whole training step and prediction tile do not: torch's
instance normalisation copies channels-last tensors back to contiguous and its backward pass is
2-5x slower on them (documentation/benchmarks.md). So the default is off everywhere, as in
nnU-Net v2; ``nnUNet_channels_last=1`` turns it on for a machine or torch where it pays off.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from nnunetv2.exceptions import NnUNetError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

CHANNELS_LAST_VARIABLE = "nnUNet_channels_last"
_TRUE = ("true", "1", "t", "yes", "y")
_FALSE = ("false", "0", "f", "no", "n", "")


def channels_last_requested(device: torch.device, cpu_bf16: bool) -> tuple[bool, str]:
    """Return (channels-last or not, why) for a network on ``device`` from ``nnUNet_channels_last`` and the default."""
    value = os.environ.get(CHANNELS_LAST_VARIABLE)
    if value is not None:
        lowered = value.strip().lower()
        if lowered not in _TRUE + _FALSE:
            raise NnUNetError(f"{CHANNELS_LAST_VARIABLE}={value!r} is not understood: use 1/true or 0/false")
        return lowered in _TRUE, f"{CHANNELS_LAST_VARIABLE}={value}"
    if default_channels_last(device, cpu_bf16):
        return True, f"default on {device.type} ({CHANNELS_LAST_VARIABLE}=0 turns it off)"
    return False, f"default on {device.type} ({CHANNELS_LAST_VARIABLE}=1 turns it on)"


def resolve_channels_last(requested: bool | None, device: torch.device, cpu_bf16: bool) -> bool:
    """``requested`` when given (a trainer attribute or predictor argument), else ``channels_last_requested``."""
    if requested is not None:
        return requested
    wanted, reason = channels_last_requested(device, cpu_bf16)
    logger.debug("channels-last %s: %s", "on" if wanted else "off", reason)
    return wanted


def default_channels_last(device: torch.device, cpu_bf16: bool) -> bool:
    """Whether the network runs channels-last unless told otherwise: never (measured slower on the CPU, see above).

    Kept as the one place to change when a measurement shows a win for some device and precision.
    """
    return False


def memory_format_for(ndim: int) -> torch.memory_format:
    """The channels-last format of a ``ndim``-dimensional (batch, channel, *spatial) tensor."""
    import torch

    if ndim == 4:
        return torch.channels_last
    if ndim == 5:
        return torch.channels_last_3d
    raise ValueError(f"channels-last needs a 2D or 3D image batch (4 or 5 dimensions), got {ndim}")


def network_ndim(network: torch.nn.Module) -> int | None:
    """Dimensions of the network's input batch (4 for 2D, 5 for 3D) from its first convolution; None without one."""
    import torch

    for module in network.modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            return module.weight.ndim
    return None


def set_network_memory_format(network: torch.nn.Module, channels_last: bool) -> bool:
    """Store the network's convolution weights channels-last (or contiguous) in place; return whether channels-last.

    A network without 2D or 3D convolutions stays as it is (False).
    """
    import torch

    ndim = network_ndim(network)
    if ndim not in (4, 5):
        return False
    layout = memory_format_for(ndim) if channels_last else torch.contiguous_format
    # Module.to converts only the parameters and buffers of that rank; torch's stubs omit memory_format
    network.to(memory_format=layout)  # type: ignore[call-overload]
    return channels_last


def as_network_input(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` in the layout the network runs in (a copy only when the layout changes)."""
    if not channels_last or x.ndim not in (4, 5):
        return x
    return x.contiguous(memory_format=memory_format_for(x.ndim))
