"""nnUNetTrainerCyclicLR on a tiny generated 2D dataset: schedule, ensemble checkpoints, index, resume, and the chain
train -> nnUNetv2_predict_checkpoints -> nnUNetv2_uncertainty."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from nnunetv2.cli.train import train_entry
from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
from nnunetv2.formats.checkpoint_index import load_checkpoint_index
from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.training.run_training import TrainingRequest, build_trainer
from nnunetv2.uncertainty.checkpoint_prediction import predict_checkpoint_ensemble_from_dataset_id
from nnunetv2.uncertainty.ensemble_uncertainty import compute_uncertainty
from tests.helpers.environment import use_test_folders

DATASET = "Dataset971_CyclicTiny"
TRAIN_FLAGS = [
    "-tr",
    "nnUNetTrainerCyclicLR",
    "-num_epochs",
    "6",
    "-num_of_cycles",
    "2",
    "-checkpoints",
    "late",
    "-num_iterations_per_epoch",
    "2",
    "-num_val_iterations_per_epoch",
    "1",
    "-seed",
    "0",
    "-device",
    "cpu",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Five 32x32 training cases and two test cases; fold 0 trained 6 epochs in 2 cycles with 'late' checkpoints."""
    root = tmp_path_factory.mktemp("cyclic")
    with pytest.MonkeyPatch.context() as mp:
        use_test_folders(root, mp)
        generate_synthetic_dataset_in_raw(
            971, "CyclicTiny", num_cases=5, shape=(32, 32), file_ending=".png", num_test_cases=2
        )
        plan_and_preprocess([971], ["2d"], num_processes=1, num_processes_fingerprint=1, show_progress=False)
        train_entry([DATASET, "2d", "0", *TRAIN_FLAGS])
    return root


@pytest.fixture
def env(trained, monkeypatch) -> Path:
    use_test_folders(trained, monkeypatch)
    return trained


def _fold(root: Path) -> Path:
    return root / "nnUNet_results" / DATASET / "nnUNetTrainerCyclicLR__nnUNetPlans__2d" / "fold_0"


def _expected_lrs(lengths: list[int]) -> list[float]:
    return [1e-2 * (1 - e / length) ** 0.9 for length in lengths for e in range(length)]


@pytest.mark.parametrize("cycles, lengths", [(1, [12]), (2, [6, 6]), (3, [4, 4, 4])])
def test_learning_rate_per_epoch(env, cycles, lengths):
    trainer = build_trainer(
        TrainingRequest(
            DATASET, "2d", 0, trainer_name="nnUNetTrainerCyclicLR", num_epochs=12, num_of_cycles=cycles, device="cpu"
        )
    )
    lrs = _lrs_per_epoch(trainer, 12)
    np.testing.assert_allclose(lrs, _expected_lrs(lengths))
    if cycles == 1:  # one cycle is nnUNetTrainer's schedule
        plain = build_trainer(TrainingRequest(DATASET, "2d", 0, num_epochs=12, device="cpu"))
        np.testing.assert_allclose(lrs, _lrs_per_epoch(plain, 12))


def _lrs_per_epoch(trainer, num_epochs: int) -> list[float]:
    """The rates configure_optimizers' scheduler sets when stepped per epoch, as on_train_epoch_start does."""
    trainer.initialize()
    rates = []
    for epoch in range(num_epochs):
        trainer.lr_scheduler.step(epoch)
        rates.append(trainer.optimizer.param_groups[0]["lr"])
    return rates


def test_checkpoint_epochs_of_both_rules(env):
    def epochs(rule, num_epochs, cycles):
        return build_trainer(
            TrainingRequest(
                DATASET,
                "2d",
                0,
                trainer_name="nnUNetTrainerCyclicLR",
                device="cpu",
                num_epochs=num_epochs,
                num_of_cycles=cycles,
                checkpoint_rule=rule,
            )
        ).ensemble_epochs()

    assert epochs("sparse", 1000, 1) == [699, 759, 819, 879, 939, 999]
    assert epochs("sparse", 300, 3) == [
        69,
        75,
        81,
        87,
        93,
        99,
        169,
        175,
        181,
        187,
        193,
        199,
        269,
        275,
        281,
        287,
        293,
        299,
    ]
    assert epochs("late", 40, 2) == list(range(10, 20)) + list(range(30, 40))


