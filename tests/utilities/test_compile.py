"""compile_requested follows nnUNet_compile and nnU-Net v2's defaults; a failed compile falls back to eager mode."""

from __future__ import annotations

import logging

import pytest
import torch

from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities import compile as compile_module
from nnunetv2.utilities.compile import compile_network, compile_requested, is_compiled

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("value", "device", "purpose", "expected"),
    [
        (None, CUDA, "training", True),  # nnU-Net v2's default
        (None, CUDA, "prediction", False),  # its predictor compiles only on request
        (None, CPU, "training", False),
        ("1", CPU, "training", True),
        ("True", CPU, "prediction", True),
        ("0", CUDA, "training", False),
        ("f", CUDA, "training", False),
        ("1", torch.device("meta"), "training", False),
    ],
)
def test_compile_follows_the_variable_and_the_defaults(monkeypatch, value, device, purpose, expected):
    if value is None:
        monkeypatch.delenv("nnUNet_compile", raising=False)
    else:
        monkeypatch.setenv("nnUNet_compile", value)
    wanted, reason = compile_requested(device, purpose)
    assert wanted is expected
    assert reason


def test_a_garbled_variable_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("nnUNet_compile", "sometimes")
    with pytest.raises(NnUNetError, match="nnUNet_compile='sometimes' is not understood"):
        compile_requested(CPU, "training")


def test_nothing_is_compiled_when_off(monkeypatch):
    monkeypatch.setenv("nnUNet_compile", "0")
    network = torch.nn.Conv2d(1, 2, 3)
    assert not compile_network(network, CPU, "training")
    assert not is_compiled(network)


def test_a_failed_compile_runs_the_network_uncompiled_with_one_line(monkeypatch, caplog):
    from torch._dynamo.exc import InternalTorchDynamoError

    def failing_compile(function, **kwargs):
        def compiled(*args, **kw):
            raise InternalTorchDynamoError("no C++ compiler found\nlong traceback")

        return compiled

    monkeypatch.setenv("nnUNet_compile", "1")
    monkeypatch.setattr(torch, "compile", failing_compile)
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    x = torch.randn(1, 1, 8, 8)
    expected = network._call_impl(x)
    with caplog.at_level(logging.INFO, logger=compile_module.__name__):
        assert compile_network(network, CPU, "prediction")
        assert is_compiled(network)
        assert torch.equal(network(x), expected)
        assert torch.equal(network(x), expected)  # stays eager: no second attempt, no second message
    assert not is_compiled(network)
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures == [
        "torch.compile failed (InternalTorchDynamoError: no C++ compiler found); the network runs uncompiled "
        "(nnUNet_compile=0 skips compiling)"
    ]
    # the module is unchanged for checkpoints
    assert set(network.state_dict()) == {"0.weight", "0.bias"}


def test_a_fault_of_the_network_itself_still_raises(monkeypatch):
    from torch._dynamo.exc import TorchRuntimeError

    def failing_compile(function, **kwargs):
        def compiled(*args, **kw):
            raise TorchRuntimeError("shape mismatch while tracing")

        return compiled

    monkeypatch.setenv("nnUNet_compile", "1")
    monkeypatch.setattr(torch, "compile", failing_compile)
    network = torch.nn.Conv2d(1, 2, 3)
    compile_network(network, CPU, "prediction")
    with pytest.raises(RuntimeError, match="channels"):
        network(torch.randn(1, 3, 8, 8))  # wrong channel count: eager mode raises torch's own error


@pytest.mark.cuda
def test_compiled_network_on_cuda_matches_eager(monkeypatch):
    monkeypatch.delenv("nnUNet_compile", raising=False)
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.InstanceNorm3d(4), torch.nn.ReLU())
    network = network.to(CUDA)
    x = torch.randn(2, 1, 16, 16, 16, device=CUDA)
    expected = network(x)
    assert compile_network(network, CUDA, "training")
    actual = network(x)
    assert is_compiled(network)  # compiled for real: no fallback happened
    torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-3)
    actual.sum().backward()
    assert network[0].weight.grad is not None
