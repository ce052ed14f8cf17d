"""The geodesic pseudo-label rule on hand-made cases, against an exact re-computation, and its confidence."""

from __future__ import annotations

import numpy as np
import pytest

from nnunetv2.exceptions import NnUNetError
from nnunetv2.scribble_loop.pseudo_labels import RULE_DEFAULTS, geodesic_pseudo_label, pseudo_label_parameters

UNANNOTATED = 2
ERROR_A = (slice(12, 22), slice(10, 20))  # inside the left object, scribbled
ERROR_B = (slice(12, 22), slice(40, 50))  # inside the right object, not scribbled


def _two_objects_case():
    """Two bright squares on a dark background; the network misses a square patch inside each."""
    rng = np.random.default_rng(0)
    image = np.zeros((40, 60), dtype=np.float32)
    image[5:35, 5:25] = 10
    image[5:35, 35:55] = 10
    image += rng.normal(0, 0.3, image.shape).astype(np.float32)
    truth = (image > 5).astype(np.uint8)
    p1 = np.where(truth == 1, 0.95, 0.05)
    p1[ERROR_A] = 0.1
    p1[ERROR_B] = 0.1
    probabilities = np.stack([1 - p1, p1]).astype(np.float32)
    scribbles = np.full(image.shape, UNANNOTATED, dtype=np.uint8)
    scribbles[17, 12:18] = 1
    return image[None], probabilities, scribbles, truth


def test_a_scribble_fixes_its_error_region_and_nothing_far_away():
    image, probabilities, scribbles, truth = _two_objects_case()
    label, confidence = geodesic_pseudo_label(image, probabilities, scribbles, rule="published", device="cpu")
    prediction = probabilities.argmax(0)
    assert label.shape == truth.shape and label.dtype == np.uint8
    assert np.all(label[ERROR_A] == 1)  # fixed
    assert np.all(label[ERROR_B] == 0)  # same error, no scribble near: unchanged
    outside_a = np.ones(truth.shape, dtype=bool)
    outside_a[ERROR_A] = False
    assert np.array_equal(label[outside_a], prediction[outside_a])
    assert (label != truth).sum() == (prediction != truth).sum() - truth[ERROR_A].size


def test_a_2d_case_given_as_a_single_slice_volume_gives_the_same_result():
    image, probabilities, scribbles, _ = _two_objects_case()
    flat = geodesic_pseudo_label(image, probabilities, scribbles, spacing=[1.0, 1.0], device="cpu")
    volume = geodesic_pseudo_label(
        image[:, None], probabilities[:, None], scribbles[None], spacing=[999.0, 1.0, 1.0], device="cpu"
    )
    assert np.array_equal(flat[0], volume[0][0])
    np.testing.assert_allclose(flat[1], volume[1][0], atol=1e-6)


def test_without_scribbles_the_label_is_the_network_argmax_and_confidence_its_scaled_probability():
    image, probabilities, _, _ = _two_objects_case()
    none = np.full(image.shape[1:], UNANNOTATED, dtype=np.uint8)
    label, confidence = geodesic_pseudo_label(
        image, probabilities, none, probability_confidence_scale=0.8, boundary_factor=0.5, device="cpu"
    )
    assert np.array_equal(label, probabilities.argmax(0))
    chosen = probabilities.max(0)
    # away from label boundaries 0.8 x P, on and next to them half of that
    np.testing.assert_allclose(confidence[1, 1], 0.8 * chosen[1, 1], rtol=1e-6)
    np.testing.assert_allclose(confidence[20, 5], 0.4 * chosen[20, 5], rtol=1e-6)  # left edge of an object
    np.testing.assert_allclose(confidence[20, 4], 0.4 * chosen[20, 4], rtol=1e-6)  # just outside it
    assert confidence[20, 5] < confidence[20, 7]


