"""Channels-last: off by default, ``nnUNet_channels_last`` turns it on; the network and its inputs really switch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities import memory_format
from nnunetv2.utilities.memory_format import (
    CHANNELS_LAST_VARIABLE,
    as_network_input,
    channels_last_requested,
    resolve_channels_last,
    set_network_memory_format,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize("cpu_bf16", [False, True])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_off_by_default_everywhere(monkeypatch, device, cpu_bf16):
    monkeypatch.delenv(CHANNELS_LAST_VARIABLE, raising=False)
    wanted, reason = channels_last_requested(torch.device(device), cpu_bf16)
    assert wanted is False and f"{CHANNELS_LAST_VARIABLE}=1 turns it on" in reason


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False), ("no", False)])
def test_variable_decides(monkeypatch, value, expected):
    monkeypatch.setenv(CHANNELS_LAST_VARIABLE, value)
    assert channels_last_requested(CPU, cpu_bf16=True) == (expected, f"{CHANNELS_LAST_VARIABLE}={value}")
    assert resolve_channels_last(None, CPU, True) is expected
    assert resolve_channels_last(not expected, CPU, True) is (not expected)  # an explicit choice wins


def test_unknown_value_is_refused(monkeypatch):
    monkeypatch.setenv(CHANNELS_LAST_VARIABLE, "maybe")
    with pytest.raises(NnUNetError, match="nnUNet_channels_last='maybe' is not understood"):
        channels_last_requested(CPU, cpu_bf16=False)


def test_default_is_the_one_switch(monkeypatch):
    monkeypatch.delenv(CHANNELS_LAST_VARIABLE, raising=False)
    monkeypatch.setattr(memory_format, "default_channels_last", lambda device, cpu_bf16: cpu_bf16)
    assert channels_last_requested(CPU, cpu_bf16=True)[0] is True
    assert channels_last_requested(CPU, cpu_bf16=False)[0] is False


@pytest.mark.parametrize(
    ("conv", "shape", "layout"),
    [(nn.Conv2d, (1, 2, 6, 5), torch.channels_last), (nn.Conv3d, (1, 2, 4, 6, 5), torch.channels_last_3d)],
)
def test_network_and_input_switch_layout(conv, shape, layout):
    network = nn.Sequential(conv(2, 8, 3, padding=1), nn.LeakyReLU(), conv(8, 3, 1))
    assert set_network_memory_format(network, True) is True
    assert all(m.weight.is_contiguous(memory_format=layout) for m in network if isinstance(m, conv))
    assert not network[0].weight.is_contiguous()
    x = torch.randn(shape)
    assert as_network_input(x, True).is_contiguous(memory_format=layout)
    assert as_network_input(x, False) is x
    assert set_network_memory_format(network, False) is False
    assert all(m.weight.is_contiguous() for m in network if isinstance(m, conv))


def test_network_without_image_convolutions_stays():
    network = nn.Sequential(nn.Linear(3, 2))
    assert set_network_memory_format(network, True) is False
