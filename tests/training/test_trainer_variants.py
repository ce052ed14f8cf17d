"""nnU-Net v2's trainer variants by name: each family trains a short epoch, and each changes what it should."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.training.run_training import TrainingRequest, build_trainer, run_training
from nnunetv2.training.trainer_lookup import find_trainer_class
from tests.helpers.tiny_preprocessed import NAME_2D, make_preprocessed_dataset

FAST = dict(num_iterations_per_epoch=2, num_val_iterations_per_epoch=1, num_data_workers=0, device="cpu", seed=0)


@pytest.fixture(scope="module")
def dataset_2d(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("variants")
    make_preprocessed_dataset(root, dim=2)
    return root


@pytest.fixture(autouse=True)
def env(dataset_2d, monkeypatch):
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (dataset_2d / var).mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(dataset_2d / var))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


@pytest.mark.parametrize(
    "name, mirror_axes",
    [
        ("nnUNetTrainerDA5", (0, 1)),
        ("nnUNetTrainer_onlyMirror01_DA5", (0,)),
        ("nnUNetTrainerNoDA", None),
        ("nnUNetTrainer_250epochs_NoMirroring", None),
        ("nnUNetTrainerDiceTopK10Loss", (0, 1)),
        ("nnUNetTrainer_warmup", (0, 1)),
        ("nnUNetTrainerBN", (0, 1)),
        ("nnUNetTrainer_probabilisticOversampling_010", (0, 1)),
    ],
)
def test_variant_trains_an_epoch(name, mirror_axes):
    fold = run_training(TrainingRequest(NAME_2D, "2d", 0, trainer_name=name, num_epochs=1, **FAST))
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["trainer_name"] == name and final["current_epoch"] == 1
    assert final["inference_allowed_mirroring_axes"] == mirror_axes


def test_variants_change_what_they_control():
    def trainer(name: str, **kwargs):
        built = build_trainer(TrainingRequest(NAME_2D, "2d", 0, trainer_name=name, **{**FAST, **kwargs}))
        built.initialize()
        return built

    bn = trainer("nnUNetTrainerBN")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in bn.network.modules())
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in bn.network.modules())
    assert isinstance(trainer("nnUNetTrainerAdam3en4").optimizer, torch.optim.AdamW)
    assert trainer("nnUNetTrainerAdam3en4").initial_lr == 3e-4
    cosine = trainer("nnUNetTrainerCosAnneal", num_epochs=4)
    with warnings.catch_warnings():  # torch's schedulers warn about the epoch argument nnU-Net v2 passes
        warnings.simplefilter("ignore")
        cosine.lr_scheduler.step(2)
    assert cosine.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / 2)
    warmup = trainer("nnUNetTrainer_warmup")
    warmup.on_train_epoch_start()
    assert warmup.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / 50)
    sampling = trainer("nnUNetTrainer_probabilisticOversampling")
    # batch size 2: nnUNetTrainer centres round(2 * 0.33) = 1 sample of 2 on a class
    assert sampling.probabilistic_oversampling and sampling.oversample_foreground_percent == 0.5
    ce = trainer("nnUNetTrainerCELoss")
    assert type(ce.loss.loss).__name__ == "RobustCrossEntropyLoss" and ce.loss.loss.ignore_index == 2
    no_da = trainer("nnUNetTrainerNoDA")
    rotation, dummy, initial, mirror = no_da.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    assert list(initial) == no_da.configuration_manager.patch_size and mirror is None
    da5 = trainer("nnUNetTrainerDA5")
    initial_da5 = da5.configure_rotation_dummyDA_mirroring_and_inital_patch_size()[2]
    initial_default = trainer("nnUNetTrainer").configure_rotation_dummyDA_mirroring_and_inital_patch_size()[2]
    assert all(a > b for a, b in zip(initial_da5, initial_default))  # sized for scaling down to 0.7, not 0.85


def test_benchmark_records_the_fastest_epoch_without_checkpoints():
    fold = run_training(
        TrainingRequest(
            NAME_2D, "2d", 0, trainer_name="nnUNetTrainerBenchmark_5epochs_noDataLoading", num_epochs=2, **FAST
        )
    )
    (result,) = json.loads((fold / "benchmark_result.json").read_text()).values()
    assert result["fastest_epoch"] > 0 and result["num_gpus"] == 1
    assert not list(fold.glob("checkpoint_*.pth")) and not (fold / "validation").exists()


def test_every_upstream_variant_name_is_found():
    names = """nnUNetTrainer_onlyMirror01_DA5 nnUNetTrainerDA5 nnUNetTrainerDA5ord0 nnUNetTrainerDA5Segord0
    nnUNetTrainerDA5_10epochs nnUNetTrainer_DASegOrd0 nnUNetTrainer_DASegOrd0_NoMirroring nnUNetTrainerNoDA
    nnUNetTrainerNoMirroring nnUNetTrainer_onlyMirror01 nnUNetTrainer_onlyMirror01_1500ep
    nnUNetTrainer_onlyMirror01_DASegOrd0 nnUNetTrainer_noDummy2DDA nnUNetTrainerCELoss nnUNetTrainerCELoss_5epochs
    nnUNetTrainerDiceLoss nnUNetTrainerDiceCELoss_noSmooth nnUNetTrainerTopk10Loss nnUNetTrainerTopk10LossLS01
    nnUNetTrainerDiceTopK10Loss nnUNetTrainerCosAnneal nnUNetTrainer_warmup nnUNetTrainerBN
    nnUNetTrainerNoDeepSupervision nnUNetTrainerAdam nnUNetTrainerVanillaAdam nnUNetTrainerVanillaAdam1en3
    nnUNetTrainerVanillaAdam3en4 nnUNetTrainerAdam1en3 nnUNetTrainerAdam3en4 nnUNetTrainer_probabilisticOversampling
    nnUNetTrainer_probabilisticOversampling_033 nnUNetTrainer_probabilisticOversampling_010
    nnUNetTrainerBenchmark_5epochs nnUNetTrainerBenchmark_5epochs_noDataLoading
    nnUNetTrainer_250epochs_NoMirroring nnUNetTrainer_2000epochs_NoMirroring nnUNetTrainer_4000epochs_NoMirroring
    nnUNetTrainer_8000epochs_NoMirroring""".split()
    for name in names:
        assert find_trainer_class(name).__name__ == name
