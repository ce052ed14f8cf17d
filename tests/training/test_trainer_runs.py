"""End-to-end trainer runs on tiny hand-made preprocessed datasets (2D and 3D), through the library and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import blosc2
import numpy as np
import pytest
import torch

from nnunetv2.cli.train import train_entry
from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.training.checkpointing import CHECKPOINT_KEYS
from nnunetv2.training.run_training import TrainingRequest, build_trainer, run_training
from tests.helpers.tiny_preprocessed import NAME_2D, NAME_3D, make_preprocessed_dataset

ENV_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
FAST = dict(num_iterations_per_epoch=3, num_val_iterations_per_epoch=2, num_data_workers=0)


def _set_env(monkeypatch, root: Path) -> None:
    for var in ENV_VARS:
        (root / var).mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(root / var))


@pytest.fixture(scope="module")
def trained_3d(tmp_path_factory) -> Path:
    """A 3D dataset with fold 0 trained for 3 epochs (checkpoint_latest every 2 epochs)."""
    root = tmp_path_factory.mktemp("trained3d")
    make_preprocessed_dataset(root, dim=3)
    with pytest.MonkeyPatch.context() as mp:
        _set_env(mp, root)
        mp.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        run_training(TrainingRequest(NAME_3D, "3d_fullres", 0, num_epochs=3, save_every=2, seed=3, **FAST))
    return root


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """Tests share 2 busy cores: one torch thread each (the trainer keeps an explicit OMP_NUM_THREADS)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def _fold_folder(root: Path, dataset: str, configuration: str, fold="0", trainer="nnUNetTrainer") -> Path:
    return root / "nnUNet_results" / dataset / f"{trainer}__nnUNetPlans__{configuration}" / f"fold_{fold}"


def test_fold_folder_files_and_checkpoint_format(trained_3d):
    fold = _fold_folder(trained_3d, NAME_3D, "3d_fullres")
    for name in ("dataset.json", "plans.json", "dataset_fingerprint.json"):
        assert (fold.parent / name).is_file()
    for name in (
        "checkpoint_final.pth",
        "checkpoint_best.pth",
        "checkpoint_latest.pth",
        "progress.png",
        "debug.json",
        "validation/summary.json",
        "validation/case_0.nii.gz",
    ):
        assert (fold / name).is_file(), name
    assert len(list(fold.glob("training_log_*.txt"))) == 1
    splits = json.loads((trained_3d / "nnUNet_preprocessed" / NAME_3D / "splits_final.json").read_text())
    assert len(splits) == 5 and splits[0]["val"] == ["case_0"]
    assert sorted(p.name for p in (fold / "validation").glob("*.nii.gz")) == ["case_0.nii.gz"]
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert "foreground_mean" in summary and len(summary["metric_per_case"]) == 1

    for name in ("checkpoint_final.pth", "checkpoint_best.pth", "checkpoint_latest.pth"):
        assert set(CHECKPOINT_KEYS) <= set(load_checkpoint(fold / name))  # weights_only=True inside
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["current_epoch"] == 3 and final["trainer_name"] == "nnUNetTrainer"
    assert final["inference_allowed_mirroring_axes"] == (0, 1, 2)
    assert set(final["init_args"]) == {"plans", "configuration", "fold", "dataset_json", "device", "options"}
    assert final["init_args"]["options"]["num_epochs"] == 3 and final["init_args"]["options"]["seed"] == 3
    assert final["init_args"]["fold"] == 0 and final["init_args"]["configuration"] == "3d_fullres"
    assert final["init_args"]["device"] == torch.device("cpu") and final["grad_scaler_state"] is None
    assert len(final["logging"]["train_losses"]) == 3 and len(final["logging"]["ema_fg_dice"]) == 3
    assert final["_best_ema"] == max(final["logging"]["ema_fg_dice"])
    assert load_checkpoint(fold / "checkpoint_best.pth")["current_epoch"] >= 1

    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "epoch 3/3: train_loss" in log and "pseudo Dice [" in log and "lr " in log
    assert "CPU training: 1 torch thread(s) beside 0 augmentation worker(s) (from OMP_NUM_THREADS)" in log
    debug = json.loads((fold / "debug.json").read_text())
    assert debug["num_epochs"] == "3" and debug["seed"] == 3 and debug["num_data_workers"] == 0