def test_classes_without_scribbles_get_no_geodesic_term():
    """Three classes, scribbles of class 2 only: class 0 and 1 are decided by the network alone."""
    rng = np.random.default_rng(1)
    shape = (24, 24)
    image = rng.normal(0, 1, (1, *shape)).astype(np.float32)
    probabilities = rng.dirichlet([1, 1, 1], size=shape).transpose(2, 0, 1).astype(np.float32)
    scribbles = np.full(shape, 3, dtype=np.uint8)
    scribbles[2, 2] = 2
    label, _ = geodesic_pseudo_label(image, probabilities, scribbles, device="cpu")
    prediction = probabilities.argmax(0)
    not_two = (label != 2) & (prediction != 2)
    assert np.array_equal(label[not_two], prediction[not_two])
    # class 2 only gains: nothing the network called 2 becomes something else
    assert np.all(label[prediction == 2] == 2)
    assert label[2, 2] == 2


def test_scribbled_voxels_keep_their_class_even_against_the_network():
    image, probabilities, _, _ = _two_objects_case()
    scribbles = np.full(image.shape[1:], UNANNOTATED, dtype=np.uint8)
    scribbles[2, 2:30] = 0
    scribbles[3, 2:30] = 1  # right next to class-0 scribbles, where the network says 0 with 0.95
    label, confidence = geodesic_pseudo_label(image, probabilities, scribbles, device="cpu")
    assert np.all(label[3, 2:30] == 1) and np.all(label[2, 2:30] == 0)
    assert np.all(confidence[2:4, 2:30] == 1.0)


def test_confidence_is_within_bounds_one_at_scribbles_and_lower_at_boundaries():
    image, probabilities, scribbles, _ = _two_objects_case()
    label, confidence = geodesic_pseudo_label(image, probabilities, scribbles, device="cpu")
    assert confidence.dtype == np.float32
    assert confidence.min() >= 0.0 and confidence.max() <= 1.0
    assert np.all(confidence[scribbles != UNANNOTATED] == 1.0)
    # far from the scribble: voxels on a pseudo-label boundary are less trusted than inside
    assert confidence[25, 35] < confidence[25, 45]
    # random inputs, extreme parameters: still in [0, 1]
    rng = np.random.default_rng(2)
    probs = rng.dirichlet([0.3] * 4, size=(6, 16, 16)).transpose(3, 0, 1, 2).astype(np.float32)
    drawn = rng.integers(0, 12, size=(6, 16, 16)).astype(np.uint8)
    drawn[drawn >= 4] = 9
    _, conf = geodesic_pseudo_label(
        rng.normal(size=(2, 6, 16, 16)),
        probs,
        drawn,
        spacing=[3.0, 0.7, 0.7],
        unannotated_value=9,
        threshold=0.5,
        probability_confidence_scale=1.0,
        boundary_factor=1.0,
        min_geodesic_confidence=0.0,
        device="cpu",
    )
    assert conf.min() >= 0.0 and conf.max() <= 1.0


def _anisotropic_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """(image (1, 5, 12, 12) with an x ramp, random class probabilities, scribbles of classes 0 and 2, spacing)."""
    rng = np.random.default_rng(seed)
    shape = (5, 12, 12)
    image = (rng.normal(0, 1, (1, *shape)) + np.linspace(0, 3, 12)[None, None, None]).astype(np.float32)
    probabilities = rng.dirichlet([2, 2, 2], size=shape).transpose(3, 0, 1, 2).astype(np.float32)
    scribbles = np.full(shape, 3, dtype=np.uint8)
    scribbles[2, 3, 2:6] = 0
    scribbles[1, 9, 6:11] = 2
    return image, probabilities, scribbles, [2.5, 1.0, 1.0]


