"""Training on CUDA: float16 AMP with torch.compile by default, plain checkpoints, 2-GPU DDP; skipped without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.training.run_training import TrainingRequest, build_trainer, run_training
from nnunetv2.utilities.compile import is_compiled
from tests.helpers.tiny_preprocessed import NAME_2D, NAME_3D, make_preprocessed_dataset

pytestmark = pytest.mark.cuda
FAST = dict(num_iterations_per_epoch=3, num_val_iterations_per_epoch=2, num_data_workers=0)


@pytest.fixture
def folders(tmp_path, monkeypatch) -> Path:
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir()
        monkeypatch.setenv(var, str(tmp_path / var))
    monkeypatch.delenv("nnUNet_compile", raising=False)  # nnU-Net v2's default: compiled on CUDA
    return tmp_path


@pytest.mark.parametrize("dim", [2, 3])
def test_compiled_amp_training_learns_a_fixed_batch(folders, dim):
    make_preprocessed_dataset(folders, dim=dim)
    name, configuration = (NAME_2D, "2d") if dim == 2 else (NAME_3D, "3d_fullres")
    trainer = build_trainer(TrainingRequest(name, configuration, 0, device="cuda", seed=0, **FAST))
    trainer.on_train_start()
    assert trainer.grad_scaler is not None
    batch = next(trainer.batches.train)
    trainer.network.train()
    losses = [trainer.train_step(batch) for _ in range(12)]
    trainer.close_batch_streams()
    assert is_compiled(trainer.network), "torch.compile fell back to eager mode"
    assert losses[-1] < losses[0] - 0.1, losses


def test_compiled_run_writes_plain_checkpoints_and_validates(folders):
    make_preprocessed_dataset(folders, dim=3)
    fold = run_training(TrainingRequest(NAME_3D, "3d_fullres", 0, device="cuda", num_epochs=2, seed=0, **FAST))
    weights = load_checkpoint(fold / "checkpoint_final.pth")["network_weights"]
    assert not any("_orig_mod" in key for key in weights)  # loadable by nnU-Net v2 and by the CPU
    assert (fold / "validation" / "summary.json").is_file()
    assert "torch.compile on" in next(fold.glob("training_log_*.txt")).read_text()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_ddp_on_two_gpus_ends_with_identical_weights(folders):
    make_preprocessed_dataset(folders, dim=2)
    fold = run_training(TrainingRequest(NAME_2D, "2d", 0, num_gpus=2, device="cuda", num_epochs=1, seed=0, **FAST))
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "x 2 processes" in log and "network weights identical on all 2 ranks" in log
