import sys
import textwrap

import pytest

from nnunetv2.exceptions import TrainingError
from nnunetv2.training.trainer_lookup import find_trainer_class
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


def test_builtin_trainers_by_name():
    assert find_trainer_class("nnUNetTrainer") is nnUNetTrainer
    five = find_trainer_class("nnUNetTrainer_5epochs")
    assert issubclass(five, nnUNetTrainer) and five.num_epochs == 5 and five.__name__ == "nnUNetTrainer_5epochs"
    no_ds = find_trainer_class("nnUNetTrainerNoDeepSupervision")
    assert no_ds.enable_deep_supervision is False
    assert "torchvision" not in sys.modules and "timm" not in sys.modules


def test_user_module_class(tmp_path, monkeypatch):
    (tmp_path / "my_lab_trainers.py").write_text(
        textwrap.dedent("""
        from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer

        class LabTrainer(nnUNetTrainer):
            num_epochs = 3

        class NotATrainer:
            pass
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert find_trainer_class("my_lab_trainers:LabTrainer").num_epochs == 3
    with pytest.raises(TrainingError, match="'my_lab_trainers:NotATrainer' is not a subclass of nnUNetTrainer"):
        find_trainer_class("my_lab_trainers:NotATrainer")
    with pytest.raises(TrainingError, match="module 'my_lab_trainers' has no class 'Missing'"):
        find_trainer_class("my_lab_trainers:Missing")
    with pytest.raises(TrainingError, match="cannot import module 'no_such_module_xyz'"):
        find_trainer_class("no_such_module_xyz:LabTrainer")


def test_unknown_trainer():
    with pytest.raises(
        TrainingError, match="trainer 'nnUNetTrainerDoesNotExist' not found in nnunetv2.training.trainers"
    ):
        find_trainer_class("nnUNetTrainerDoesNotExist")