def test_rule_matches_an_exact_recomputation_with_dijkstra():
    """The published rule, re-done here from exact geodesic distances (scipy Dijkstra) on an anisotropic 3D case."""
    from nnunetv2.scribble_loop.geodesic_reference import exact_geodesic_distance

    image, probabilities, scribbles, spacing = _anisotropic_case(seed=3)
    parameters = pseudo_label_parameters(
        rule="published", threshold=4.0, lamb=0.9, intensity_weight=2.0, probability_weight=0.5
    )
    label, confidence = geodesic_pseudo_label(image, probabilities, scribbles, spacing, device="cpu", **parameters)

    z_scored = (image - image.mean()) / image.std() * parameters["intensity_weight"]
    relative_spacing = [s / 1.0 for s in spacing]
    geodesic = np.zeros(probabilities.shape)
    for c in (0, 2):
        distance = exact_geodesic_distance(
            z_scored,
            scribbles == c,
            relative_spacing,
            parameters["lamb"],
            step_cost=parameters["probability_weight"] * (1 - probabilities[c]),
        )
        distance = np.minimum(distance, parameters["threshold"])
        geodesic[c] = np.exp(-(np.exp(distance) - 1) / parameters["threshold"])
    score = probabilities + geodesic - (geodesic.sum(0) - geodesic)
    expected = np.where(scribbles != 3, scribbles, score.argmax(0))
    clear = np.sort(score, 0)[-1] - np.sort(score, 0)[-2] > 1e-3  # ignore near-ties
    assert np.array_equal(label[clear], expected[clear])

    near = geodesic.max(0) > parameters["min_geodesic_confidence"]
    # the case exercises both confidence branches and scribbles that overrule the network
    assert near.sum() > 20 and (~near).sum() > 20
    assert (expected != probabilities.argmax(0)).sum() > 10
    np.testing.assert_allclose(confidence[near], geodesic.max(0)[near], atol=2e-3)
    chosen = np.take_along_axis(probabilities, label[None].astype(np.int64), 0)[0]
    far = parameters["probability_confidence_scale"] * chosen
    assert np.all(
        np.isclose(confidence[~near], far[~near], atol=1e-6)
        | np.isclose(confidence[~near], parameters["boundary_factor"] * far[~near], atol=1e-6)
    )


def test_bad_inputs_raise_one_line_errors():
    image, probabilities, scribbles, _ = _two_objects_case()
    with pytest.raises(NnUNetError, match=r"probabilities shape \[2, 40, 59\] does not match the scribbles shape"):
        geodesic_pseudo_label(image, probabilities[:, :, :59], scribbles)
    with pytest.raises(NnUNetError, match=r"image shape \[1, 40, 59\] does not match"):
        geodesic_pseudo_label(image[:, :, :59], probabilities, scribbles)
    bad = scribbles.copy()
    bad[0, 0] = 7
    with pytest.raises(NnUNetError, match=r"value\(s\) \[7\] that are neither a class \(0..1\) nor the unannotated"):
        geodesic_pseudo_label(image, probabilities, bad)
    with pytest.raises(NnUNetError, match="unannotated value 1 is also class 1"):
        geodesic_pseudo_label(image, probabilities, scribbles, unannotated_value=1)
    with pytest.raises(NnUNetError, match="do not sum to 1"):
        geodesic_pseudo_label(image, probabilities * 0.5, scribbles)
    with pytest.raises(NnUNetError, match="threshold must be a number > 0, got 0"):
        geodesic_pseudo_label(image, probabilities, scribbles, threshold=0)
    with pytest.raises(NnUNetError, match="lamb must be a number in"):
        geodesic_pseudo_label(image, probabilities, scribbles, lamb="high")
    with pytest.raises(NnUNetError, match="unknown pseudo-label parameter"):
        pseudo_label_parameters(temperature=3)


def _learned_stroke_case():
    """The network has learned the stroke's class on the stroke itself, but calls the voxels beside it background."""
    image, probabilities, scribbles, truth = _two_objects_case()
    p1 = probabilities[1].copy()
    p1[ERROR_A] = 0.4  # next to the stroke: background (0.6) by the network
    p1[17, 12:18] = 0.9  # on the stroke: the stroke's class
    return image, np.stack([1 - p1, p1]).astype(np.float32), scribbles, truth


