"""Each simulation mode on a 2D (PNG) dataset, and the axis rules that protect 2D data."""

from __future__ import annotations

import numpy as np
import pytest

from nnunetv2.dataset.integrity import verify_dataset_integrity
from nnunetv2.exceptions import DatasetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.imageio.registry import reader_writer_for_ending
from nnunetv2.sparse.sparse_dataset import simulate_sparse_dataset

IGNORE = 3


def _label_pairs(dense_folder, sparse_folder):
    io = reader_writer_for_ending(".png")()
    for file in sorted((dense_folder / "labelsTr").iterdir()):
        dense, _ = io.read_seg(file)
        sparse, _ = io.read_seg(sparse_folder / "labelsTr" / file.name)
        yield dense[0, 0], sparse[0, 0]  # (1, 1, y, x) -> (y, x)


@pytest.mark.parametrize(
    "mode, options",
    [
        ("scribble", {}),
        ("slices", {"fraction": 0.25, "axes": [1]}),
        ("patches", {"num_patches": 2, "patch_size": 8}),
    ],
)
def test_every_mode_writes_a_valid_truthful_sparse_2d_dataset(synthetic_dataset_2d, tmp_path, mode, options):
    target = tmp_path / "Dataset931_Sparse2D"
    fractions = simulate_sparse_dataset(synthetic_dataset_2d, target, mode, seed=0, **options)
    assert DatasetJson.load(target / "dataset.json").labels["ignore"] == IGNORE
    verify_dataset_integrity(target)
    for dense, sparse in _label_pairs(synthetic_dataset_2d, target):
        annotated = sparse != IGNORE
        assert np.array_equal(sparse[annotated], dense[annotated]) and 0 < annotated.mean() < 0.5
        if mode == "slices":  # a quarter of the 48 rows, each whole
            rows = annotated.any(1)
            assert rows.sum() == 12 and annotated[rows].all()
        if mode == "patches":
            assert annotated.sum() <= 2 * 8 * 8
    assert 0 < fractions["all voxels"] < 0.5


@pytest.mark.parametrize(
    "mode, options, message",
    [
        ("slices", {"axes": [0]}, "a 2D image is a single slice along axis 0, so --mode slices would keep it whole"),
        ("scribble", {"axis": 2}, "a 2D image is scribbled as one slice; use --axis 0"),
        ("slices", {"axes": [1, 3]}, "axis 3 does not exist in a label map of shape (1, 48, 48)"),
    ],
)
def test_axes_that_do_not_fit_2d_images_are_refused_and_nothing_is_written(
    synthetic_dataset_2d, tmp_path, mode, options, message
):
    target = tmp_path / "Dataset932_Bad"
    with pytest.raises(DatasetError) as error:
        simulate_sparse_dataset(synthetic_dataset_2d, target, mode, **options)
    assert message in str(error.value) and "case_000.png" in str(error.value)
    assert not target.exists() and list(tmp_path.iterdir()) == []
