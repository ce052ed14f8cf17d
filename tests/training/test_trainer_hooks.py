"""nnU-Net v2's trainer extension contract: subclasses written the upstream way (upstream import paths, __init__
attributes, overridden hooks) change what each hook controls, and the run is rebuilt from its init_args."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss, DC_and_topk_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss, SoftDiceLoss, get_tp_fp_fn_tn
from nnunetv2.training.loss.robust_ce_loss import RobustCrossEntropyLoss, TopKLoss
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.lr_scheduler.warmup import Lin_incr_LRScheduler, PolyLRScheduler_offset
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.run_training import TrainingRequest, build_trainer, run_training
from nnunetv2.training.trainer_lookup import find_trainer_class
from nnunetv2.training.trainer_options import TrainerOptions
from nnunetv2.training.trainers import nnunet_trainer
from nnunetv2.utilities.file_io import load_json
from tests.helpers.tiny_preprocessed import NAME_2D, make_preprocessed_dataset

FAST = dict(num_iterations_per_epoch=2, num_val_iterations_per_epoch=1, num_data_workers=0, device="cpu")
CALLS: list[str] = []


class RecordingTrainer(nnUNetTrainer):
    """Overrides hooks the way nnU-Net v2's documentation shows, and records when they run."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device=torch.device("cpu")):  # noqa: B008 (upstream style)
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 7  # upstream style: set after super().__init__
        self.initial_lr = 3e-3
        self.enable_deep_supervision = False

    @staticmethod
    def build_network_architecture(
        plans_manager, configuration_manager, num_input_channels, num_output_channels, enable_deep_supervision=True
    ):
        CALLS.append(f"network:{configuration_manager.patch_size}:{num_input_channels}:{num_output_channels}")
        return torch.nn.Conv2d(num_input_channels, num_output_channels, 3, padding=1)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.initial_lr)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.num_epochs)

    def _build_loss(self):
        CALLS.append("loss")
        return RobustCrossEntropyLoss(ignore_index=self.label_manager.ignore_label)

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        rotation, dummy_2d, initial, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, self.configuration_manager.patch_size, None

    @staticmethod
    def get_training_transforms(
        patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
        use_mask_for_norm=None, is_cascaded=False, foreground_labels=None, regions=None, ignore_label=None,
    ):  # fmt: skip
        CALLS.append(f"train_transforms:{mirror_axes}:{deep_supervision_scales}")
        return nnUNetTrainer.get_validation_transforms(
            deep_supervision_scales, is_cascaded, foreground_labels, regions, ignore_label
        )

    def do_split(self):
        tr_keys, val_keys = super().do_split()
        return tr_keys[:2], val_keys

    def on_train_start(self):
        CALLS.append("on_train_start")
        super().on_train_start()

    def on_epoch_start(self):
        CALLS.append("on_epoch_start")
        super().on_epoch_start()

    def on_train_epoch_start(self):
        CALLS.append("on_train_epoch_start")
        super().on_train_epoch_start()

    def train_step(self, batch):
        out = super().train_step(batch)
        CALLS.append(f"train_step:{sorted(out)}")
        return out

    def on_train_epoch_end(self, train_outputs):
        CALLS.append(f"on_train_epoch_end:{len(train_outputs)}")
        super().on_train_epoch_end(train_outputs)

    def on_validation_epoch_start(self):
        CALLS.append("on_validation_epoch_start")
        super().on_validation_epoch_start()

    def validation_step(self, batch):
        out = super().validation_step(batch)
        CALLS.append(f"validation_step:{sorted(out)}")
        return out

    def on_validation_epoch_end(self, val_outputs):
        CALLS.append(f"on_validation_epoch_end:{len(val_outputs)}")
        super().on_validation_epoch_end(val_outputs)
        self.logger.log("my_metric", 42.0, self.current_epoch)

    def on_epoch_end(self):
        CALLS.append("on_epoch_end")
        super().on_epoch_end()

    def on_train_end(self):
        CALLS.append("on_train_end")
        super().on_train_end()

    def set_deep_supervision_enabled(self, enabled: bool):
        CALLS.append(f"deep_supervision:{enabled}")


@pytest.fixture
def dataset_2d(tmp_path, monkeypatch) -> Path:
    make_preprocessed_dataset(tmp_path, dim=2)
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(tmp_path / var))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    return tmp_path


