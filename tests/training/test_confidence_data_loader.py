"""ConfidenceDataLoader: the stored confidence travels with the label through sampling and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.dataset.preprocessed_case import sample_class_locations, save_preprocessed_case
from nnunetv2.dataset.preprocessed_confidence import (
    load_scribble_locations,
    open_case_confidence,
    save_case_confidence,
    save_scribble_locations,
)
from nnunetv2.exceptions import PreprocessingError, TrainingError
from nnunetv2.training.augmentation import pipelines
from nnunetv2.training.dataloading.confidence_data_loader import ConfidenceDataLoader

LABELS = LabelManager({"background": 0, "blob": 1, "tube": 2})
SHAPE = (12, 20, 20)


def _confidence_of_label(label: np.ndarray) -> np.ndarray:
    """A confidence that is a function of the label: lets a test check that both moved together."""
    return (0.2 + 0.3 * label).astype(np.float32)


@pytest.fixture
def data_folder(tmp_path):
    """Two cases: 'pseudo' with a stored confidence and scribbles at known voxels, 'labeled' without either."""
    rng = np.random.default_rng(0)
    grid = np.indices(SHAPE)
    for case_id in ("pseudo", "labeled"):
        seg = np.zeros((1, *SHAPE), dtype=np.int16)
        seg[0][((grid - np.array([6, 10, 10]).reshape(3, 1, 1, 1)) ** 2).sum(0) < 16] = 1
        seg[0, :, 2:4, 3:17] = 2
        data = (seg + rng.normal(0, 0.1, seg.shape)).astype(np.float32)
        properties = {"spacing": [1.0, 1.0, 1.0]}
        save_preprocessed_case(tmp_path, case_id, data, seg, properties, sample_class_locations(seg, [1, 2]))
        if case_id == "pseudo":
            save_case_confidence(tmp_path, case_id, _confidence_of_label(seg))
            save_scribble_locations(tmp_path, case_id, np.array([[1, 1, 1], [10, 18, 18]]))
    return tmp_path


def test_storage_round_trip(data_folder):
    assert open_case_confidence(data_folder, "labeled") is None
    assert open_case_confidence(data_folder, "pseudo").shape == (1, *SHAPE)
    assert load_scribble_locations(data_folder, "pseudo").tolist() == [[1, 1, 1], [10, 18, 18]]
    assert load_scribble_locations(data_folder, "labeled").shape == (0, 3)


def test_patches_carry_the_stored_confidence_in_the_label_box(data_folder):
    loader = ConfidenceDataLoader(data_folder, ["pseudo"], 4, (8, 16, 16), (8, 16, 16), LABELS, 0.5, seed=1)
    for _ in range(5):
        batch = next(loader)
        target = batch["target"]
        assert target.dtype == torch.float32 and target.shape == (4, 2, 8, 16, 16)
        label, confidence = target[:, 0], target[:, 1]
        inside = label >= 0  # padding is -1 without transforms
        assert torch.allclose(confidence[inside], torch.from_numpy(_confidence_of_label(label[inside].numpy())))
        assert torch.all(confidence[~inside] == 0)


def test_a_case_without_confidence_has_confidence_one_inside_the_image(data_folder):
    # a patch larger than the case: part of it is padding
    loader = ConfidenceDataLoader(data_folder, ["labeled"], 2, (16, 24, 24), (16, 24, 24), LABELS, 0.0, seed=2)
    target = next(loader)["target"]
    inside = target[:, 0] >= 0
    assert torch.all(target[:, 1][inside] == 1) and torch.all(target[:, 1][~inside] == 0)
    assert inside.sum() == 2 * np.prod(SHAPE)


@pytest.mark.parametrize("dim", [3, 2])
def test_augmentation_moves_confidence_with_the_label(data_folder, dim):
    patch = [8, 16, 16] if dim == 3 else [16, 16]
    rotation, dummy_2d, initial, mirror = pipelines.configure_rotation_dummy_da_mirroring_and_initial_patch_size(patch)
    scales = [[1.0] * dim, [0.5] * dim]
    transforms = pipelines.get_training_transforms(patch, rotation, scales, mirror, dummy_2d, foreground_labels=[1, 2])
    loader = ConfidenceDataLoader(data_folder, ["pseudo"], 2, initial, patch, LABELS, 0.5, transforms, seed=3)
    for _ in range(4):
        targets = next(loader)["target"]
        assert [tuple(t.shape[2:]) for t in targets] == [tuple(patch), tuple(p // 2 for p in patch)]
        for target in targets:
            label, confidence = target[:, 0], target[:, 1]
            outside = confidence == 0  # padding and rotated-in corners: label 0 with confidence 0
            expected = torch.from_numpy(_confidence_of_label(label[~outside].numpy()))
            assert torch.allclose(confidence[~outside], expected)
            assert torch.all(label[outside] == 0)
            assert (~outside).float().mean() > 0.5


def test_scribble_sampling_centres_random_patches_on_scribbles(data_folder):
    loader = ConfidenceDataLoader(
        data_folder, ["pseudo"], 4, (4, 6, 6), (4, 6, 6), LABELS, 0.0, scribble_sample_probability=1.0, seed=4
    )
    centres = set()
    for _ in range(10):
        for _ in range(4):
            loader.sample_patch("pseudo", force_foreground=False)
            start, _ = loader._last_box
            centres.add(tuple(int(v) for v in start + np.array([2, 3, 3])))
    assert centres == {(2, 3, 3), (10, 18, 18)}  # (1, 1, 1) is too close to the border to be the centre
    assert load_scribble_locations(data_folder, "pseudo").shape == (2, 3)


def test_without_scribble_sampling_the_patches_match_the_base_loader(data_folder):
    from nnunetv2.training.dataloading.data_loader import NnUNetDataLoader

    base = NnUNetDataLoader(data_folder, ["pseudo", "labeled"], 3, (8, 16, 16), (8, 16, 16), LABELS, 0.33, seed=5)
    ours = ConfidenceDataLoader(
        data_folder,
        ["pseudo", "labeled"],
        3,
        (8, 16, 16),
        (8, 16, 16),
        LABELS,
        0.33,
        seed=5,
        scribble_sample_probability=0.0,
    )
    for _ in range(3):
        expected, got = next(base), next(ours)
        assert expected["keys"] == got["keys"]
        assert torch.equal(expected["data"], got["data"])
        assert torch.equal(expected["target"][:, 0].float(), got["target"][:, 0])


def test_bad_probability_and_mismatched_confidence_are_reported(data_folder):
    with pytest.raises(TrainingError, match="scribble_sample_probability must lie in"):
        ConfidenceDataLoader(
            data_folder, ["pseudo"], 2, (8, 16, 16), (8, 16, 16), LABELS, scribble_sample_probability=1.5
        )
    save_case_confidence(data_folder, "labeled", np.ones((1, 4, 4, 4), dtype=np.float32))
    loader = ConfidenceDataLoader(data_folder, ["labeled"], 1, (8, 16, 16), (8, 16, 16), LABELS, seed=6)
    with pytest.raises(PreprocessingError, match="labeled: confidence map of shape .* does not match the case shape"):
        next(loader)
