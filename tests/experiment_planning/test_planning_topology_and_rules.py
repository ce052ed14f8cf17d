import numpy as np
import pytest

from nnunetv2.experiment_planning.network_topology import compute_network_topology, pad_to_multiple
from nnunetv2.experiment_planning.planning_rules import (
    fullres_target_spacing,
    initial_patch_size,
    normalization_schemes,
    transpose_for_spacing,
)


def test_isotropic_128_cube_gives_six_stages():
    topology = compute_network_topology([1.0, 1.0, 1.0], [128, 128, 128])
    assert topology.n_stages == 6
    assert topology.strides == [[1, 1, 1]] + [[2, 2, 2]] * 5
    assert topology.conv_kernel_sizes == [[3, 3, 3]] * 6
    assert topology.patch_size == [128, 128, 128]
    assert topology.shape_must_be_divisible_by == [32, 32, 32]


def test_anisotropic_patch_gets_in_plane_kernels_first():
    # nnU-Net v2.8.1 plans a prostate-like dataset (3.0 x 0.61 x 0.61 mm) with exactly this topology
    topology = compute_network_topology([3.0, 0.61, 0.61], [24, 256, 256])
    assert topology.strides == [[1, 1, 1], [1, 2, 2], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2]]
    assert topology.conv_kernel_sizes == [[1, 3, 3], [1, 3, 3]] + [[3, 3, 3]] * 5
    assert topology.patch_size == [24, 256, 256]
    assert topology.num_pool_per_axis == [2, 6, 6]


def test_lone_axis_needs_three_times_the_minimum_edge():
    # after one joint pooling the sizes are (4, 4, 10): axis 2 alone is too short (10 < 3 * 4)
    assert compute_network_topology([1, 1, 1], [8, 8, 20]).strides == [[1, 1, 1], [2, 2, 2]]
    # (4, 4, 12): long enough, it pools alone once more
    assert compute_network_topology([1, 1, 1], [8, 8, 24]).strides == [[1, 1, 1], [2, 2, 2], [1, 1, 2]]


def test_patch_is_padded_to_the_pooling_multiple_including_fractional_sizes():
    topology = compute_network_topology([1.0, 1.0], [100, 80.5])
    assert topology.shape_must_be_divisible_by == [16, 16]
    assert topology.patch_size == [112, 96]
    assert pad_to_multiple([64, 65, 1], [32, 32, 1]) == [64, 96, 1]


def test_patch_too_small_to_pool_has_one_stage():
    topology = compute_network_topology([1, 1, 1], [6, 7, 7])
    assert topology.strides == [[1, 1, 1]] and topology.conv_kernel_sizes == [[3, 3, 3]]


def test_target_spacing_is_the_median_for_isotropic_data():
    spacings = [[1.0, 0.8, 0.8], [1.2, 0.9, 0.9], [1.1, 1.0, 1.0]]
    target = fullres_target_spacing(spacings, [[100, 100, 100]] * 3)
    assert target.tolist() == [1.1, 0.9, 0.9]


def test_anisotropic_axis_takes_its_10th_percentile_spacing():
    spacings = [[5, 1, 1]] * 10 + [[3, 1, 1]] * 5 + [[10, 1, 1]] * 5
    assert fullres_target_spacing(spacings, [[30, 300, 300]] * 20).tolist() == [3.0, 1.0, 1.0]
    # many slices along the coarse axis: the voxel condition fails and the median stays
    assert fullres_target_spacing(spacings, [[200, 300, 300]] * 20).tolist() == [5.0, 1.0, 1.0]
    # the percentile would be finer than the other axes: it stops just above them
    fine = [[5, 1, 1]] * 15 + [[0.5, 1, 1]] * 5
    assert fullres_target_spacing(fine, [[30, 300, 300]] * 20).tolist() == [1.0 + 1e-5, 1.0, 1.0]


def test_transpose_moves_the_coarse_axis_first():
    assert transpose_for_spacing([0.7, 0.7, 3.0]) == ([2, 0, 1], [1, 2, 0])
    assert transpose_for_spacing([0.8, 5.0, 0.8]) == ([1, 0, 2], [1, 0, 2])
    assert transpose_for_spacing([1.0, 1.0, 1.0]) == ([0, 1, 2], [0, 1, 2])


def test_initial_patch_follows_inverse_spacing_and_is_clipped():
    assert initial_patch_size([1, 1, 1], [300, 300, 300], 256**3) == [256, 256, 256]
    # aspect 1 : 2 : 2 scaled to 256^3 voxels -> (161.27, 322.54, 322.54), then clipped to the median shape
    assert initial_patch_size([2, 1, 1], [100, 400, 300.5], 256**3) == [100, 323, 300.5]
    assert initial_patch_size([1, 1], [5000, 1000], 2048**2) == [2048, 1000]


def test_normalization_by_channel_name_and_mask_use():
    names = ["CT", "noNorm", "zscore", "rescale_to_0_1", "rgb_to_0_1", "T2"]
    schemes, mask = normalization_schemes(names, median_relative_size_after_cropping=0.5)
    assert schemes == [
        "CTNormalization",
        "NoNormalization",
        "ZScoreNormalization",
        "RescaleTo01Normalization",
        "RGBTo01Normalization",
        "ZScoreNormalization",
    ]
    assert mask == [False, False, True, False, False, True]
    assert normalization_schemes(names, 0.9)[1] == [False] * 6
    assert normalization_schemes(["ct", "MRI"], 0.9, force_mask_for_norm=True) == (
        ["CTNormalization", "ZScoreNormalization"],
        [False, True],
    )


@pytest.mark.parametrize("spacing", [[1.0, 1.0, 1.0], [3.0, 0.7, 0.7], [0.5, 0.5, 4.0]])
def test_topology_invariants(spacing):
    patch = initial_patch_size(spacing, [200, 200, 200], 128**3)
    topology = compute_network_topology(spacing, patch)
    assert len(topology.conv_kernel_sizes) == topology.n_stages
    assert np.prod(topology.strides, axis=0).tolist() == topology.shape_must_be_divisible_by
    assert all(p % d == 0 for p, d in zip(topology.patch_size, topology.shape_must_be_divisible_by))