def test_continue_resumes_where_the_last_checkpoint_stopped(trained_3d, tmp_path, monkeypatch, caplog):
    shutil.copytree(trained_3d, tmp_path, dirs_exist_ok=True)
    _set_env(monkeypatch, tmp_path)
    fold = _fold_folder(tmp_path, NAME_3D, "3d_fullres")
    original = load_checkpoint(fold / "checkpoint_final.pth")
    # an interrupted run: only checkpoint_latest after epoch 2
    interrupted = dict(original, current_epoch=2, logging={k: v[:2] for k, v in original["logging"].items()})
    torch.save(interrupted, fold / "checkpoint_latest.pth")
    (fold / "checkpoint_final.pth").unlink()
    caplog.set_level("INFO")
    run_training(TrainingRequest(NAME_3D, "3d_fullres", 0, num_epochs=3, continue_training=True, **FAST))
    assert "checkpoint_latest.pth at epoch 2" in caplog.text
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["current_epoch"] == 3 and len(final["logging"]["train_losses"]) == 3
    assert final["logging"]["train_losses"][:2] == original["logging"]["train_losses"][:2]
    # a finished run is extended by a larger -num_epochs
    caplog.clear()
    run_training(TrainingRequest(NAME_3D, "3d_fullres", 0, num_epochs=4, continue_training=True, **FAST))
    assert "at epoch 3" in caplog.text
    assert load_checkpoint(fold / "checkpoint_final.pth")["current_epoch"] == 4


def test_validation_only_with_npz(trained_3d, tmp_path, monkeypatch, capsys):
    shutil.copytree(trained_3d, tmp_path, dirs_exist_ok=True)
    _set_env(monkeypatch, tmp_path)
    fold = _fold_folder(tmp_path, NAME_3D, "3d_fullres")
    shutil.rmtree(fold / "validation")
    train_entry([NAME_3D, "3d_fullres", "0", "--val", "--val_best", "--npz", "-device", "cpu"])
    assert (fold / "validation" / "summary.json").is_file()
    assert (fold / "validation" / "case_0.npz").is_file() and (fold / "validation" / "case_0.pkl").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train_entry([NAME_3D, "3d_fullres", "1", "--val", "-device", "cpu"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "fold_1/checkpoint_final.pth: not found; train this fold first" in err
    assert len(err.splitlines()) == 1


def _fixed_batch_loss_drops(trainer) -> None:
    trainer.on_train_start()
    batch = next(trainer.dataloader_train)
    trainer.network.train()
    losses = [float(trainer.train_step(batch)["loss"]) for _ in range(12)]
    trainer._close_dataloaders()
    assert losses[-1] < losses[0] - 0.1, losses


def test_bf16_training_runs_convolutions_in_bfloat16_and_learns(dataset_2d):
    trainer = build_trainer(TrainingRequest(NAME_2D, "2d", "all", device="cpu", seed=0, cpu_bf16=True, **FAST))
    assert trainer.cpu_bf16
    trainer.on_train_start()
    seen = set()
    first_conv = next(m for m in trainer.network.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda module, inputs, output: seen.add(output.dtype))
    batch = next(trainer.dataloader_train)
    losses = [float(trainer.train_step(batch)["loss"]) for _ in range(12)]
    trainer._close_dataloaders()
    assert losses[-1] < losses[0] - 0.1, losses
    assert seen == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in trainer.network.parameters())  # master weights stay float32


def test_channels_last_training_matches_contiguous(dataset_2d, monkeypatch):
    losses = {}
    for value in ("0", "1"):
        monkeypatch.setenv("nnUNet_channels_last", value)
        trainer = build_trainer(TrainingRequest(NAME_2D, "2d", "all", device="cpu", seed=0, cpu_bf16=False, **FAST))
        trainer.on_train_start()
        # with one input channel both layouts have the same strides: look at a later convolution
        conv = next(m for m in trainer.network.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
        assert trainer.channels_last is (value == "1")
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) is (value == "1")
        batch = next(trainer.dataloader_train)
        losses[value] = [float(trainer.train_step(batch)["loss"]) for _ in range(6)]
        trainer._close_dataloaders()
    # same seed, same batch: the layout changes only the order of float32 sums
    np.testing.assert_allclose(losses["1"], losses["0"], atol=1e-3)


def test_lowres_validation_saves_the_cascade_input(trained_3d, tmp_path, monkeypatch, capsys):
    shutil.copytree(trained_3d / "nnUNet_preprocessed", tmp_path / "nnUNet_preprocessed")
    _set_env(monkeypatch, tmp_path)
    run_training(TrainingRequest(NAME_3D, "3d_lowres", 0, num_epochs=1, device="cpu", **FAST))
    model = _fold_folder(tmp_path, NAME_3D, "3d_lowres").parent
    seg = blosc2.open(str(model / "predicted_next_stage" / "3d_cascade_fullres" / "case_0.b2nd"), mode="r")[:]
    assert seg.shape == (20, 20, 20) and seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1}
    capsys.readouterr()
    with pytest.raises(SystemExit):  # the other folds' validation cases are still missing
        train_entry([NAME_3D, "3d_cascade_fullres", "0", "-device", "cpu"])
    assert "previous-stage segmentation of case 'case_1' not found (4 of 4 case(s) missing)" in capsys.readouterr().err


