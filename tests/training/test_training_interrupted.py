"""A training run killed with SIGKILL (mid-epoch or mid-checkpoint-write) resumes with --c from an intact checkpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.training.run_training import TrainingRequest, run_training
from tests.helpers.tiny_preprocessed import NAME_2D, make_preprocessed_dataset

FAST = ["-num_iterations_per_epoch", "3", "-num_val_iterations_per_epoch", "2", "-device", "cpu"]
TRAIN = "from nnunetv2.cli.train import train_entry; train_entry()"
# the second write of checkpoint_latest gets half a file, then the process is killed
KILLED_WHILE_WRITING = """
import os, signal, sys
import torch
real_save, latest_writes = torch.save, []
def save_and_die_on_second_latest(obj, f, *args, **kwargs):
    if os.path.basename(getattr(f, "name", str(f))).startswith(".checkpoint_latest.pth."):
        latest_writes.append(f)
        if len(latest_writes) == 2:
            f.write(b"PK half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = save_and_die_on_second_latest
from nnunetv2.cli.train import train_entry
train_entry()
"""


@pytest.fixture
def dataset_2d(tmp_path, monkeypatch) -> dict[str, str]:
    """A tiny 2D preprocessed dataset; returns the environment for a training subprocess."""
    make_preprocessed_dataset(tmp_path, dim=2)
    env = dict(os.environ, OMP_NUM_THREADS="1", nnUNet_n_proc_DA="1")  # a real run: one augmentation worker
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(tmp_path / var))
        env[var] = str(tmp_path / var)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    torch.set_num_threads(1)
    return env


def _fold(env: dict[str, str]) -> Path:
    return Path(env["nnUNet_results"]) / NAME_2D / "nnUNetTrainer__nnUNetPlans__2d" / "fold_0"


def _every_checkpoint_loads(fold: Path) -> dict[str, dict]:
    return {p.name: load_checkpoint(p) for p in fold.glob("*.pth")}  # raises on a corrupt file


def _resume(num_epochs: int, caplog) -> dict:
    caplog.clear()
    caplog.set_level("INFO")
    fold = run_training(
        TrainingRequest(
            NAME_2D,
            "2d",
            0,
            num_epochs=num_epochs,
            continue_training=True,
            num_iterations_per_epoch=3,
            num_val_iterations_per_epoch=2,
            device="cpu",
        )
    )
    assert not list(fold.glob(".*.tmp"))  # the killed run's half-written files are cleaned up
    return load_checkpoint(fold / "checkpoint_final.pth")


def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(dataset_2d, caplog):
    argv = [NAME_2D, "2d", "0", "-num_epochs", "3", "-save_every", "1", *FAST]
    result = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_WRITING, *argv], env=dataset_2d, timeout=600, capture_output=True, text=True
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    fold = _fold(dataset_2d)
    assert len(list(fold.glob(".checkpoint_latest.pth.*.tmp"))) == 1  # the write that was cut short
    checkpoints = _every_checkpoint_loads(fold)
    assert "checkpoint_final.pth" not in checkpoints and checkpoints["checkpoint_latest.pth"]["current_epoch"] == 1

    final = _resume(3, caplog)
    assert "checkpoint_latest.pth at epoch 1" in caplog.text
    assert final["current_epoch"] == 3 and len(final["logging"]["train_losses"]) == 3
    assert final["logging"]["train_losses"][0] == checkpoints["checkpoint_latest.pth"]["logging"]["train_losses"][0]


def test_kill_at_an_arbitrary_moment_loses_only_the_epochs_since_the_last_checkpoint(dataset_2d, caplog):
    argv = [NAME_2D, "2d", "0", "-num_epochs", "40", "-save_every", "2", *FAST]
    process = subprocess.Popen(
        [sys.executable, "-c", TRAIN, *argv], env=dataset_2d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    fold = _fold(dataset_2d)
    try:
        deadline = time.monotonic() + 600
        while not (fold / "checkpoint_latest.pth").exists():
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
            time.sleep(0.02)
        time.sleep(0.4)  # somewhere in the following epochs
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    epochs_logged = len(re.findall(r"epoch \d+/40:", next(fold.glob("training_log_*.txt")).read_text()))
    latest = _every_checkpoint_loads(fold)["checkpoint_latest.pth"]
    # lost: the epochs after the last checkpoint_latest, at most -save_every (a kill during its write)
    assert 2 <= latest["current_epoch"] <= epochs_logged <= latest["current_epoch"] + 2

    final = _resume(latest["current_epoch"] + 1, caplog)
    assert f"checkpoint_latest.pth at epoch {latest['current_epoch']}" in caplog.text
    assert final["logging"]["train_losses"][:-1] == latest["logging"]["train_losses"]