def test_upstream_path_is_our_trainer_and_exposes_upstream_attributes(dataset_2d):
    assert nnUNetTrainer is nnunet_trainer.nnUNetTrainer
    trainer = build_trainer(TrainingRequest(NAME_2D, "2d", 0, **FAST))
    assert trainer.plans_manager.get_configuration("2d").patch_size == trainer.configuration_manager.patch_size
    cm = trainer.configuration_manager
    assert cm.network_arch_class_name.endswith("PlainConvUNet") and "conv_op" in cm.network_arch_init_kwargs_req_import
    assert cm.batch_size == 2 and cm.spacing == [1.0, 1.0] and cm.previous_stage_name is None
    assert trainer.plans_manager.plans["plans_name"] == "nnUNetPlans"
    lm = trainer.label_manager
    assert lm.num_segmentation_heads == len(lm.all_labels) and lm.has_ignore_label == (lm.ignore_label is not None)
    assert trainer.is_ddp is False and trainer.local_rank == 0 and trainer.device == torch.device("cpu")
    assert trainer.output_folder.name == "fold_0" and trainer.preprocessed_dataset_folder.name == "nnUNetPlans_2d"
    assert isinstance(trainer.dataset_json, dict) and trainer.my_init_kwargs is trainer.init_args
    trainer.initialize()
    assert isinstance(trainer.lr_scheduler, PolyLRScheduler) and trainer.batch_size == 2
    assert trainer.num_input_channels == 1 and len(trainer._get_deep_supervision_scales()) >= 1


def test_overridden_hooks_control_the_run_in_upstream_order(dataset_2d, monkeypatch):
    CALLS.clear()
    monkeypatch.setattr("nnunetv2.training.trainer_lookup.find_trainer_class", lambda name: RecordingTrainer)
    fold = run_training(TrainingRequest(NAME_2D, "2d", 0, trainer_name="RecordingTrainer", num_epochs=1, **FAST))
    patch = load_json(fold.parent / "plans.json")["configurations"]["2d"]["patch_size"]
    assert CALLS[: CALLS.index("on_train_end") + 1] == [
        "on_train_start",
        f"network:{patch}:1:2",  # one image channel; background and blob (the ignore label gets no output)
        "loss",
        "train_transforms:None:None",
        "deep_supervision:False",
        "on_epoch_start",
        "on_train_epoch_start",
        "train_step:['loss']",
        "train_step:['loss']",
        "on_train_epoch_end:2",
        "on_validation_epoch_start",
        "validation_step:['fn_hard', 'fp_hard', 'loss', 'tp_hard']",
        "on_validation_epoch_end:1",
        "on_epoch_end",
        "on_train_end",
    ]
    final = load_checkpoint(fold / "checkpoint_final.pth")
    assert final["trainer_name"] == "RecordingTrainer" and final["current_epoch"] == 1
    assert final["inference_allowed_mirroring_axes"] is None  # the hook's choice reaches inference
    assert final["logging"]["my_metric"] == [42.0] and final["logging"]["lrs"] == [3e-3]  # cosine at epoch 0
    assert "betas" in final["optimizer_state"]["param_groups"][0]  # configure_optimizers' Adam
    debug = load_json(fold / "debug.json")
    assert debug["num_epochs"] == "1" and debug["initial_lr"] == "0.003"  # -num_epochs wins over __init__'s 7


def test_init_args_rebuild_the_same_run(dataset_2d, monkeypatch):
    monkeypatch.setattr("nnunetv2.training.trainer_lookup.find_trainer_class", lambda name: RecordingTrainer)
    trainer = build_trainer(
        TrainingRequest(NAME_2D, "2d", 0, trainer_name="RecordingTrainer", num_epochs=2, seed=4, **FAST)
    )
    assert trainer.num_epochs == 2 and trainer.initial_lr == 3e-3 and trainer.seed == 4
    again = type(trainer)(**trainer.init_args)
    assert (again.num_epochs, again.num_iterations_per_epoch, again.seed) == (2, 2, 4)
    assert again.init_args == trainer.init_args
    plain = RecordingTrainer(**{k: v for k, v in trainer.init_args.items() if k != "options"})
    assert plain.num_epochs == 7  # without options: the subclass' own value
    with pytest.raises(TrainingError, match="has no setting 'num_of_cycles'"):
        RecordingTrainer(**{**plain.init_args, "options": TrainerOptions(settings={"num_of_cycles": 2})})
    with pytest.raises(TrainingError, match="unknown trainer option 'nope'"):
        RecordingTrainer(**{**plain.init_args, "options": {"nope": 1}})


def test_external_trainer_folders_are_searched_recursively(dataset_2d, tmp_path, monkeypatch):
    nested = tmp_path / "lab" / "sub"
    nested.mkdir(parents=True)
    (nested / "my_variants.py").write_text(
        textwrap.dedent("""
        import torch
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

        class LabTrainer_3epochs(nnUNetTrainer):
            def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                         device: torch.device = torch.device('cuda')):
                super().__init__(plans, configuration, fold, dataset_json, device)
                self.num_epochs = 3
    """)
    )
    (tmp_path / "lab" / "broken.py").write_text("class BrokenTrainer(:\n")
    monkeypatch.setenv("nnUNet_extTrainer", str(tmp_path / "nowhere") + ":" + str(tmp_path / "lab"))
    found = find_trainer_class("LabTrainer_3epochs")
    assert found.__name__ == "LabTrainer_3epochs" and issubclass(found, nnUNetTrainer)
    trainer = build_trainer(TrainingRequest(NAME_2D, "2d", 0, trainer_name="LabTrainer_3epochs", **FAST))
    assert trainer.num_epochs == 3 and trainer.output_folder.parent.name.startswith("LabTrainer_3epochs__")
    with pytest.raises(TrainingError, match=r"broken\.py: cannot import it to find trainer 'BrokenTrainer'"):
        find_trainer_class("BrokenTrainer")
    with pytest.raises(TrainingError, match="nor in the folders of nnUNet_extTrainer"):
        find_trainer_class("NoSuchTrainer")


