"""Raster-scan geodesic distance against exact Dijkstra, the Euclidean distance transform, and bad inputs."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import distance_transform_edt, gaussian_filter

from nnunetv2.exceptions import NnUNetError
from nnunetv2.scribble_loop.geodesic import geodesic_distance
from nnunetv2.scribble_loop.geodesic_reference import exact_geodesic_distance

CASES = {  # name: (shape, spacing)
    "2d": ((40, 36), (0.7, 1.3)),
    "3d": ((14, 16, 18), (2.5, 0.8, 0.8)),
}


def random_case(shape, seed: int = 0, smooth: float = 1.5, channels: int | None = None):
    """A z-scored random image (smoothed unless smooth=0) and a mask with two seed voxels."""
    rng = np.random.default_rng(seed)
    full_shape = shape if channels is None else (channels, *shape)
    image = rng.normal(size=full_shape)
    if smooth:
        image = gaussian_filter(image, smooth if channels is None else (0,) + (smooth,) * len(shape))
    image = ((image - image.mean()) / image.std()).astype(np.float32)
    seeds = np.zeros(shape, dtype=bool)
    seeds[tuple(s // 4 for s in shape)] = True
    seeds[tuple(3 * s // 4 for s in shape)] = True
    return image, seeds


def mean_relative_error(approx, exact, seeds) -> float:
    reached = ~seeds & np.isfinite(exact)
    return float(np.mean(np.abs(approx[reached] - exact[reached]) / exact[reached]))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("lamb", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("smooth", [0.0, 1.5])
def test_matches_dijkstra_on_random_images(case, lamb, smooth):
    shape, spacing = CASES[case]
    image, seeds = random_case(shape, smooth=smooth)
    exact = exact_geodesic_distance(image, seeds, spacing, lamb)
    approx = geodesic_distance(image, seeds, spacing, lamb)
    assert approx.dtype == np.float32 and approx.shape == shape
    assert np.all(approx[seeds] == 0)
    # every raster-scan value is the length of a real path, so it can only overestimate
    assert np.all(approx >= exact * (1 - 1e-5) - 1e-6)
    # measured worst case over 6 seeds x these settings: 0.04% (auto sweeps); 2.2% (2 sweeps, lamb=1)
    assert mean_relative_error(approx, exact, seeds) < 0.005
    two_sweeps = geodesic_distance(image, seeds, spacing, lamb, iterations=2)
    assert mean_relative_error(two_sweeps, exact, seeds) < (0.05 if lamb == 1.0 else 0.005)


@pytest.mark.parametrize("case", CASES)
def test_sweeping_to_convergence_reproduces_dijkstra(case):
    shape, spacing = CASES[case]
    image, seeds = random_case(shape, smooth=0.0)
    exact = exact_geodesic_distance(image, seeds, spacing, 1.0)
    converged = geodesic_distance(image, seeds, spacing, 1.0, tolerance=0.0)
    np.testing.assert_allclose(converged, exact, rtol=1e-5, atol=1e-5)
    one_sweep = geodesic_distance(image, seeds, spacing, 1.0, iterations=1)
    assert np.all(one_sweep >= converged) and mean_relative_error(one_sweep, exact, seeds) > 0.01


@pytest.mark.parametrize("shape, chamfer_bound", [((41, 41), 1.0824), ((21, 21, 21), 1.1280)])
def test_lamb_zero_is_the_euclidean_distance_up_to_the_neighbourhood_metric(shape, chamfer_bound):
    image, _ = random_case(shape)
    seeds = np.zeros(shape, dtype=bool)
    centre = tuple(s // 2 for s in shape)
    seeds[centre] = True
    distance = geodesic_distance(image, seeds, lamb=0.0)
    euclidean = distance_transform_edt(~seeds)
    ratio = distance[~seeds] / euclidean[~seeds]
    # 8/26-neighbour paths are exact along axes and diagonals and at most chamfer_bound longer elsewhere
    assert ratio.min() > 1 - 1e-6 and ratio.max() < chamfer_bound + 1e-3
    along_axis = tuple(slice(None) if d == 0 else c for d, c in enumerate(centre))
    diagonal = tuple(np.arange(min(shape)) for _ in shape)
    np.testing.assert_allclose(distance[along_axis], euclidean[along_axis], rtol=1e-6)
    np.testing.assert_allclose(distance[diagonal], euclidean[diagonal], rtol=1e-6)


def test_lamb_zero_is_exact_on_the_graph_with_anisotropic_spacing():
    shape, spacing = CASES["3d"]
    image, seeds = random_case(shape)
    exact = exact_geodesic_distance(image, seeds, spacing, 0.0)
    np.testing.assert_allclose(geodesic_distance(image, seeds, spacing, 0.0), exact, rtol=1e-5)


def test_multichannel_uses_the_norm_over_channels():
    shape, spacing = CASES["2d"]
    image, seeds = random_case(shape)
    twice = geodesic_distance(np.stack([image, image]), seeds, spacing, 0.5, tolerance=0.0)
    scaled = geodesic_distance(image * math.sqrt(2), seeds, spacing, 0.5, tolerance=0.0)
    np.testing.assert_allclose(twice, scaled, rtol=1e-5)
    constant_first = geodesic_distance(np.stack([np.full_like(image, 3.0), image]), seeds, spacing, 0.5, tolerance=0.0)
    np.testing.assert_allclose(constant_first, geodesic_distance(image, seeds, spacing, 0.5, tolerance=0.0), rtol=1e-5)
    three, seeds3 = random_case(CASES["3d"][0], channels=3)
    exact = exact_geodesic_distance(three, seeds3, CASES["3d"][1], 0.7)
    approx = geodesic_distance(three, seeds3, CASES["3d"][1], 0.7)
    assert mean_relative_error(approx, exact, seeds3) < 0.005


def test_constant_step_cost_scales_the_euclidean_distance():
    shape, spacing = CASES["3d"]
    image, seeds = random_case(shape)
    plain = geodesic_distance(image, seeds, spacing, 0.0)
    with_cost = geodesic_distance(image, seeds, spacing, 0.0, step_cost=np.full(shape, 0.5, np.float32))
    np.testing.assert_allclose(with_cost, 1.5 * plain, rtol=1e-5)


def test_step_cost_matches_dijkstra_and_infinite_cost_blocks():
    shape, spacing = CASES["2d"]
    image, seeds = random_case(shape)
    step = np.random.default_rng(3).random(shape).astype(np.float32)
    exact = exact_geodesic_distance(image, seeds, spacing, 0.5, step_cost=step)
    approx = geodesic_distance(image, seeds, spacing, 0.5, step_cost=step)
    assert mean_relative_error(approx, exact, seeds) < 0.005

    # a closed wall of infinite cost around the lower-right corner: nothing behind it is reached
    wall = np.zeros((30, 30), dtype=np.float32)
    wall[20, 20:] = np.inf
    wall[20:, 20] = np.inf
    seed = np.zeros((30, 30), dtype=bool)
    seed[5, 5] = True
    blocked = geodesic_distance(np.zeros((30, 30), np.float32), seed, lamb=0.0, step_cost=wall)
    assert np.all(np.isinf(blocked[20:, 20:])) and np.all(np.isfinite(blocked[:20, :20]))
    wall[20, 25] = 0.0  # a gap: the corner is reached, by a detour through the gap
    detour = geodesic_distance(np.zeros((30, 30), np.float32), seed, lamb=0.0, step_cost=wall)
    assert np.isfinite(detour[27, 27]) and detour[27, 27] > np.hypot(22, 22)


def test_max_distance_caps_growth():
    shape, spacing = CASES["3d"]
    image, seeds = random_case(shape)
    full = geodesic_distance(image, seeds, spacing, 0.5)
    cap = float(np.median(full))
    capped = geodesic_distance(image, seeds, spacing, 0.5, max_distance=cap)
    assert np.all(np.isinf(capped[full > cap]))
    np.testing.assert_array_equal(capped[full <= cap], full[full <= cap])
    assert np.all(capped[seeds] == 0)
    exact = exact_geodesic_distance(image, seeds, spacing, 0.5, max_distance=cap)
    assert np.isinf(exact).any() and np.all(exact[np.isfinite(exact)] <= cap)


def test_torch_in_torch_out_and_nnunet_2d_layout():
    shape, spacing = CASES["2d"]
    image, seeds = random_case(shape, channels=2)
    expected = geodesic_distance(image, seeds, spacing, 0.5)
    as_tensor = geodesic_distance(torch.from_numpy(image), torch.from_numpy(seeds), spacing, 0.5)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float32
    np.testing.assert_array_equal(as_tensor.numpy(), expected)
    # nnU-Net stores 2D images as (c, 1, y, x) with spacing [999, sy, sx]
    stacked = geodesic_distance(image[:, None], seeds[None], (999.0, *spacing), 0.5)
    np.testing.assert_array_equal(stacked[0], expected)


def test_a_single_line_of_voxels():
    seeds = np.zeros((1, 1, 20), dtype=bool)
    seeds[0, 0, 4] = True
    image = np.zeros((1, 1, 20), np.float32)
    image[0, 0, 10:] = 2.0  # one intensity step of 2 between voxels 9 and 10
    euclidean = geodesic_distance(image, seeds, (5.0, 5.0, 0.5), lamb=0.0)
    np.testing.assert_allclose(euclidean[0, 0], 0.5 * np.abs(np.arange(20) - 4), rtol=1e-6)
    intensity = geodesic_distance(image, seeds, (5.0, 5.0, 0.5), lamb=1.0)
    np.testing.assert_array_equal(intensity[0, 0], np.where(np.arange(20) >= 10, 2.0, 0.0))


def test_recomputing_edge_costs_gives_the_cached_result():
    shape, spacing = CASES["3d"]
    image, seeds = random_case(shape)
    step = np.random.default_rng(1).random(shape).astype(np.float32)
    cached = geodesic_distance(image, seeds, spacing, 0.8, step_cost=step, iterations=3)
    recomputed = geodesic_distance(image, seeds, spacing, 0.8, step_cost=step, iterations=3, cache_limit_gb=0)
    np.testing.assert_array_equal(cached, recomputed)


def _bad_call(**overrides):
    image, seeds = random_case((8, 9))
    kwargs = dict(image=image, seeds=seeds)
    kwargs.update(overrides)
    return geodesic_distance(**kwargs)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(image=np.zeros((8, 10), np.float32)), r"image shape \(8, 10\) does not match seeds shape \(8, 9\)"),
        (dict(image=np.zeros((2, 3, 8, 9), np.float32)), "does not match seeds shape"),
        (dict(seeds=np.zeros((8, 9), bool)), "seed mask is empty"),
        (dict(seeds=np.zeros(9, bool)), "seeds must be a 2D or 3D mask"),
        (dict(seeds=np.full((8, 9), 2)), "seeds must be a boolean mask"),
        (dict(step_cost=np.zeros((8, 8), np.float32)), r"step_cost shape \(8, 8\) does not match"),
        (dict(step_cost=np.full((8, 9), -1.0, np.float32)), "step_cost must be >= 0"),
        (dict(step_cost=np.full((8, 9), np.nan, np.float32)), "step_cost must be >= 0"),
        (dict(image=np.full((8, 9), np.nan, np.float32)), "NaN or infinite"),
        (dict(lamb=1.5), "lamb must be a number in \\[0, 1\\]"),
        (dict(lamb="a"), "lamb must be a number"),
        (dict(spacing=(1.0,)), "spacing must be 2 positive numbers"),
        (dict(spacing=(1.0, -2.0)), "spacing must be 2 positive numbers"),
        (dict(max_distance=0.0), "max_distance must be a number > 0"),
        (dict(iterations=0), "iterations must be an integer >= 1"),
        (dict(tolerance=-1.0), "tolerance must be a number >= 0"),
        (dict(image=[[1.0]]), "image must be a numpy array or torch tensor"),
    ],
)
def test_bad_inputs_raise_one_line_errors(overrides, message):
    with pytest.raises(NnUNetError, match=message) as error:
        _bad_call(**overrides)
    assert "\n" not in str(error.value)
