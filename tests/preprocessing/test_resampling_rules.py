"""Resampling: shapes, identity, nnU-Net v2's geometry, the separate-z rule and exact label values."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import resize

from nnunetv2.exceptions import PlansError
from nnunetv2.preprocessing.resampling import (
    compute_new_shape,
    resample_data_or_seg_to_shape,
    resample_data_or_seg_to_spacing,
    resampling_function_by_name,
)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, 12, 16, 14)).astype(np.float32)


def _label_map(shape=(12, 16, 14)) -> np.ndarray:
    """Blocks of -1 (outside crop), 0, 1, 2 and 3 (the ignore label) next to each other."""
    seg = np.zeros((1, *shape), dtype=np.int16)
    seg[0, :, :3] = -1
    seg[0, 2:9, 4:12, 2:7] = 1
    seg[0, 2:9, 4:12, 7:12] = 2  # touches label 1: interpolating raw values would make 1.5s
    seg[0, 5:12, 10:16, 9:14] = 3
    return seg


def test_output_shape_and_dtype(image):
    out = resample_data_or_seg_to_shape(image.astype(np.float64), (7, 20, 9), [1, 1, 1], [1, 1, 1])
    assert out.shape == (2, 7, 20, 9) and out.dtype == np.float32
    by_spacing = resample_data_or_seg_to_spacing(image, [2.0, 1.0, 1.0], [1.0, 0.5, 2.0])
    assert by_spacing.shape == (2, 24, 32, 7)
    assert compute_new_shape((12, 16, 14), [2.0, 1.0, 1.0], [1.0, 0.5, 2.0]) == [24, 32, 7]


def test_equal_spacing_is_identity(image):
    seg = _label_map()
    assert np.array_equal(resample_data_or_seg_to_spacing(image, [2, 1, 1], [2, 1, 1]), image)
    assert np.array_equal(resample_data_or_seg_to_spacing(seg, [2, 1, 1], [2, 1, 1], is_seg=True, order=1), seg)


@pytest.mark.parametrize("new_shape", [(17, 11, 20), (12, 25, 9)])
@pytest.mark.parametrize("order", [1, 3])
def test_isotropic_matches_skimage_resize_as_nnunet_uses_it(image, new_shape, order):
    out = resample_data_or_seg_to_shape(image, new_shape, [1, 1, 1], [1, 1, 1], order=order)
    for c in range(2):
        reference = resize(image[c], new_shape, order, mode="edge", anti_aliasing=False)
        np.testing.assert_allclose(out[c], reference, atol=1e-5)


def test_anisotropic_data_resamples_the_coarse_axis_separately(image):
    # spacing 4 x 1 x 1 -> 2 x 1 x 1: output slices are copies of input slices (nearest along z),
    # whereas joint cubic interpolation would blend neighbouring slices
    out = resample_data_or_seg_to_shape(image, (24, 16, 14), [4, 1, 1], [2, 1, 1])
    assert all(
        np.array_equal(out[:, 2 * k], image[:, k]) and np.array_equal(out[:, 2 * k + 1], image[:, k]) for k in range(12)
    )
    joint = resample_data_or_seg_to_shape(image, (24, 16, 14), [4, 1, 1], [2, 1, 1], force_separate_z=False)
    assert not np.array_equal(joint[:, 0], image[:, 0])


def test_separate_axis_follows_the_target_spacing_and_the_threshold(image):
    # current spacing isotropic, target anisotropic along x (axis 2): x is picked by nearest neighbour
    out = resample_data_or_seg_to_shape(image, (12, 16, 7), [1, 1, 1], [1, 1, 4])
    picked = np.minimum(((np.arange(7) + 0.5) * 2).astype(int), 13)
    assert np.array_equal(out, image[..., picked])
    # anisotropy 2.5 < 3: everything is interpolated jointly
    mild = resample_data_or_seg_to_shape(image, (12, 16, 7), [1, 1, 1], [1, 1, 2.5])
    assert not np.array_equal(mild, image[..., picked])
    # the same 2.5 with the threshold lowered to 2 is separate again
    low_threshold = resample_data_or_seg_to_shape(
        image, (12, 16, 7), [1, 1, 1], [1, 1, 2.5], separate_z_anisotropy_threshold=2
    )
    assert np.array_equal(low_threshold, image[..., picked])


def test_order_z_interpolates_linearly_along_the_coarse_axis():
    ramp = np.broadcast_to(np.arange(4, dtype=np.float32)[:, None, None], (1, 4, 3, 3)).copy()
    out = resample_data_or_seg_to_shape(ramp, (8, 3, 3), [4, 1, 1], [2, 1, 1], order=3, order_z=1)
    np.testing.assert_allclose(out[0, :, 1, 1], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], atol=1e-6)


@pytest.mark.parametrize(
    "new_shape,spacing",
    [((25, 33, 29), [1, 1, 1]), ((5, 7, 6), [1, 1, 1]), ((30, 9, 20), [4, 1, 1]), ((12, 31, 5), [1, 1, 1])],
)
def test_label_values_stay_exact(new_shape, spacing):
    seg = _label_map()
    out = resample_data_or_seg_to_shape(seg, new_shape, spacing, [1, 1, 1], is_seg=True, order=1)
    assert out.dtype == np.int16 and out.shape == (1, *new_shape)
    assert set(np.unique(out)) <= set(np.unique(seg))


def test_ignore_label_neither_grows_nor_shrinks_beyond_a_voxel():
    seg = _label_map()
    out = resample_data_or_seg_to_shape(seg, (24, 32, 28), [1, 1, 1], [1, 1, 1], is_seg=True, order=1)
    ignore_in = np.kron(seg[0] == 3, np.ones((2, 2, 2), dtype=bool))  # exact 2x upscaled block
    ignore_out = out[0] == 3
    from scipy.ndimage import binary_dilation, binary_erosion

    assert ignore_out[binary_erosion(ignore_in)].all()
    assert not ignore_out[~binary_dilation(ignore_in)].any()
    # two touching labels never produce the value between them
    two = np.zeros((1, 6, 6, 6), dtype=np.int16)
    two[0, :, :, 3:] = 2
    out = resample_data_or_seg_to_shape(two, (6, 6, 10), [1, 1, 1], [1, 1, 1], is_seg=True, order=1)
    assert set(np.unique(out)) == {0, 2}


def test_probabilities_stay_a_distribution():
    logits = np.random.default_rng(1).normal(size=(3, 6, 10, 9))
    probabilities = (np.exp(logits) / np.exp(logits).sum(0)).astype(np.float32)
    out = resample_data_or_seg_to_shape(probabilities, (18, 13, 20), [3, 1, 1], [1, 1, 1], order=1, order_z=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)
    assert out.min() >= 0


def test_torch_tensor_input_comes_back_as_numpy():
    import torch

    tensor = torch.rand(2, 4, 5, 6)
    out = resample_data_or_seg_to_shape(tensor, (8, 5, 6), [2, 1, 1], [1, 1, 1], order=1)
    assert isinstance(out, np.ndarray) and out.shape == (2, 8, 5, 6)


def test_resampling_function_lookup():
    assert resampling_function_by_name("resample_data_or_seg_to_shape") is resample_data_or_seg_to_shape
    with pytest.raises(PlansError, match="unknown resampling function 'resample_magic'"):
        resampling_function_by_name("resample_magic")


def test_labels_match_per_label_linear_interpolation_with_argmax():
    # an independent reference: skimage's linear resize of every label's mask, strongest label wins
    seg = _label_map()
    new_shape = (17, 23, 9)
    out = resample_data_or_seg_to_shape(seg, new_shape, [1, 1, 1], [1, 1, 1], is_seg=True, order=1)
    labels = np.unique(seg)[::-1]  # reversed, so argmax prefers the higher label on ties
    scores = np.stack(
        [resize((seg[0] == v).astype(float), new_shape, 1, mode="edge", anti_aliasing=False) for v in labels]
    )
    reference = labels[scores.argmax(0)]
    assert (out[0] != reference).mean() < 1e-3  # only float rounding at exact ties may differ


def test_labels_with_linear_interpolation_along_the_coarse_axis():
    seg = _label_map()
    out = resample_data_or_seg_to_shape(seg, (30, 9, 20), [4, 1, 1], [1, 1, 1], is_seg=True, order=1, order_z=1)
    assert out.shape == (1, 30, 9, 20) and set(np.unique(out)) <= set(np.unique(seg))