def test_probabilistic_oversampling_draws_each_sample(dataset_2d):
    trainer = build_trainer(TrainingRequest(NAME_2D, "2d", 0, seed=0, **FAST))
    trainer.probabilistic_oversampling = True
    trainer.oversample_foreground_percent = 1.0
    train, val = trainer.get_dataloaders()
    assert train.loader.probabilistic_oversampling and train.loader._forced_foreground() == [True, True]
    trainer.oversample_foreground_percent = 0.0
    assert build_trainer(TrainingRequest(NAME_2D, "2d", 0, **FAST)).probabilistic_oversampling is False
    assert next(train)["data"].shape[0] == 2 and next(val)["data"].shape[0] == 2


def test_upstream_loss_modules_match_their_definitions():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 6)
    labels = torch.randint(0, 3, (2, 1, 6, 6))
    ce = torch.nn.functional.cross_entropy(logits, labels[:, 0])
    assert float(RobustCrossEntropyLoss()(logits, labels)) == pytest.approx(float(ce))
    assert float(TopKLoss(k=100)(logits, labels)) == pytest.approx(float(ce), rel=1e-6)
    per_voxel = torch.nn.functional.cross_entropy(logits, labels[:, 0], reduction="none").flatten()
    # 10% of 2 x 6 x 6 voxels: the 7 largest
    assert float(TopKLoss(k=10)(logits, labels)) == pytest.approx(float(per_voxel.topk(7)[0].mean()), rel=1e-6)
    probabilities = torch.softmax(logits, 1)
    onehot = torch.nn.functional.one_hot(labels[:, 0], 3).permute(0, 3, 1, 2).float()
    tp, fp, fn, _ = get_tp_fp_fn_tn(probabilities, labels)
    expected = -((2 * tp[:, 1:] + 1e-5) / (2 * tp[:, 1:] + fp[:, 1:] + fn[:, 1:] + 1e-5)).mean()
    for dice_class in (SoftDiceLoss, MemoryEfficientSoftDiceLoss):
        dice = dice_class(apply_nonlin=lambda x: torch.softmax(x, 1), do_bg=False, smooth=1e-5, ddp=False)
        assert float(dice(logits, labels)) == pytest.approx(float(expected), rel=1e-5)
        assert float(dice(logits, onehot)) == pytest.approx(float(expected), rel=1e-5)
    compound = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {})
    assert float(compound(logits, labels)) == pytest.approx(float(expected + ce), rel=1e-5)
    topk = DC_and_topk_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {"k": 100})
    assert float(topk(logits, labels)) == pytest.approx(float(expected + ce), rel=1e-5)
    wrapped = DeepSupervisionWrapper(RobustCrossEntropyLoss(), [1.0, 0.0])
    assert float(wrapped([logits, logits[:, :, ::2]], [labels, labels[:, :, ::2]])) == pytest.approx(float(ce))


def test_upstream_schedulers_and_initial_patch_size():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ramp = Lin_incr_LRScheduler(optimizer, 0.01, 50)
    ramp.step(9)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 10 / 50)
    offset = PolyLRScheduler_offset(optimizer, 0.01, 1000, 50)
    offset.step(20)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    offset.step(525)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**0.9)
    rotation = (-np.pi / 6, np.pi / 6)
    size = get_patch_size([64, 64, 64], rotation, rotation, rotation, (0.85, 1.25))
    assert isinstance(size, np.ndarray) and size.tolist() == [102, 102, 102]
    # rotations are capped at 90 degrees: (32, 64) reaches (64, 64), divided by the smallest scale 0.85
    assert get_patch_size([32, 64], (-np.pi, np.pi), 0, 0, (0.85, 1.25)).tolist() == [75, 75]


class OldSignatureTrainer(nnUNetTrainer):
    """nnU-Net v2's older build_network_architecture signature (class name and kwargs instead of managers)."""

    @staticmethod
    def build_network_architecture(
        architecture_class_name, arch_init_kwargs, arch_init_kwargs_req_import, num_input_channels,
        num_output_channels, enable_deep_supervision=True,
    ):  # fmt: skip
        assert architecture_class_name.endswith("PlainConvUNet") and "conv_op" in arch_init_kwargs_req_import
        return torch.nn.Conv2d(num_input_channels, num_output_channels, 1)


def test_old_network_signature_and_upstream_launcher_plans_key(dataset_2d):
    reference = build_trainer(TrainingRequest(NAME_2D, "2d", 0, **FAST))
    plans = dict(reference.init_args["plans"], continue_training=False)  # nnU-Net v2's launcher adds this key
    trainer = OldSignatureTrainer(plans, "2d", 0, reference.dataset_json, "cpu")
    assert "continue_training" not in trainer.init_args["plans"]
    trainer.initialize()
    assert isinstance(trainer.network, torch.nn.Conv2d) and trainer.network.out_channels == 2
