import numpy as np
import pytest

from nnunetv2.uncertainty.measures import (
    case_uncertainty_score,
    class_entropy,
    class_entropy_regional,
    margin,
    mutual_information,
    t_test_p_values,
    total_entropy,
    uncertainty_map,
)


def _certain(t=5, c=3, n=4):
    p = np.zeros((t, c, n))
    p[:, 0] = 1
    return p


def _uniform(t=5, c=3, n=4):
    return np.full((t, c, n), 1 / c)


def _split(t=6, n=4):
    """Confident checkpoints that disagree: half say class 0, half class 1."""
    p = np.zeros((t, 2, n))
    p[: t // 2, 0] = 1
    p[t // 2 :, 1] = 1
    return p


def test_class_entropy():
    assert np.allclose(class_entropy(_certain()), 0)
    assert np.allclose(class_entropy(_uniform()), 1)
    assert np.allclose(class_entropy(_split()), 1)  # disagreement shows up here


def test_total_entropy():
    assert np.allclose(total_entropy(_certain()), 0)
    assert np.allclose(total_entropy(_uniform()), 1)
    assert np.allclose(total_entropy(_split()), 0)  # each checkpoint is sure of itself
    half = np.full((4, 2, 1), 0.5)
    half[:, 0, 0], half[:, 1, 0] = 0.9, 0.1
    expected = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)) / np.log(2)
    assert np.isclose(total_entropy(half)[0], expected, atol=1e-6)


def test_t_test():
    assert np.allclose(t_test_p_values(_certain()), 0)
    assert np.allclose(t_test_p_values(_uniform()), 1)
    assert (t_test_p_values(_split()) >= 0.05).all()
    rng = np.random.default_rng(0)
    separated = np.stack([rng.normal(0.8, 0.02, 10), rng.normal(0.2, 0.02, 10)], 1)[..., None]
    assert t_test_p_values(separated)[0] < 1e-6
    overlapping = np.stack([rng.normal(0.5, 0.1, 10), rng.normal(0.48, 0.1, 10)], 1)[..., None]
    assert t_test_p_values(overlapping)[0] >= 0.05


def test_mutual_information_is_the_disagreement_alone():
    assert np.allclose(mutual_information(_certain()), 0)
    assert np.allclose(mutual_information(_uniform()), 0)  # unsure, but every checkpoint alike
    assert np.allclose(mutual_information(_split()), 1)  # sure checkpoints split evenly over both classes
    # two checkpoints, (0.9, 0.1) and (0.5, 0.5): H(0.7, 0.3) - (H(0.9, 0.1) + H(0.5, 0.5)) / 2, in bits
    p = np.array([[[0.9], [0.1]], [[0.5], [0.5]]])

    def bits(*q):
        return -sum(x * np.log2(x) for x in q)

    expected = bits(0.7, 0.3) - (bits(0.9, 0.1) + bits(0.5, 0.5)) / 2
    assert np.isclose(mutual_information(p)[0], expected, atol=1e-6)


def test_margin_is_one_minus_the_gap_of_the_top_two_mean_probabilities():
    assert np.allclose(margin(_certain()), 0)
    assert np.allclose(margin(_uniform()), 1)
    assert np.allclose(margin(_split()), 1)  # mean (0.5, 0.5)
    # mean over the two checkpoints (0.5, 0.3, 0.2): 1 - (0.5 - 0.3)
    p = np.array([[[0.6], [0.3], [0.1]], [[0.4], [0.3], [0.3]]])
    assert np.isclose(margin(p)[0], 0.8, atol=1e-6)


def test_class_entropy_regional_adds_the_blurred_entropy():
    assert np.allclose(class_entropy_regional(_certain(n=20)), 0)
    assert np.allclose(class_entropy_regional(_uniform(n=20)), 1)
    # one fully uncertain voxel in a certain 41 x 41 field: its neighbours are raised, far voxels stay 0
    p = np.zeros((2, 2, 41, 41))
    p[:, 0] = 1
    p[:, :, 20, 20] = 0.5
    regional = class_entropy_regional(p)
    from scipy import ndimage

    impulse = np.zeros((41, 41))
    impulse[20, 20] = 1
    blurred = ndimage.gaussian_filter(impulse, 8.0, mode="nearest")
    assert np.isclose(regional[20, 20], (1 + 0.5 * blurred[20, 20]) / 1.5, atol=1e-6)
    assert np.isclose(regional[20, 26], 0.5 * blurred[20, 26] / 1.5, atol=1e-6)
    assert regional[20, 26] > 0 and class_entropy(p)[20, 26] == 0
    assert regional[20, 26] > regional[0, 0]


def test_class_entropy_regional_blurs_the_same_millimetres_along_coarse_axes():
    from scipy import ndimage

    # one uncertain voxel in a volume of 4 mm slices and 1 mm pixels: 2 voxels of sigma across slices, 8 in-plane
    p = np.zeros((2, 2, 21, 41, 41))
    p[:, 0] = 1
    p[:, :, 10, 20, 20] = 0.5
    impulse = np.zeros((21, 41, 41))
    impulse[10, 20, 20] = 1
    anisotropic = class_entropy_regional(p, spacing=(4.0, 1.0, 1.0))
    expected = (impulse + 0.5 * ndimage.gaussian_filter(impulse, (2.0, 8.0, 8.0), mode="nearest")) / 1.5
    assert np.allclose(anisotropic, expected, atol=1e-6)
    isotropic = class_entropy_regional(p)  # no spacing: 8 voxels along every axis
    assert isotropic[18, 20, 20] > 100 * anisotropic[18, 20, 20]  # 8 slices (32 mm) away: barely raised
    # a 2D image stored as one slice with a placeholder spacing: no blur across the single slice
    flat = class_entropy_regional(p[:, :, 10:11], spacing=(999.0, 1.0, 1.0))
    assert np.allclose(flat[0], class_entropy_regional(p[:, :, 10])[...], atol=1e-6)
    with pytest.raises(ValueError, match="does not fit a map of shape"):
        class_entropy_regional(p, spacing=(1.0, 1.0))


def test_maps_keep_spatial_shape_and_reject_unknown_measure():
    p = np.random.default_rng(0).dirichlet([1, 1, 1], size=(4, 5, 6)).transpose(0, 3, 1, 2)
    for measure in (
        "class_entropy",
        "total_entropy",
        "t_test",
        "mutual_information",
        "margin",
        "class_entropy_regional",
    ):
        u = uncertainty_map(p, measure)
        assert u.shape == (5, 6) and u.dtype == np.float32 and (u >= 0).all() and (u <= 1).all()
    with pytest.raises(ValueError, match="unknown uncertainty measure"):
        uncertainty_map(p, "variance")


def test_case_score_averages_foreground_and_border():
    seg = np.zeros((10, 10), dtype=np.uint8)
    seg[4:6, 4:6] = 1
    u = np.zeros((10, 10), dtype=np.float32)
    u[4:6, 4:6] = 1.0
    # region = 2x2 foreground dilated by 1 voxel (cross-shaped structure): 12 voxels
    assert np.isclose(case_uncertainty_score(u, seg, border_width=1), 4 / 12)
    assert np.isclose(case_uncertainty_score(u, seg, border_width=0), 1.0)
    assert np.isclose(case_uncertainty_score(u, np.zeros_like(seg)), 4 / 100)