def test_network_aware_equals_the_published_labels_while_the_network_disagrees_with_every_stroke():
    image, probabilities, scribbles, _ = _two_objects_case()  # the network says 0 on the whole class-1 stroke
    published = geodesic_pseudo_label(image, probabilities, scribbles, rule="published", device="cpu")[0]
    same_options = RULE_DEFAULTS["published"]  # network_aware's own defaults also limit growth (tested below)
    aware = geodesic_pseudo_label(image, probabilities, scribbles, rule="network_aware", device="cpu", **same_options)[
        0
    ]
    assert np.array_equal(published, aware)
    assert np.all(aware[ERROR_A] == 1)


def test_network_aware_does_not_grow_a_stroke_the_network_has_learned():
    image, probabilities, scribbles, _ = _learned_stroke_case()
    published = geodesic_pseudo_label(image, probabilities, scribbles, rule="published", device="cpu")[0]
    aware = geodesic_pseudo_label(image, probabilities, scribbles, rule="network_aware", device="cpu")[0]
    beside = (slice(15, 17), slice(12, 18))
    assert np.all(published[beside] == 1)  # the published rule grows the stroke over them
    drawn = scribbles != UNANNOTATED
    expected = np.where(drawn, scribbles, probabilities.argmax(0))
    assert np.array_equal(aware, expected)  # network_aware: the network's labels, the stroke's voxels


def test_resolved_stroke_agreement_is_a_fraction_of_the_stroke_voxels():
    image, probabilities, scribbles, _ = _learned_stroke_case()
    probabilities = probabilities.copy()
    probabilities[:, 17, 12:15] = [[0.6], [0.4]]  # the network now agrees on 3 of the 6 stroke voxels
    beside = (slice(15, 17), slice(12, 18))
    at_half = geodesic_pseudo_label(
        image, probabilities, scribbles, rule="network_aware", resolved_stroke_agreement=0.5, device="cpu"
    )[0]
    above_half = geodesic_pseudo_label(
        image, probabilities, scribbles, rule="network_aware", resolved_stroke_agreement=0.6, device="cpu"
    )[0]
    assert np.all(at_half[beside] == 0)  # 3/6 >= 0.5: resolved, not grown
    assert np.all(above_half[beside] == 1)  # 3/6 < 0.6: grown as in the published rule


def test_network_aware_confidence_has_no_dip_inside_objects_and_drops_where_strokes_compete():
    image, probabilities, scribbles, _ = _two_objects_case()
    label, published = geodesic_pseudo_label(image, probabilities, scribbles, rule="published", device="cpu")
    _, aware = geodesic_pseudo_label(image, probabilities, scribbles, rule="network_aware", device="cpu")
    chosen = np.take_along_axis(probabilities, label[None].astype(np.int64), 0)[0]
    # voxels the network labels right with 0.95 that a stroke reaches weakly: the published confidence is G (< 0.3)
    from scipy import ndimage

    interior = ndimage.minimum_filter(label, size=3) == ndimage.maximum_filter(label, size=3)
    dip = (published > 0.1) & (published < 0.3) & (label == probabilities.argmax(0)) & (chosen > 0.9) & interior
    assert dip.sum() > 5
    np.testing.assert_allclose(aware[dip], 0.8 * chosen[dip], rtol=1e-5)
    # a background stroke (where the network says 1) right beside the class-1 stroke: voxels between are contested
    contested_scribbles = scribbles.copy()
    contested_scribbles[19, 12:18] = 0
    contested_probabilities = probabilities.copy()
    contested_probabilities[:, 19, 12:18] = [[0.1], [0.9]]
    label, contested = geodesic_pseudo_label(
        image, contested_probabilities, contested_scribbles, rule="network_aware", device="cpu"
    )
    assert contested[18, 14] < 0.5 < aware[18, 14]
    assert np.all(contested[contested_scribbles != UNANNOTATED] == 1.0)


