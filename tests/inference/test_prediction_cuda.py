"""CUDA prediction (float16 autocast, compiled or not) agrees with the CPU's float32 labels; skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnunetv2.inference.predictor import nnUNetPredictor
from nnunetv2.utilities.compile import is_compiled
from tests.helpers.tiny_models import make_model_folder

pytestmark = pytest.mark.cuda


def _labels(model_folder, device: str) -> np.ndarray:
    predictor = nnUNetPredictor(device=device, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model_folder, (0,))
    data = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 24, 48, 40)).astype(np.float32))
    return predictor.predict_logits_from_preprocessed_data(data).argmax(0).numpy()


@pytest.mark.parametrize("compiled", ["0", "1"])
def test_cuda_labels_equal_the_cpu_labels(tmp_path, monkeypatch, compiled):
    model = make_model_folder(tmp_path / "nnUNetTrainer__nnUNetPlans__3d_fullres", num_folds=1)
    monkeypatch.setenv("nnUNet_compile", "0")
    cpu = _labels(model, "cpu")
    monkeypatch.setenv("nnUNet_compile", compiled)
    cuda = _labels(model, "cuda")
    assert (cpu == cuda).mean() >= 0.999


def test_prediction_compiles_on_cuda_only_when_asked(tmp_path, monkeypatch):
    model = make_model_folder(tmp_path / "nnUNetTrainer__nnUNetPlans__3d_fullres", num_folds=1)
    for value, expected in (("1", True), ("0", False)):
        monkeypatch.setenv("nnUNet_compile", value)
        predictor = nnUNetPredictor(device="cuda", allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(model, (0,))
        assert is_compiled(predictor.model.network) is expected
    monkeypatch.delenv("nnUNet_compile")
    predictor = nnUNetPredictor(device="cuda", allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model, (0,))
    assert not is_compiled(predictor.model.network)  # nnU-Net v2's predictor default
