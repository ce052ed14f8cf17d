"""A model folder trained by nnU-Net v2 predicts here as it does in nnU-Net v2.

The fixture (tests/inference/data_nnunet_v2_compat) was made by
scripts/compat/check_nnunet_v2_compat.py --write-fixture: a tiny 3d_fullres model trained by
nnU-Net v2.8.1 (nnUNetTrainer_1epoch, CPU), its real checkpoint, one two-channel input case with
another spacing than the plans' (so prediction resamples both ways and slides over 18 tiles), and
nnU-Net v2's segmentation and probabilities (stored as float16) of that case with test-time
mirroring. nnU-Net v2 itself is not needed here.
"""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from nnunetv2.formats.checkpoint_io import load_checkpoint
from nnunetv2.inference.predictor import nnUNetPredictor

torch.set_num_threads(1)
FIXTURE = Path(__file__).parent / "data_nnunet_v2_compat"
# nnU-Net v2 sums tile logits in float16 and the fixture stores probabilities in float16
PROBABILITY_TOLERANCE = 5e-3


def test_nnunet_v2_checkpoint_loads_with_the_weights_only_allow_list():
    checkpoint = load_checkpoint(FIXTURE / "model" / "fold_0" / "checkpoint_final.pth")
    assert checkpoint["trainer_name"] == "nnUNetTrainer_1epoch"
    assert checkpoint["init_args"]["configuration"] == "3d_fullres"
    assert tuple(checkpoint["inference_allowed_mirroring_axes"]) == (0, 1, 2)
    # nnU-Net v2 logs numpy scalars: they must come back as such, not be refused
    assert isinstance(checkpoint["logging"]["train_losses"][0], np.floating)
    assert all(isinstance(v, torch.Tensor) for v in checkpoint["network_weights"].values())


def _predict(output: Path, cpu_bf16: bool) -> Path:
    predictor = nnUNetPredictor(device="cpu", allow_tqdm=False, cpu_bf16=cpu_bf16)
    predictor.initialize_from_trained_model_folder(FIXTURE / "model", use_folds=(0,))
    predictor.predict_from_files(
        str(FIXTURE / "input"),
        str(output),
        save_probabilities=True,
        num_processes_preprocessing=0,
        num_processes_segmentation_export=0,
    )
    return output


@pytest.fixture(scope="module")
def our_prediction(tmp_path_factory) -> Path:
    # float32, as nnU-Net v2 predicts on the CPU
    return _predict(tmp_path_factory.mktemp("prediction"), cpu_bf16=False)


def test_segmentation_matches_nnunet_v2_voxel_by_voxel(our_prediction):
    expected = sitk.ReadImage(str(FIXTURE / "expected" / "case_000.nii.gz"))
    ours = sitk.ReadImage(str(our_prediction / "case_000.nii.gz"))
    assert ours.GetSize() == expected.GetSize()
    assert np.allclose(ours.GetSpacing(), expected.GetSpacing())
    assert np.allclose(ours.GetOrigin(), expected.GetOrigin())
    assert np.allclose(ours.GetDirection(), expected.GetDirection())
    expected_labels = sitk.GetArrayFromImage(expected)
    assert set(np.unique(expected_labels)) >= {0, 1}, "the fixture should hold foreground"
    assert np.array_equal(sitk.GetArrayFromImage(ours), expected_labels)


def test_probabilities_match_nnunet_v2(our_prediction):
    expected = np.load(FIXTURE / "expected" / "case_000_probabilities.npz")["probabilities"].astype(np.float32)
    ours = np.load(our_prediction / "case_000.npz")["probabilities"]
    assert ours.dtype == np.float32
    assert ours.shape == expected.shape
    assert expected.shape[0] == 3  # background and two labels
    assert np.abs(ours - expected).max() < PROBABILITY_TOLERANCE
    assert (our_prediction / "case_000.pkl").is_file()


def test_bf16_prediction_labels_nearly_equal_nnunet_v2(tmp_path):
    """bfloat16, the default on CPUs with native bfloat16, moves labels only at a few boundary voxels."""
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(FIXTURE / "expected" / "case_000.nii.gz")))
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(_predict(tmp_path, cpu_bf16=True) / "case_000.nii.gz")))
    assert (ours == expected).mean() >= 0.999


def test_constructor_takes_nnunet_v2_arguments_in_its_order():
    # nnU-Net v2: tile_step_size, use_gaussian, use_mirroring, perform_everything_on_device, device,
    # verbose, verbose_preprocessing, allow_tqdm
    predictor = nnUNetPredictor(0.75, False, True, False, torch.device("cpu"), False, True, False)
    assert predictor.tile_step_size == 0.75 and predictor.use_gaussian is False
    assert predictor.perform_everything_on_device is False and predictor.device == torch.device("cpu")
    assert predictor.verbose_preprocessing is True and predictor.allow_tqdm is False


def test_logits_stay_off_the_device_when_asked(monkeypatch):
    import nnunetv2.inference.sliding_window as sliding_window

    def refuse(*args, **kwargs):
        raise AssertionError("accumulated on the network's device")

    monkeypatch.setattr(sliding_window, "_accumulate_with_cpu_fallback", refuse)
    predictor = nnUNetPredictor(perform_everything_on_device=False, device="cpu", allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(FIXTURE / "model", use_folds=(0,))
    logits = predictor.predict_logits_from_preprocessed_data(torch.zeros((2, 20, 28, 32)))
    assert logits.shape == (3, 20, 28, 32) and logits.device == torch.device("cpu")


def test_verbose_preprocessing_logs_the_preprocessing(caplog, tmp_path):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    image, properties = SimpleITKIO().read_images(sorted(str(f) for f in (FIXTURE / "input").iterdir()))
    predictor = nnUNetPredictor(device="cpu", use_mirroring=False, verbose_preprocessing=True, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(FIXTURE / "model", use_folds=(0,))
    with caplog.at_level("INFO", logger="nnunetv2.preprocessing"):
        predictor.predict_single_npy_array(image, properties)
    assert any(r.name.startswith("nnunetv2.preprocessing") for r in caplog.records)