@pytest.mark.parametrize("supported_threshold", [4.0, 9.0])
def test_network_aware_matches_an_exact_recomputation_and_stays_in_bounds(supported_threshold):
    """Labels and confidence of rule='network_aware' re-done from Dijkstra distances on an anisotropic 3D case."""
    from nnunetv2.scribble_loop.geodesic_reference import exact_geodesic_distance

    image, probabilities, scribbles, spacing = _anisotropic_case(seed=4)
    shape = scribbles.shape  # one stroke (class 0) the network will agree with, two it does not
    scribbles[3, 6, 6:9] = 2
    probabilities[:, 2, 3, 2:6] = np.array([0.8, 0.1, 0.1], dtype=np.float32)[:, None]
    probabilities[:, 1, 9, 6:11] = np.array([0.1, 0.8, 0.1], dtype=np.float32)[:, None]
    probabilities[:, 3, 6, 6:9] = np.array([0.7, 0.2, 0.1], dtype=np.float32)[:, None]
    parameters = pseudo_label_parameters(
        rule="network_aware",
        threshold=4.0,
        lamb=0.9,
        intensity_weight=2.0,
        probability_weight=0.5,
        edge_normalisation=0.0,
        stroke_region_only=False,
        support_fraction=1.0,
        supported_threshold=supported_threshold,
        recalibration_sigma=0.0,  # the growth alone; the recalibration has its own tests
    )
    label, confidence = geodesic_pseudo_label(image, probabilities, scribbles, spacing, device="cpu", **parameters)
    cap = supported_threshold  # the supported strokes' T

    z_scored = (image - image.mean()) / image.std() * parameters["intensity_weight"]
    growing = np.zeros(shape, dtype=bool)
    growing[1, 9, 6:11] = growing[3, 6, 6:9] = True  # the class-0 stroke is resolved (the network says 0 on it)
    geodesic = np.zeros(probabilities.shape)
    # support_fraction: no growth through voxels where P_2 is below that fraction of its mean on the strokes
    unsupported = (probabilities[2] < parameters["support_fraction"] * probabilities[2][growing].mean()) & ~growing
    assert unsupported.sum() > 10
    step_cost = np.where(unsupported, np.inf, parameters["probability_weight"] * (1 - probabilities[2]))
    distance = exact_geodesic_distance(z_scored, growing, spacing, parameters["lamb"], step_cost=step_cost)
    geodesic[2] = np.exp(-(np.exp(np.minimum(distance, cap)) - 1) / cap)
    score = probabilities + geodesic - (geodesic.sum(0) - geodesic)
    drawn = scribbles != 3
    expected = np.where(drawn, scribbles, score.argmax(0))
    clear = np.sort(score, 0)[-1] - np.sort(score, 0)[-2] > 1e-3
    assert np.array_equal(label[clear], expected[clear])

    chosen = np.take_along_axis(probabilities, label[None].astype(np.int64), 0)[0]
    chosen_geodesic = np.take_along_axis(geodesic, label[None].astype(np.int64), 0)[0]
    competing = np.where(np.arange(3)[:, None, None, None] == label[None], 0.0, geodesic).max(0)
    matches = np.zeros(shape, dtype=bool)
    for factor in (1.0, parameters["boundary_factor"]):  # the network part is lowered at label boundaries
        candidate = np.maximum(chosen_geodesic, 0.8 * factor * chosen) * (1 - competing)
        candidate[drawn] = 1.0
        matches |= np.isclose(confidence, candidate, atol=2e-3)
    assert matches[clear].all()
    assert confidence.min() >= 0 and confidence.max() <= 1 and (competing[~drawn] > 0.1).sum() > 5


def test_network_aware_default_fixes_the_region_near_its_stroke_and_changes_nothing_else():
    image, probabilities, scribbles, truth = _two_objects_case()
    label, _ = geodesic_pseudo_label(image, probabilities, scribbles, device="cpu")
    prediction = probabilities.argmax(0)
    changed = label != prediction
    assert changed.sum() > 0.5 * truth[ERROR_A].size  # most of the scribbled error region
    assert np.all(label[changed] == truth[changed])  # every change is right
    assert np.all(label[ERROR_B] == 0)


