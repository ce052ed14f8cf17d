"""nnUNetTrainerConfidenceWeighted: found by -tr, its parts, its folders, and what it refuses (regions:
test_confidence_weighted_regions.py)."""

from __future__ import annotations

import pytest
import torch

from nnunetv2.exceptions import TrainingError
from nnunetv2.training.loss.confidence_weighted import ConfidenceWeightedDiceCELoss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionLoss
from nnunetv2.training.trainer_lookup import find_trainer_class
from nnunetv2.training.trainer_options import TrainerOptions
from nnunetv2.training.trainers.nnUNetTrainerConfidenceWeighted import nnUNetTrainerConfidenceWeighted
from tests.helpers.tiny_models import DATASET_JSON, tiny_plans


def test_found_by_name_with_the_weighted_loss_and_other_folders(nnunet_env, tmp_path):
    assert find_trainer_class("nnUNetTrainerConfidenceWeighted") is nnUNetTrainerConfidenceWeighted
    trainer = nnUNetTrainerConfidenceWeighted(tiny_plans(), "3d_fullres", "all", DATASET_JSON, "cpu")
    loss = trainer._build_loss()
    assert isinstance(loss, DeepSupervisionLoss) and isinstance(loss.loss, ConfidenceWeightedDiceCELoss)
    assert str(trainer.output_folder).startswith(str(nnunet_env["nnUNet_results"]))
    options = TrainerOptions(
        preprocessed_dataset_folder=str(tmp_path / "data"), output_folder_base=str(tmp_path / "model")
    )
    trainer = nnUNetTrainerConfidenceWeighted(tiny_plans(), "3d_fullres", "all", DATASET_JSON, "cpu", options=options)
    assert trainer.preprocessed_dataset_folder == tmp_path / "data" / "nnUNetPlans_3d_fullres"
    assert trainer.output_folder == tmp_path / "model" / "fold_all"
    trainer.print_to_log_file("hello")
    assert len(list((tmp_path / "model" / "fold_all").glob("training_log_*.txt"))) == 1


def test_validation_scores_the_labels_without_the_confidence_channel(nnunet_env):
    trainer = nnUNetTrainerConfidenceWeighted(tiny_plans(), "3d_fullres", "all", DATASET_JSON, "cpu")
    trainer.enable_deep_supervision = False
    trainer.cpu_bf16 = False  # the counts below are recomputed with a float32 forward pass
    trainer.initialize()
    data = torch.randn(2, 2, 8, 16, 16)
    labels = torch.randint(0, 3, (2, 1, 8, 16, 16)).float()
    with_confidence = torch.cat([labels, torch.full_like(labels, 0.5)], 1)
    out = trainer.validation_step({"data": data, "target": with_confidence})
    loss, tp, fp, fn = (out[k] for k in ("loss", "tp_hard", "fp_hard", "fn_hard"))
    trainer.network.eval()
    with torch.no_grad():
        prediction = trainer.network(data).argmax(1)
    for c in (1, 2):  # background is not counted
        assert tp[c - 1] == ((prediction == c) & (labels[:, 0] == c)).sum()
        assert fn[c - 1] == ((prediction != c) & (labels[:, 0] == c)).sum()
    with torch.no_grad():
        assert float(loss) == pytest.approx(float(trainer.loss(trainer.network(data), labels)), rel=1e-5)


def test_cascades_are_refused(nnunet_env):
    plans = tiny_plans(previous_stage="3d_lowres")
    plans["configurations"]["3d_lowres"] = dict(plans["configurations"]["3d_fullres"])
    with pytest.raises(TrainingError, match="cascade stage"):
        nnUNetTrainerConfidenceWeighted(plans, "3d_fullres", 0, DATASET_JSON, "cpu")