def test_3d_loss_goes_down_on_a_fixed_batch(trained_3d, monkeypatch):
    _set_env(monkeypatch, trained_3d)
    _fixed_batch_loss_drops(build_trainer(TrainingRequest(NAME_3D, "3d_fullres", 0, device="cpu", seed=0, **FAST)))


@pytest.fixture
def dataset_2d(tmp_path, monkeypatch) -> Path:
    make_preprocessed_dataset(tmp_path, dim=2)
    _set_env(monkeypatch, tmp_path)
    return tmp_path


def test_2d_sparse_training_fold_all_through_the_cli(dataset_2d, capsys):
    _fixed_batch_loss_drops(build_trainer(TrainingRequest(NAME_2D, "2d", "all", device="cpu", seed=0, **FAST)))
    train_entry(
        [
            NAME_2D,
            "2d",
            "all",
            "-tr",
            "nnUNetTrainer_1epoch",
            "-num_iterations_per_epoch",
            "3",
            "-num_val_iterations_per_epoch",
            "2",
            "-device",
            "cpu",
            "-seed",
            "1",
        ]
    )
    fold = _fold_folder(dataset_2d, NAME_2D, "2d", "all", trainer="nnUNetTrainer_1epoch")
    assert f"done: {fold}" in capsys.readouterr().out
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["init_args"]["fold"] == "all" and final["inference_allowed_mirroring_axes"] == (0, 1)
    assert final["current_epoch"] == 1
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 5  # fold 'all' validates on every case
    assert not (dataset_2d / "nnUNet_preprocessed" / NAME_2D / "splits_final.json").exists()


def test_region_training_with_ignore_label(tmp_path, monkeypatch):
    make_preprocessed_dataset(tmp_path, dim=2, regions=True)
    _set_env(monkeypatch, tmp_path)
    _fixed_batch_loss_drops(build_trainer(TrainingRequest(NAME_2D, "2d", "all", device="cpu", seed=0, **FAST)))
    fold = run_training(TrainingRequest(NAME_2D, "2d", "all", num_epochs=1, device="cpu", **FAST))
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert len(final["logging"]["dice_per_class_or_region"][0]) == 2  # whole and core
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    assert len(summary["mean"]) == 2 and "(1, 2)" in summary["mean"]


def _train_2d_losses(seed: int) -> tuple[list[float], dict]:
    trainer = build_trainer(
        TrainingRequest(NAME_2D, "2d", 0, device="cpu", seed=seed, num_epochs=1, disable_checkpointing=True, **FAST)
    )
    trainer.run_training()
    return trainer.logger.get_value("train_losses", None), trainer.network.state_dict()