def test_stroke_region_only_never_relabels_a_third_class():
    # a class-2 stroke drawn on voxels the network calls 1; class 0 next to them looks the same in the image
    image = np.zeros((1, 20, 30), dtype=np.float32)
    network = np.zeros((20, 30), dtype=np.int64)
    network[:, 10:20] = 1
    network[:, 20:] = 2
    probabilities = np.stack([np.where(network == c, 0.6, 0.2) for c in range(3)]).astype(np.float32)
    scribbles = np.full((20, 30), 3, dtype=np.uint8)
    scribbles[10, 12:18] = 2
    options = dict(rule="network_aware", edge_normalisation=0.0, device="cpu")
    free = geodesic_pseudo_label(image, probabilities, scribbles, stroke_region_only=False, **options)[0]
    limited = geodesic_pseudo_label(image, probabilities, scribbles, stroke_region_only=True, **options)[0]
    assert np.any(free[:, :10] == 2)  # the flat image lets the stroke spill into class 0
    assert np.array_equal(limited[:, :10], network[:, :10])  # not with stroke_region_only
    assert np.all(limited[10, 12:18] == 2) and (limited == 2).sum() > (network == 2).sum() + 6  # it grew in class 1


def test_edge_normalisation_makes_the_labels_independent_of_contrast_and_empty_background():
    image, probabilities, scribbles, _ = _two_objects_case()
    options = dict(rule="network_aware", edge_normalisation=98.0, device="cpu")
    label = geodesic_pseudo_label(image, probabilities, scribbles, **options)[0]
    brighter = geodesic_pseudo_label(image * 7.0 + 100.0, probabilities, scribbles, **options)[0]
    assert np.array_equal(label, brighter)
    # z-scoring alone depends on how much empty background the image has; the percentile of the edges much less
    wide_probabilities = np.pad(probabilities, ((0, 0), (0, 0), (0, 40)), mode="edge")
    wide_scribbles = np.pad(scribbles, ((0, 0), (0, 40)), constant_values=UNANNOTATED)
    wide_image = np.pad(image, ((0, 0), (0, 0), (0, 40)))
    wide = geodesic_pseudo_label(wide_image, wide_probabilities, wide_scribbles, **options)[0]
    assert np.array_equal(wide[:, :60], label)


def _unlearned_tube_case():
    """A one-voxel bright line the network has not learned (class 1 at probability 0.001 everywhere), a stroke on it."""
    image = np.zeros((1, 21, 60), dtype=np.float32)
    image[0, 10, 5:55] = 10
    p1 = np.full((21, 60), 0.001, dtype=np.float32)
    scribbles = np.full((21, 60), UNANNOTATED, dtype=np.uint8)
    scribbles[10, 27:33] = 1
    return image, np.stack([1 - p1, p1]), scribbles


def test_a_stroke_on_a_class_the_network_rules_out_grows_without_the_probability_brake():
    image, probabilities, scribbles = _unlearned_tube_case()
    braked_only = {"support_fraction": 0.0, "device": "cpu"}  # the brake alone, without the support limit
    label = geodesic_pseudo_label(image, probabilities, scribbles, **braked_only)[0]
    braked = geodesic_pseudo_label(image, probabilities, scribbles, unbraked_stroke_probability=0.0, **braked_only)[0]
    free = geodesic_pseudo_label(
        image, probabilities, scribbles, probability_weight=0.0, unbraked_stroke_probability=0.0, **braked_only
    )[0]
    assert np.array_equal(label, free)  # below unbraked_stroke_probability: as if the probability term were off
    assert (label == 1).sum() >= 30 and (braked == 1).sum() <= 14  # it follows the line much farther
    assert np.all(label[np.arange(21) != 10] == 0)  # and only the line


def test_a_stroke_whose_class_the_network_gives_some_probability_stays_braked():
    image, probabilities, scribbles, _ = _two_objects_case()  # 0.1 on the stroke, above the default 0.015
    braked_only = {"support_fraction": 0.0, "device": "cpu"}  # the brake alone, without the support limit
    label = geodesic_pseudo_label(image, probabilities, scribbles, **braked_only)[0]
    braked = geodesic_pseudo_label(image, probabilities, scribbles, unbraked_stroke_probability=0.0, **braked_only)[0]
    assert np.array_equal(label, braked)
    above = geodesic_pseudo_label(image, probabilities, scribbles, unbraked_stroke_probability=0.2, **braked_only)[0]
    assert (above == 1).sum() > (label == 1).sum()  # counted as ruled out, the same stroke grows farther


