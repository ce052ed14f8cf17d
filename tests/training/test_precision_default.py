"""The trainer's CPU precision: bfloat16 by default on native-bfloat16 CPUs, ``--fp32`` / ``--bf16`` override it."""

from __future__ import annotations

import pytest
import torch

from nnunetv2.cli.common import requested_cpu_bf16
from nnunetv2.cli.train import build_parser
from nnunetv2.training.run_training import TrainingRequest, build_trainer
from nnunetv2.utilities import precision
from tests.helpers.tiny_preprocessed import NAME_2D, make_preprocessed_dataset


@pytest.fixture
def dataset_2d(tmp_path, monkeypatch):
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir()
        monkeypatch.setenv(var, str(tmp_path / var))
    make_preprocessed_dataset(tmp_path, dim=2)
    torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("native", "requested", "expected"),
    [(True, None, True), (True, False, False), (False, None, False), (False, True, True)],
)
def test_trainer_precision(dataset_2d, monkeypatch, native, requested, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    trainer = build_trainer(TrainingRequest(NAME_2D, "2d", 0, device="cpu", cpu_bf16=requested))
    assert trainer.cpu_bf16 is expected


@pytest.mark.parametrize(("flags", "expected"), [([], None), (["--fp32"], False), (["--bf16"], True)])
def test_cli_precision_flags(flags, expected):
    args = build_parser().parse_args(["1", "2d", "0", *flags])
    assert requested_cpu_bf16(args) is expected


def test_bf16_and_fp32_together_are_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["1", "2d", "0", "--bf16", "--fp32"])
    assert "not allowed with argument" in capsys.readouterr().err