def test_seeded_cpu_runs_repeat(dataset_2d):
    losses_a, weights_a = _train_2d_losses(5)
    losses_b, weights_b = _train_2d_losses(5)
    assert losses_a == losses_b
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert _train_2d_losses(6)[0] != losses_a


def test_pretrained_weights_and_no_deep_supervision(dataset_2d, caplog):
    caplog.set_level("INFO")
    run_training(
        TrainingRequest(
            NAME_2D, "2d", "all", trainer_name="nnUNetTrainerNoDeepSupervision", num_epochs=1, device="cpu", **FAST
        )
    )
    source = _fold_folder(dataset_2d, NAME_2D, "2d", "all", trainer="nnUNetTrainerNoDeepSupervision")
    run_training(
        TrainingRequest(
            NAME_2D,
            "2d",
            "all",
            num_epochs=1,
            device="cpu",
            pretrained_weights=str(source / "checkpoint_final.pth"),
            **FAST,
        )
    )
    assert "loaded" in caplog.text and "skipped 0" in caplog.text


def test_ddp_two_gloo_processes_end_with_identical_weights(dataset_2d):
    fold = run_training(TrainingRequest(NAME_2D, "2d", 0, num_gpus=2, device="cpu", num_epochs=1, seed=0, **FAST))
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "x 2 processes" in log and "network weights identical on all 2 ranks" in log
    assert load_checkpoint(fold / "checkpoint_final.pth")["current_epoch"] == 1
    assert (fold / "validation" / "summary.json").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        ([NAME_2D, "3d_fullres", "0"], "configuration '3d_fullres' is not in plans 'nnUNetPlans' (available: 2d)"),
        ([NAME_2D, "2d", "0", "-tr", "nnUNetTrainerNope"], "trainer 'nnUNetTrainerNope' not found"),
        (["Dataset999_Missing", "2d", "0"], "Dataset999_Missing: preprocessed dataset not found"),
        ([NAME_2D, "2d", "7"], "fold 7 is out of range"),
        ([NAME_2D, "2d", "0", "--c", "-pretrained_weights", "x.pth"], "-pretrained_weights only applies to a new"),
        ([NAME_2D, "2d", "0", "-num_epochs", "0"], "-num_epochs must be an integer >= 1, got 0"),
    ],
)
def test_user_errors_are_one_line(dataset_2d, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        train_entry(argv + ["-device", "cpu"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_too_few_cases_for_five_folds(tmp_path, monkeypatch, capsys):
    make_preprocessed_dataset(tmp_path, dim=2, num_cases=3)
    _set_env(monkeypatch, tmp_path)
    with pytest.raises(SystemExit):
        train_entry([NAME_2D, "2d", "0", "-device", "cpu"])
    assert "3 training case(s) are too few for 5-fold cross-validation" in capsys.readouterr().err


def test_unseeded_cpu_runs_try_more_threads_and_log_the_choice(dataset_2d, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(
        "nnunetv2.training.run_environment.cpu_threads_beside_workers",
        lambda workers, world_size, consider_load: (1, "2 core(s)"),
    )
    monkeypatch.setattr("nnunetv2.training.run_environment.cpu_threads_without_workers", lambda world_size: 2)
    options = dict(FAST, num_iterations_per_epoch=8)
    unseeded = run_training(TrainingRequest(NAME_2D, "2d", 0, num_epochs=1, device="cpu", **options))
    log = next(unseeded.glob("training_log_*.txt")).read_text()
    assert "1 torch thread(s) beside 0 augmentation worker(s) (2 core(s); 2 will be tried" in log
    assert "CPU threads tried over 3 iterations each: 1 thread(s) " in log and ", 2 thread(s) " in log
    shutil.rmtree(unseeded)
    seeded = run_training(TrainingRequest(NAME_2D, "2d", 0, num_epochs=1, device="cpu", seed=1, **options))
    assert "CPU threads tried" not in next(seeded.glob("training_log_*.txt")).read_text()