def _flat_error_region_case(shape, region, stroke):
    """A flat image where the network gives class 1 probability 0.3 in an error region and 0.02 around it, and a
    class-1 stroke; returns (image, probabilities, scribbles, error region)."""
    image = np.zeros((1, *shape), dtype=np.float32)
    p1 = np.full(shape, 0.02, dtype=np.float32)
    error = np.zeros(shape, dtype=bool)
    error[region] = True
    p1[error] = 0.3
    scribbles = np.full(shape, UNANNOTATED, dtype=np.uint8)
    scribbles[stroke] = 1
    return image, np.stack([1 - p1, p1]), scribbles, error


def test_support_fraction_keeps_growth_where_the_network_doubts_as_much_as_on_the_stroke():
    image, probabilities, scribbles, error = _flat_error_region_case((20, 40), np.s_[5:15, 10:20], np.s_[10, 12:18])
    free = geodesic_pseudo_label(image, probabilities, scribbles, support_fraction=0.0, device="cpu")[0]
    supported = geodesic_pseudo_label(image, probabilities, scribbles, support_fraction=0.5, device="cpu")[0]
    assert np.all(free[error] == 1) and (free[~error] == 1).sum() > 5  # without support: spills around the region
    assert np.all(supported[error] == 1) and np.all(supported[~error] == 0)  # P_1 0.02 < 0.5 x 0.3: blocked


def test_supported_threshold_lets_a_supported_stroke_fill_more_of_its_region_and_nothing_outside():
    # a long error region and a short stroke at one end
    image, probabilities, scribbles, error = _flat_error_region_case((20, 60), np.s_[8:12, 5:55], np.s_[10, 5:9])

    def grown(**options) -> np.ndarray:
        return geodesic_pseudo_label(image, probabilities, scribbles, device="cpu", **options)[0] == 1

    near = grown(support_fraction=0.5, supported_threshold=10.0)  # the threshold's reach
    far = grown(support_fraction=0.5, supported_threshold=1000.0)
    assert near[error].sum() < error.sum() and far[error].sum() > near[error].sum() + 20
    assert not far[~error].any()  # the support limit still bounds it
    # without a support limit the option does nothing (the stroke's T stays the threshold)
    assert np.array_equal(grown(support_fraction=0.0), grown(support_fraction=0.0, supported_threshold=1000.0))


def test_rule_defaults_depend_on_the_rule_and_explicit_values_win():
    published = pseudo_label_parameters(rule="published")
    aware = pseudo_label_parameters()
    assert aware["rule"] == "network_aware"
    for name, value in RULE_DEFAULTS["published"].items():
        assert published[name] == value
    for name, value in RULE_DEFAULTS["network_aware"].items():
        assert aware[name] == value
    assert pseudo_label_parameters(rule="published", probability_weight=0.7)["probability_weight"] == 0.7


