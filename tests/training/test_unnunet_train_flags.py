"""UnnUNet's training command (``-num_of_cycles`` / ``-checkpoints`` without ``-tr``) on the default trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nnunetv2.cli.train import train_entry
from nnunetv2.formats.checkpoint_index import load_checkpoint_index
from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.training.trainers.nnUNetTrainerCyclicLR import trainer_for_cycle_flags
from tests.helpers.tiny_preprocessed import NAME_2D, make_preprocessed_dataset

FAST = ["-num_iterations_per_epoch", "2", "-num_val_iterations_per_epoch", "1", "-seed", "0", "-device", "cpu"]


@pytest.fixture
def dataset_2d(tmp_path, monkeypatch) -> Path:
    make_preprocessed_dataset(tmp_path, dim=2)
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(tmp_path / var))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    return tmp_path


def _train(root: Path, results: str, *flags: str) -> Path:
    """Train fold 0 for 3 epochs into ``root/results``; return the model's trainer folder parent."""
    (root / results).mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("nnUNet_results", str(root / results))
        train_entry([NAME_2D, "2d", "0", "--npz", "-num_epochs", "3", *flags, *FAST])
    return root / results / NAME_2D


def test_trainer_choice():
    assert trainer_for_cycle_flags("nnUNetTrainer", None, None) == "nnUNetTrainer"
    assert trainer_for_cycle_flags("nnUNetTrainer", 1, None) == "nnUNetTrainer"
    assert trainer_for_cycle_flags("nnUNetTrainer", 3, None) == "nnUNetTrainerCyclicLR"
    assert trainer_for_cycle_flags("nnUNetTrainer", 1, "late") == "nnUNetTrainerCyclicLR"
    assert trainer_for_cycle_flags("nnUNetTrainerCyclicLR", None, None) == "nnUNetTrainerCyclicLR"
    assert trainer_for_cycle_flags("nnUNetTrainer_5epochs", 3, None) == "nnUNetTrainer_5epochs"


def test_one_cycle_is_plain_nnunet_bit_for_bit(dataset_2d):
    plain = _train(dataset_2d, "results_plain")
    one_cycle = _train(dataset_2d, "results_tc1", "-num_of_cycles", "1")
    cyclic_one = _train(dataset_2d, "results_cyclic1", "-num_of_cycles", "1", "-checkpoints", "late")
    reference = load_checkpoint(plain / "nnUNetTrainer__nnUNetPlans__2d" / "fold_0" / "checkpoint_final.pth")
    assert [p.name for p in one_cycle.iterdir()] == ["nnUNetTrainer__nnUNetPlans__2d"]
    same_trainer = load_checkpoint(one_cycle / "nnUNetTrainer__nnUNetPlans__2d" / "fold_0" / "checkpoint_final.pth")
    # with -checkpoints the cyclic trainer runs one cycle: nnUNetTrainer's schedule, plus ensemble checkpoints
    cyclic_fold = cyclic_one / "nnUNetTrainerCyclicLR__nnUNetPlans__2d" / "fold_0"
    cyclic = load_checkpoint(cyclic_fold / "checkpoint_final.pth")
    for other in (same_trainer, cyclic):
        weights = other["network_weights"]
        assert all(torch.equal(weights[k], reference["network_weights"][k]) for k in reference["network_weights"])
    assert len(load_checkpoint_index(cyclic_fold)["checkpoints"]) == 3


def test_unnunet_command_trains_cycles_with_the_default_trainer(dataset_2d):
    results = _train(dataset_2d, "results", "-num_of_cycles", "3", "-checkpoints", "sparse")
    fold = results / "nnUNetTrainerCyclicLR__nnUNetPlans__2d" / "fold_0"
    index = load_checkpoint_index(fold)
    assert (index["num_of_cycles"], index["checkpoint_rule"]) == (3, "sparse")
    assert [e["epoch"] for e in index["checkpoints"]] == [1, 2, 3]
    assert (fold / "validation" / "summary.json").is_file() and list((fold / "validation").glob("*.npz"))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["-num_of_cycles", "0"], "-num_of_cycles must be an integer >= 1, got 0"),
        (["-num_of_cycles", "5"], "-num_of_cycles must be an integer in [1, 3], got 5"),
        (["-tr", "nnUNetTrainerNoDeepSupervision", "-num_of_cycles", "2"], "-num_of_cycles needs a cyclic"),
    ],
)
def test_bad_cycle_flags_are_one_line(dataset_2d, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        train_entry([NAME_2D, "2d", "0", "-num_epochs", "3", *flags, *FAST])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_bad_checkpoint_rule_is_one_line(dataset_2d, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_entry([NAME_2D, "2d", "0", "-checkpoints", "both", *FAST])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "invalid choice: 'both'" in err[-1]
