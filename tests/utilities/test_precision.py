"""network_autocast: float32 by default on the CPU, bfloat16 when asked (with a warning if emulated)."""

import logging

import torch

from nnunetv2.utilities import precision


def _conv_dtype(context) -> torch.dtype:
    with context:
        return torch.nn.functional.conv1d(torch.ones(1, 1, 4), torch.ones(1, 1, 2)).dtype


def test_cpu_runs_float32_unless_bf16_is_asked():
    cpu = torch.device("cpu")
    assert _conv_dtype(precision.network_autocast(cpu)) == torch.float32
    assert _conv_dtype(precision.network_autocast(cpu, cpu_bf16=True)) == torch.bfloat16


def test_emulated_bf16_is_warned_about_once(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    precision._warn_emulated_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        precision.network_autocast(torch.device("cpu"), cpu_bf16=True)
        precision.network_autocast(torch.device("cpu"), cpu_bf16=True)
    assert [r.getMessage() for r in caplog.records].count(
        "bfloat16 was requested but this CPU has no native bfloat16 arithmetic: expect it to be slower than float32"
    ) == 1
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    precision._warn_emulated_bf16.cache_clear()
    caplog.clear()
    precision.network_autocast(torch.device("cpu"), cpu_bf16=True)
    assert not caplog.records


def test_training_default_is_bf16_exactly_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_cpu_bf16(None) is True
    assert precision.resolve_cpu_bf16(False) is False  # --fp32
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_cpu_bf16(None) is False
    assert precision.resolve_cpu_bf16(True) is True  # --bf16 forces it
