"""The strokes' local recalibration of the network's probabilities: against a direct computation, and in the rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from nnunetv2.scribble_loop.pseudo_labels import geodesic_pseudo_label
from nnunetv2.scribble_loop.stroke_recalibration import recalibrated_probabilities

UNANNOTATED = 3


def _recalibrated(probabilities: np.ndarray, scribbles: np.ndarray, sigma, prior: float, scale=1.0) -> np.ndarray:
    return recalibrated_probabilities(
        torch.from_numpy(probabilities),
        torch.from_numpy(probabilities.argmax(0)),
        torch.from_numpy(scribbles.astype(np.int64)),
        torch.from_numpy(scribbles != UNANNOTATED),
        sigma,
        prior,
        scale,
    ).numpy()


def _direct(probabilities: np.ndarray, scribbles: np.ndarray, sigma: float, prior: float, scale=1.0) -> np.ndarray:
    """The recalibration written out with scipy's Gaussian filter (zeros beyond the border, kernel to 3 sigma)."""
    log_p = np.log(np.maximum(probabilities, 1e-6)).astype(np.float64)
    label = probabilities.argmax(0)
    wrong = (scribbles != UNANNOTATED) & (scribbles != label)
    impulse = np.zeros(label.shape)
    impulse[tuple(n // 2 for n in label.shape)] = 1
    peak = ndimage.gaussian_filter(impulse, sigma, mode="constant", truncate=3.0).max()
    shift = np.zeros_like(log_p)
    for a in range(probabilities.shape[0]):
        for b in range(a + 1, probabilities.shape[0]):
            a_over_b = wrong & (scribbles == a) & (label == b)
            b_over_a = wrong & (scribbles == b) & (label == a)
            evidence = np.where(a_over_b, log_p[b] - log_p[a], 0) - np.where(b_over_a, log_p[a] - log_p[b], 0)
            weight = (a_over_b | b_over_a).astype(float)
            if not weight.any():
                continue
            pull = (
                scale
                * ndimage.gaussian_filter(evidence, sigma, mode="constant", truncate=3.0)
                / (ndimage.gaussian_filter(weight, sigma, mode="constant", truncate=3.0) + prior * peak)
            )
            shift[a] += np.where(label == b, np.maximum(pull, 0), 0)
            shift[b] += np.where(label == a, np.maximum(-pull, 0), 0)
    shifted = np.exp(log_p + shift)
    return shifted / shifted.sum(0)


def _random_case(seed: int, shape=(30, 40)):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (3, *shape))
    probabilities = np.exp(logits) / np.exp(logits).sum(0)
    scribbles = np.full(shape, UNANNOTATED, dtype=np.uint8)
    scribbles[5, 3:20] = 1
    scribbles[20:28, 30] = 2
    scribbles[12, 25:35] = 0
    scribbles[25, 2:12] = 1
    return probabilities.astype(np.float32), scribbles


@pytest.mark.parametrize("prior, scale", [(0.5, 1.0), (10.0, 1.0), (0.5, 2.0)])
def test_matches_a_direct_computation(prior, scale):
    probabilities, scribbles = _random_case(seed=1)
    np.testing.assert_allclose(_recalibrated(probabilities, scribbles, [3.0, 3.0], prior, scale), _direct(
        probabilities, scribbles, 3.0, prior, scale), atol=2e-5)  # fmt: skip


@pytest.mark.parametrize("scale, far_edge", [(1.0, 20), (2.0, 30)])
def test_a_stroke_through_the_middle_of_a_wrong_region_moves_the_boundary_scale_times_as_far(scale, far_edge):
    """The network's gap grows in proportion to the distance from its boundary (column 10); a stroke traced along
    column 20, the middle of a wrong region that ends at column 30: scale 1 moves the boundary to the stroke,
    scale 2 to the region's far edge, and no further (a flat kernel, a negligible prior)."""
    columns = np.arange(60, dtype=np.float32)
    p1 = np.broadcast_to(1 / (1 + np.exp(0.2 * (columns - 10))), (20, 60)).astype(np.float32)
    probabilities = np.stack([1 - p1, p1])
    scribbles = np.full(p1.shape, UNANNOTATED, dtype=np.uint8)
    scribbles[5:15, 20] = 1
    label = _recalibrated(probabilities, scribbles, [1e9, 1e9], 0.01, scale).argmax(0)
    off_stroke = np.r_[0:5, 15:20]
    assert np.all(label[off_stroke, :far_edge] == 1) and np.all(label[off_stroke, far_edge:] == 0)


@pytest.mark.parametrize("labelled_somewhere", [False, True])
def test_strokes_of_a_class_the_network_labels_nowhere_shift_nothing(labelled_somewhere):
    shape = (20, 30)
    p2 = np.full(shape, 0.1, dtype=np.float32)  # class 2 is a doubt everywhere, never the network's label ...
    if labelled_somewhere:
        p2[0, 0] = 0.9  # ... except on one voxel
    p1 = np.where(np.arange(30) < 15, 0.6, 0.2).astype(np.float32) * (1 - p2)
    probabilities = np.stack([1 - p1 - p2, p1, p2])
    scribbles = np.full(shape, UNANNOTATED, dtype=np.uint8)
    scribbles[10, 18:25] = 2  # drawn where the network says 0
    recalibrated = _recalibrated(probabilities, scribbles, [5.0, 5.0], 1.0)
    changed = np.abs(recalibrated - probabilities).max() > 1e-4
    assert changed == labelled_somewhere


def test_the_coarse_grid_of_a_wide_sigma_stays_close_to_the_direct_computation():
    probabilities, scribbles = _random_case(seed=2, shape=(90, 120))
    coarse = _recalibrated(probabilities, scribbles, [16.0, 16.0], 3.0)  # smoothed on a 4x coarser grid
    direct = _direct(probabilities, scribbles, 16.0, 3.0)
    assert np.abs(coarse - direct).max() < 0.02
    assert np.mean(coarse.argmax(0) == direct.argmax(0)) > 0.995


def test_strokes_the_network_already_labels_as_drawn_change_nothing():
    probabilities, _ = _random_case(seed=3)
    agreeing = np.where(np.random.default_rng(0).random(probabilities.shape[1:]) < 0.05, probabilities.argmax(0), 3)
    assert np.array_equal(_recalibrated(probabilities, agreeing.astype(np.uint8), [3.0, 3.0], 1.0), probabilities)


def _patches_case():
    """A flat image; the network gives class 0 0.98 except in a stroked patch (class 1 at 0.3) and two look-alike
    patches where it doubts less (class 1 at 0.45): one 9-15 voxels from the stroke, one 60 voxels away."""
    shape = (40, 120)
    image = np.zeros((1, *shape), dtype=np.float32)
    p1 = np.full(shape, 0.02, dtype=np.float32)
    stroked, near, far = np.s_[10:30, 10:20], np.s_[10:30, 24:31], np.s_[10:30, 75:85]
    p1[stroked] = 0.3
    p1[near] = p1[far] = 0.45
    p1[0, -1] = 0.9  # the network labels class 1 somewhere: it recognises the class in this image
    scribbles = np.full(shape, UNANNOTATED, dtype=np.uint8)
    scribbles[11:29, 15] = 1
    return image, np.stack([1 - p1, p1, np.zeros(shape, np.float32)]), scribbles, (stroked, near, far)


def test_a_stroke_relabels_a_look_alike_patch_nearby_that_no_path_reaches_and_nothing_far_away():
    image, probabilities, scribbles, (stroked, near, far) = _patches_case()

    def label(**options) -> np.ndarray:
        return geodesic_pseudo_label(image, probabilities, scribbles, None, UNANNOTATED, device="cpu", **options)[0]

    without = label(recalibration_sigma=0.0)
    assert np.all(without[stroked] == 1) and not np.any(without[near] == 1)  # the support limit stops the growth
    with_shift = label(recalibration_sigma=8.0, recalibration_prior=1.0)
    assert np.all(with_shift[near] == 1) and not np.any(with_shift[far] == 1)
    outside = np.ones(scribbles.shape, dtype=bool)
    for patch in (stroked, near):
        outside[patch] = False
    outside[0, -1] = False
    assert not np.any(with_shift[outside] == 1)  # the voxels the network is sure about keep their class
    # a larger prior needs more stroke voxels for the same shift: this stroke no longer reaches the near patch
    assert not np.any(label(recalibration_sigma=8.0, recalibration_prior=200.0)[near] == 1)


def test_corrections_both_ways_cancel_between_them():
    shape = (21, 41)
    p1 = np.full(shape, 0.4, dtype=np.float32)
    p1[:, 21:] = 0.6  # left half labelled 0, right half 1, by the same margin
    scribbles = np.full(shape, UNANNOTATED, dtype=np.uint8)
    p1[10, 5], p1[10, 35] = 0.1, 0.9  # the network is surer at the two strokes:
    probabilities = np.stack([1 - p1, p1])
    scribbles[10, 5] = 1  # class 1 drawn where the network says 0 ...
    scribbles[10, 35] = 0  # ... and class 0 where it says 1, as far on the other side
    recalibrated = _recalibrated(probabilities, scribbles, [6.0, 6.0], 0.1)
    np.testing.assert_allclose(recalibrated[:, :, 20], probabilities[:, :, 20], atol=1e-6)  # the middle: no pull
    assert recalibrated[1, 10, 8] > 0.5 > recalibrated[1, 10, 32]  # each side follows its own stroke


def test_a_class_no_correction_involves_keeps_its_probabilities():
    probabilities, scribbles = _random_case(seed=4)
    label = probabilities.argmax(0)
    scribbles[(scribbles == 0) | (label == 0)] = UNANNOTATED  # corrections between classes 1 and 2 only
    assert np.any((scribbles != UNANNOTATED) & (scribbles != label))
    recalibrated = _recalibrated(probabilities, scribbles, [4.0, 4.0], 1.0)
    np.testing.assert_allclose(recalibrated[:, label == 0], probabilities[:, label == 0], rtol=1e-5)
    assert not np.allclose(recalibrated[:, label != 0], probabilities[:, label != 0], rtol=1e-3)


def test_sigma_is_in_voxels_of_the_finest_axis_so_a_coarse_axis_reaches_fewer_voxels():
    shape = (12, 12, 40)
    image = np.zeros((1, *shape), dtype=np.float32)
    p1 = np.full(shape, 0.02, dtype=np.float32)
    p1[6, 6, 14:27] = 0.3  # the stroke's voxels, and two look-alikes 4 voxels away: in-plane and across slices
    p1[6, 10, 20] = p1[2, 6, 20] = 0.4
    p1[0, 0, 0] = 0.9  # the network labels class 1 somewhere
    scribbles = np.full(shape, UNANNOTATED, dtype=np.uint8)
    scribbles[6, 6, 14:27] = 1
    probabilities = np.stack([1 - p1, p1, np.zeros(shape, np.float32)])

    def label(spacing) -> np.ndarray:
        return geodesic_pseudo_label(
            image, probabilities, scribbles, spacing, UNANNOTATED, device="cpu",
            recalibration_sigma=4.0, recalibration_prior=0.5, support_fraction=1.0,
        )[0]  # fmt: skip

    isotropic, thick_slices = label([1.0, 1.0, 1.0]), label([5.0, 1.0, 1.0])
    assert isotropic[6, 10, 20] == 1 and isotropic[2, 6, 20] == 1
    assert thick_slices[6, 10, 20] == 1 and thick_slices[2, 6, 20] == 0  # across slices 4 voxels are 20 units


@pytest.mark.parametrize("stroke_probability, near_flips", [(0.3, True), (0.005, False)])
def test_only_strokes_the_network_doubts_recalibrate(stroke_probability, near_flips):
    """A stroke where the network all but rules its class out (unbraked) says it has not learned the class, not
    that it is off by a margin nearby: it shifts nothing."""
    image, probabilities, scribbles, (stroked, near, _) = _patches_case()
    image[:] = 10.0
    image[0][stroked] = image[0][near] = 0.0  # dark patches: the stroke's growth stops at their edges
    probabilities[1][stroked] = stroke_probability
    probabilities[0] = 1 - probabilities[1]
    label = geodesic_pseudo_label(
        image, probabilities, scribbles, None, UNANNOTATED, device="cpu",
        recalibration_sigma=8.0, recalibration_prior=1.0, unbraked_stroke_probability=0.015,
    )[0]  # fmt: skip
    assert np.all(label[stroked] == 1)
    assert np.all(label[near] == 1) if near_flips else not np.any(label[near] == 1)


def test_a_sigma_far_beyond_the_image_shifts_every_voxel_alike():
    shape = (40, 60)
    p1 = np.full(shape, 0.2, dtype=np.float32)  # gap log 4 everywhere ...
    p1[5, :11] = 0.1  # ... and log 9 on the stroke
    p1[-1, -1] = 0.9  # the network labels class 1 somewhere
    probabilities = np.stack([1 - p1, p1, np.zeros(shape, np.float32)])
    scribbles = np.full(shape, UNANNOTATED, dtype=np.uint8)
    scribbles[5, :11] = 1
    recalibrated = _recalibrated(probabilities, scribbles, [1e9, 1e9], 0.01)
    elsewhere = scribbles == UNANNOTATED
    elsewhere[-1, -1] = False
    assert np.all(recalibrated.argmax(0)[elsewhere] == 1)  # the far corner too: the pull is the strokes' gap
    assert np.ptp(recalibrated[1][elsewhere]) < 1e-3