def test_training_saves_and_lists_the_ensemble(trained):
    fold = _fold(trained)
    index = load_checkpoint_index(fold)
    assert (index["num_epochs"], index["num_of_cycles"], index["checkpoint_rule"]) == (6, 2, "late")
    assert [(e["cycle"], e["epoch"]) for e in index["checkpoints"]] == [(1, 1), (1, 2), (1, 3), (2, 4), (2, 5), (2, 6)]
    for entry in index["checkpoints"]:
        assert entry["file"] == f"checkpoint_cycle{entry['cycle']}_epoch{entry['epoch']}.pth"
        checkpoint = load_checkpoint(fold / entry["file"])
        assert checkpoint["current_epoch"] == entry["epoch"] and checkpoint["trainer_name"] == "nnUNetTrainerCyclicLR"
    lrs = load_checkpoint(fold / "checkpoint_final.pth")["logging"]["lrs"]
    np.testing.assert_allclose(lrs, _expected_lrs([3, 3]))
    assert (
        "cyclic learning rate: 2 cycle(s) of ~3 epochs, 6 ensemble checkpoint(s) ('late')"
        in next(fold.glob("training_log_*.txt")).read_text()
    )


def test_resume_keeps_the_earlier_checkpoints(trained, tmp_path, monkeypatch):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    use_test_folders(tmp_path, monkeypatch)
    fold = _fold(tmp_path)
    # an interruption after epoch 4: checkpoint_latest is that epoch's state, later files are gone
    shutil.copy(fold / "checkpoint_cycle2_epoch4.pth", fold / "checkpoint_latest.pth")
    for name in ("checkpoint_final.pth", "checkpoint_cycle2_epoch5.pth", "checkpoint_cycle2_epoch6.pth"):
        (fold / name).unlink()
    before = (fold / "checkpoint_cycle1_epoch2.pth").stat().st_mtime_ns
    train_entry([DATASET, "2d", "0", *TRAIN_FLAGS, "--c"])
    index = load_checkpoint_index(fold)
    assert [e["epoch"] for e in index["checkpoints"]] == [1, 2, 3, 4, 5, 6]
    assert (fold / "checkpoint_cycle1_epoch2.pth").stat().st_mtime_ns == before
    assert all((fold / e["file"]).is_file() for e in index["checkpoints"])


def test_trained_ensemble_predicts_and_scores_the_test_cases(env, tmp_path):
    raw = env / "nnUNet_raw" / DATASET
    predict_checkpoint_ensemble_from_dataset_id(
        raw / "imagesTs", tmp_path / "p", 971, "2d", device="cpu", num_processes_preprocessing=1, show_progress=False
    )
    report = compute_uncertainty(tmp_path / "p", tmp_path / "u", reference_folder=raw / "labelsTs", show_progress=False)
    assert [r["case"] for r in report["cases"]] == ["case_005", "case_006"]
    assert all(r["num_checkpoints"] == 6 and 0 <= r["score"] <= 1 and 0 <= r["dice"] <= 1 for r in report["cases"])
    from PIL import Image

    for name in ("case_005.png", "uncertainty_maps/case_005.png"):
        assert Image.open(tmp_path / "u" / name).size == Image.open(raw / "imagesTs" / "case_005_0000.png").size


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["-tr", "nnUNetTrainerNoDeepSupervision", "-num_of_cycles", "2"],
            "-num_of_cycles needs a cyclic learning-rate trainer (-tr nnUNetTrainerCyclicLR or a "
            "subclass); 'nnUNetTrainerNoDeepSupervision' has none",
        ),
        (
            ["-tr", "nnUNetTrainerCyclicLR", "-num_epochs", "3", "-num_of_cycles", "4"],
            "-num_of_cycles must be an integer in [1, 3], got 4",
        ),
    ],
)
def test_bad_cyclic_flags(env, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        train_entry([DATASET, "2d", "1", "-device", "cpu", *flags])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
