"""Patch sampling: shapes, foreground oversampling, padding, ignore-label placement, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import PreprocessingError, TrainingError
from nnunetv2.training.augmentation import pipelines
from nnunetv2.training.dataloading.data_loader import NnUNetDataLoader

TWO_CLASSES = LabelManager({"background": 0, "organ": 1})
WITH_IGNORE = LabelManager({"background": 0, "organ": 1, "ignore": 2})


def _seg_with_blob(shape, blob: tuple[slice, ...]) -> np.ndarray:
    seg = np.zeros((1, *shape), dtype=np.int16)
    seg[(0, *blob)] = 1
    return seg


def test_3d_batch_shapes_dtypes_and_keys(write_case):
    folder = write_case("a", _seg_with_blob((10, 20, 20), np.s_[2:6, 5:9, 5:9]), [1], channels=2)
    write_case("b", _seg_with_blob((12, 18, 22), np.s_[1:3, 1:3, 1:3]), [1], channels=2)
    loader = NnUNetDataLoader(folder, ["a", "b"], 3, (8, 12, 16), (8, 12, 16), TWO_CLASSES, seed=0)
    batch = next(loader)
    assert batch["data"].shape == (3, 2, 8, 12, 16) and batch["data"].dtype == torch.float32
    assert batch["target"].shape == (3, 1, 8, 12, 16)
    assert len(batch["keys"]) == 3 and set(batch["keys"]) <= {"a", "b"}


def test_2d_configuration_reads_single_slices(write_case):
    seg = _seg_with_blob((5, 24, 24), np.s_[3, 10:14, 10:14])
    folder = write_case("a", seg, [1], channels=3)
    loader = NnUNetDataLoader(folder, ["a"], 4, (16, 16), (16, 16), TWO_CLASSES, seed=0)
    batch = next(loader)
    assert batch["data"].shape == (4, 3, 16, 16) and batch["target"].shape == (4, 1, 16, 16)


def test_2d_training_batch_with_deep_supervision_targets(write_case):
    folder = write_case("a", _seg_with_blob((3, 40, 40), np.s_[1, 10:20, 10:20]), [1])
    patch = (16, 16)
    rotation, dummy_2d, initial, mirror = pipelines.configure_rotation_dummy_da_mirroring_and_initial_patch_size(patch)
    transforms = pipelines.get_training_transforms(
        patch, rotation, [[1, 1], [0.5, 0.5], [0.25, 0.25]], mirror, dummy_2d
    )
    batch = next(NnUNetDataLoader(folder, ["a"], 2, initial, patch, TWO_CLASSES, transforms=transforms, seed=0))
    assert batch["data"].shape == (2, 1, 16, 16)
    assert [tuple(t.shape) for t in batch["target"]] == [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 4, 4)]


@pytest.mark.parametrize("is_2d", [False, True])
def test_last_samples_of_each_batch_are_forced_foreground(write_case, is_2d):
    # a 2x2x2 blob in a large image: random patches rarely see it, forced ones always must
    seg = _seg_with_blob((12, 64, 64), np.s_[7:9, 40:42, 20:22])
    folder = write_case("a", seg, [1])
    patch = (16, 16) if is_2d else (8, 16, 16)
    # batch 4 at 0.33: round(4 * 0.67) = 3, so only the last sample is forced (nnU-Net v2's rule)
    loader = NnUNetDataLoader(folder, ["a"], 4, patch, patch, TWO_CLASSES, 0.33, seed=3)
    has_foreground = np.array([[bool((t == 1).any()) for t in next(loader)["target"]] for _ in range(30)])
    assert has_foreground[:, 3].all()
    assert has_foreground[:, :3].mean() < 0.5


def test_case_smaller_than_patch_is_padded_around_the_whole_image(write_case):
    seg = _seg_with_blob((4, 6, 6), np.s_[1:3, 1:3, 1:3])
    data = np.arange(4 * 6 * 6, dtype=np.float32).reshape(1, 4, 6, 6) + 1
    folder = write_case("tiny", seg, [1], data=data)
    loader = NnUNetDataLoader(folder, ["tiny"], 2, (8, 12, 12), (8, 12, 12), TWO_CLASSES, seed=0)
    batch = next(loader)
    for image, target in zip(batch["data"], batch["target"]):
        inside = target != -1
        assert int(inside.sum()) == data.size  # the whole case is inside the patch
        assert torch.equal(image[inside].sort().values, torch.from_numpy(data.ravel()))
        assert (image[~inside] == 0).all()
        assert int((target == 1).sum()) == 8


def test_ignore_label_case_never_yields_patches_without_annotation(write_case):
    # 48x48 slices, all ignore except a 3x3 background scribble in one corner and a 3x3 organ scribble
    # in the opposite one: 10x10 patches can never hold both
    seg = np.full((1, 2, 48, 48), 2, dtype=np.int16)
    seg[0, :, 2:5, 2:5] = 0
    seg[0, :, 43:46, 43:46] = 1
    folder = write_case("sparse", seg, [1, 0])
    for oversample in (0.0, 0.5):
        loader = NnUNetDataLoader(folder, ["sparse"], 4, (2, 10, 10), (2, 10, 10), WITH_IGNORE, oversample, seed=1)
        targets = torch.cat([next(loader)["target"] for _ in range(25)])
        annotated = ((targets == 0) | (targets == 1)).flatten(1).any(1)
        assert annotated.all()
        assert (targets == 1).flatten(1).any(1).any() and (targets == 0).flatten(1).any(1).any()


def test_forced_samples_with_ignore_label_draw_background_and_foreground(write_case):
    seg = np.full((1, 1, 64, 64), 2, dtype=np.int16)
    seg[0, 0, 2:4, 2:4] = 0
    seg[0, 0, 60:62, 60:62] = 1
    folder = write_case("sparse", seg, [1, 0])
    loader = NnUNetDataLoader(folder, ["sparse"], 2, (12, 12), (12, 12), WITH_IGNORE, 1.0, seed=5)
    targets = torch.cat([next(loader)["target"] for _ in range(20)])
    holds_organ = (targets == 1).flatten(1).any(1)
    holds_background = (targets == 0).flatten(1).any(1)
    assert (holds_organ ^ holds_background).all()  # every forced patch is centred on one of the two
    assert 0.2 < holds_organ.float().mean() < 0.8  # and both classes are drawn, balanced


def _training_loader(folder, seed):
    patch = (8, 12, 12)
    rotation, dummy_2d, initial, mirror = pipelines.configure_rotation_dummy_da_mirroring_and_initial_patch_size(patch)
    transforms = pipelines.get_training_transforms(patch, rotation, None, mirror, dummy_2d)
    return NnUNetDataLoader(folder, ["a", "b"], 2, initial, patch, TWO_CLASSES, transforms=transforms, seed=seed)


def test_same_seed_gives_identical_batches(write_case):
    write_case("a", _seg_with_blob((10, 20, 20), np.s_[2:6, 5:9, 5:9]), [1])
    folder = write_case("b", _seg_with_blob((10, 20, 20), np.s_[1:3, 1:3, 1:3]), [1])
    first, second, other = _training_loader(folder, 7), _training_loader(folder, 7), _training_loader(folder, 8)
    for _ in range(4):
        a, b, c = next(first), next(second), next(other)
        assert a["keys"] == b["keys"]
        assert torch.equal(a["data"], b["data"]) and torch.equal(a["target"], b["target"])
    assert not torch.equal(a["data"], c["data"])


def test_bad_inputs_raise_clear_errors(write_case):
    folder = write_case("a", _seg_with_blob((4, 8, 8), np.s_[1, 1, 1]), [1])
    with pytest.raises(PreprocessingError, match="preprocessed case 'missing' not found"):
        NnUNetDataLoader(folder, ["a", "missing"], 2, (4, 8, 8), (4, 8, 8), TWO_CLASSES)
    with pytest.raises(TrainingError, match="no cases to sample"):
        NnUNetDataLoader(folder, [], 2, (4, 8, 8), (4, 8, 8), TWO_CLASSES)
    with pytest.raises(TrainingError, match=r"must have 2 or 3 axes and contain the final patch size \[8, 8, 8\]"):
        NnUNetDataLoader(folder, ["a"], 2, (4, 8, 8), (8, 8, 8), TWO_CLASSES)
    with pytest.raises(TrainingError, match="oversample_foreground_percent must lie in"):
        NnUNetDataLoader(folder, ["a"], 2, (4, 8, 8), (4, 8, 8), TWO_CLASSES, 1.5)
    with pytest.raises(TrainingError, match="unknown pad mode 'wrap'"):
        NnUNetDataLoader(folder, ["a"], 2, (4, 8, 8), (4, 8, 8), TWO_CLASSES, pad_mode="wrap")
    (folder / "a_locations.npz").unlink()
    loader = NnUNetDataLoader(folder, ["a"], 1, (4, 8, 8), (4, 8, 8), TWO_CLASSES, 1.0)
    with pytest.raises(PreprocessingError, match="a_locations.npz"):
        next(loader)
