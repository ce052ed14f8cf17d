"""Ignore-aware patch sampling on cases stored as the preprocessor stores them (class locations included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.dataset.preprocessed_case import sample_class_locations, save_preprocessed_case
from nnunetv2.preprocessing.preprocessor import DefaultPreprocessor
from nnunetv2.training.dataloading.data_loader import NnUNetDataLoader

IGNORE = 3
SCRIBBLED = LabelManager({"background": 0, "liver": 1, "vessel": 2, "ignore": IGNORE})


def _store(folder: Path, case_id: str, seg: np.ndarray, label_manager: LabelManager) -> Path:
    """Save ``seg`` (1, z, y, x) with random data and the class locations the preprocessor would keep."""
    data = np.random.default_rng(0).normal(size=seg.shape).astype(np.float32)
    keys = DefaultPreprocessor.class_location_keys(label_manager)
    save_preprocessed_case(
        folder, case_id, data, seg.astype(np.int16), {"spacing": [1.0] * 3}, sample_class_locations(seg, keys)
    )
    return folder


def test_stored_classes_include_annotated_background_only_with_an_ignore_label():
    assert DefaultPreprocessor.class_location_keys(SCRIBBLED) == [1, 2, 0]
    assert DefaultPreprocessor.class_location_keys(LabelManager({"background": 0, "liver": 1, "vessel": 2})) == [1, 2]
    regions = LabelManager({"background": 0, "whole": [1, 2], "core": 2, "ignore": IGNORE}, regions_class_order=[1, 2])
    assert DefaultPreprocessor.class_location_keys(regions) == [(1, 2), 2, 0]


@pytest.fixture
def scribbled_case(tmp_path) -> Path:
    """Six slices of 64x64, ignore everywhere but: a background line (54 voxels per slice), a broad liver
    scribble (400 per slice) and a vessel scribble of 3 voxels per slice, all away from the image border."""
    seg = np.full((1, 6, 64, 64), IGNORE, dtype=np.int16)
    seg[0, :, 6, 5:59] = 0
    seg[0, :, 20:30, 12:52] = 1
    seg[0, :, 45, 30:33] = 2
    return _store(tmp_path / "preprocessed", "scribbled", seg, SCRIBBLED)


@pytest.mark.parametrize("patch", [(1, 9, 9), (9, 9)])
def test_oversampling_balances_classes_so_a_thin_scribbled_class_is_drawn_a_third_of_the_time(scribbled_case, patch):
    loader = NnUNetDataLoader(scribbled_case, ["scribbled"], 8, patch, patch, SCRIBBLED, 1.0, seed=0)
    targets = torch.cat([next(loader)["target"] for _ in range(60)])  # 480 class-centred patches
    centre = targets[(slice(None), 0) + (0,) * (len(patch) - 2) + (4, 4)]
    shares = [(centre == c).float().mean().item() for c in (0, 1, 2)]
    # the vessel holds 18 of ~2,750 annotated voxels, yet each class centres about a third of the patches
    assert all(0.25 < share < 0.42 for share in shares), shares
    assert sum(shares) == pytest.approx(1.0)


def test_2d_random_patches_come_from_annotated_slices_only(tmp_path):
    # 20 slices, only slices 3 and 15 scribbled; with no foreground forcing at all, every 2D patch
    # still holds an annotated voxel
    seg = np.full((1, 20, 40, 40), IGNORE, dtype=np.int16)
    seg[0, 3, 5:8, 5:30] = 0
    seg[0, 15, 30:33, 10:35] = 1
    folder = _store(tmp_path / "preprocessed", "two_slices", seg, SCRIBBLED)
    loader = NnUNetDataLoader(folder, ["two_slices"], 4, (16, 16), (16, 16), SCRIBBLED, 0.0, seed=2)
    targets = torch.cat([next(loader)["target"] for _ in range(25)])
    annotated = ((targets >= 0) & (targets != IGNORE)).flatten(1)
    assert annotated.any(1).all()
    assert (targets == 1).flatten(1).any(1).any() and (targets == 0).flatten(1).any(1).any()


def test_region_datasets_with_ignore_oversample_regions_and_background(tmp_path):
    regions = LabelManager({"background": 0, "whole": [1, 2], "core": 2, "ignore": IGNORE}, regions_class_order=[1, 2])
    seg = np.full((1, 4, 48, 48), IGNORE, dtype=np.int16)
    seg[0, :, 5, 5:40] = 0
    seg[0, :, 20:26, 10:30] = 1
    seg[0, :, 40, 20:23] = 2
    folder = _store(tmp_path / "preprocessed", "regions", seg, regions)
    loader = NnUNetDataLoader(folder, ["regions"], 6, (1, 9, 9), (1, 9, 9), regions, 1.0, seed=1)
    centre = torch.cat([next(loader)["target"] for _ in range(40)])[:, 0, 0, 4, 4]
    # keys (1, 2), 2 and 0 are equally likely; (1, 2) centres on 1 or 2, so 2 gets about 1/3 + its share of (1, 2)
    shares = {c: (centre == c).float().mean().item() for c in (0, 1, 2)}
    assert 0.23 < shares[0] < 0.43 and shares[2] > 0.25 and shares[1] > 0.15, shares