def test_bad_rule_options_raise_one_line_errors():
    image, probabilities, scribbles, _ = _two_objects_case()
    with pytest.raises(NnUNetError, match="rule must be one of published, network_aware, got 'magic'"):
        geodesic_pseudo_label(image, probabilities, scribbles, rule="magic")
    with pytest.raises(NnUNetError, match=r"resolved_stroke_agreement must be a number in \(0, 1\], got 0"):
        pseudo_label_parameters(resolved_stroke_agreement=0)
    with pytest.raises(NnUNetError, match=r"resolved_stroke_agreement must be a number in \(0, 1\], got 1.5"):
        geodesic_pseudo_label(image, probabilities, scribbles, resolved_stroke_agreement=1.5)
    with pytest.raises(NnUNetError, match=r"edge_normalisation must be a number in \[0, 100\), got 100"):
        geodesic_pseudo_label(image, probabilities, scribbles, edge_normalisation=100)
    with pytest.raises(NnUNetError, match="stroke_region_only must be true or false, got 'yes'"):
        pseudo_label_parameters(stroke_region_only="yes")
    with pytest.raises(NnUNetError, match=r"unbraked_stroke_probability must be a number in \[0, 1\), got 1"):
        geodesic_pseudo_label(image, probabilities, scribbles, unbraked_stroke_probability=1)
    with pytest.raises(NnUNetError, match=r"unbraked_stroke_probability must be a number in \[0, 1\), got -0.1"):
        pseudo_label_parameters(unbraked_stroke_probability=-0.1)
    with pytest.raises(NnUNetError, match=r"support_fraction must be a number in \[0, 1\], got 1.5"):
        geodesic_pseudo_label(image, probabilities, scribbles, support_fraction=1.5)
    with pytest.raises(NnUNetError, match=r"supported_threshold must be a number > 0, got 0"):
        pseudo_label_parameters(supported_threshold=0)
    with pytest.raises(NnUNetError, match=r"supported_threshold must be a number > 0, got -1"):
        geodesic_pseudo_label(image, probabilities, scribbles, supported_threshold=-1)
    with pytest.raises(NnUNetError, match=r"recalibration_sigma must be a number >= 0, got -2"):
        geodesic_pseudo_label(image, probabilities, scribbles, recalibration_sigma=-2)
    with pytest.raises(NnUNetError, match=r"recalibration_prior must be a number > 0, got 0"):
        pseudo_label_parameters(recalibration_prior=0)
    with pytest.raises(NnUNetError, match=r"recalibration_scale must be a number > 0, got -1"):
        geodesic_pseudo_label(image, probabilities, scribbles, recalibration_scale=-1)


def test_keep_previous_where_unsure_changes_a_voxel_only_to_a_well_supported_class():
    from nnunetv2.scribble_loop.pseudo_labels import keep_previous_where_unsure

    previous_label = np.array([[0, 0, 1, 1, 2]], dtype=np.uint8)
    previous_confidence = np.full((1, 5), 0.3, dtype=np.float32)
    label = np.array([[0, 1, 0, 2, 2]], dtype=np.uint8)
    confidence = np.full((1, 5), 0.9, dtype=np.float32)
    probabilities = np.array(
        [
            [[0.5, 0.1, 0.85, 0.1, 0.1]],  # class 0
            [[0.3, 0.6, 0.1, 0.1, 0.1]],  # class 1
            [[0.2, 0.3, 0.05, 0.8, 0.8]],
        ],
        dtype=np.float32,
    )
    new_label, new_confidence, kept = keep_previous_where_unsure(
        label, confidence, probabilities, previous_label, previous_confidence, 0.8
    )
    # voxel 0, 4: unchanged labels take the new confidence; 1: 1 has only 0.6 -> kept; 2: 0 has 0.85, 3: 2 has
    # 0.8 (the bound itself) -> renewed
    assert new_label.tolist() == [[0, 0, 0, 2, 2]]
    np.testing.assert_allclose(new_confidence, [[0.9, 0.3, 0.9, 0.9, 0.9]])
    assert kept.tolist() == [[False, True, False, False, False]]
    assert new_label.dtype == np.uint8 and new_confidence.dtype == np.float32
    everything = keep_previous_where_unsure(label, confidence, probabilities, previous_label, previous_confidence, 0)
    assert np.array_equal(everything[0], label) and not everything[2].any()
    nothing = keep_previous_where_unsure(label, confidence, probabilities, previous_label, previous_confidence, 1)
    assert np.array_equal(nothing[0], previous_label)
    for bad in (-0.1, 1.5, "high", True):
        with pytest.raises(NnUNetError, match=r"update_min_probability must be a number in \[0, 1\], got"):
            keep_previous_where_unsure(label, confidence, probabilities, previous_label, previous_confidence, bad)
