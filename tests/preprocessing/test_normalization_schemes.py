"""Each normalization scheme against a hand computation, and the lookups by name."""

from __future__ import annotations

import numpy as np
import pytest

from nnunetv2.exceptions import DatasetError, PlansError
from nnunetv2.preprocessing.normalization import (
    CTNormalization,
    NoNormalization,
    RescaleTo01Normalization,
    RGBTo01Normalization,
    ZScoreNormalization,
    normalization_class_from_name,
)

IMAGE = np.array([[[0.0, 0.0, 10.0], [20.0, 30.0, 0.0]]], dtype=np.float32)  # (1, 2, 3)
SEG = np.array([[[-1, -1, 0], [1, 0, -1]]], dtype=np.int16)  # inside: 10, 20, 30


def test_zscore_over_the_whole_image():
    out = ZScoreNormalization(use_mask_for_norm=False).run(IMAGE, SEG)
    values = np.array([0, 0, 10, 20, 30, 0], dtype=float)
    expected = (values - values.mean()) / values.std()
    np.testing.assert_allclose(out.ravel(), expected, rtol=1e-6)
    assert out.dtype == np.float32


def test_zscore_inside_the_nonzero_mask_zeroes_the_outside():
    out = ZScoreNormalization(use_mask_for_norm=True).run(IMAGE, SEG)
    inside = (np.array([10.0, 20.0, 30.0]) - 20.0) / np.std([10.0, 20.0, 30.0])
    np.testing.assert_allclose(out[SEG >= 0], inside, rtol=1e-6)
    assert (out[SEG < 0] == 0).all()


def test_zscore_of_a_constant_image_stays_finite():
    out = ZScoreNormalization().run(np.full((2, 2, 2), 7.0, dtype=np.float32))
    assert np.array_equal(out, np.zeros((2, 2, 2)))


def test_ct_clips_to_percentiles_then_uses_foreground_stats():
    props = {"mean": 12.0, "std": 4.0, "percentile_00_5": 5.0, "percentile_99_5": 25.0}
    out = CTNormalization(intensityproperties=props).run(IMAGE, SEG)
    expected = (np.clip(IMAGE, 5.0, 25.0) - 12.0) / 4.0
    np.testing.assert_allclose(out, expected)
    with pytest.raises(PlansError, match="lack 'percentile_99_5'"):
        CTNormalization(intensityproperties={"mean": 1, "std": 1, "percentile_00_5": 0}).run(IMAGE)
    with pytest.raises(PlansError, match="foreground_intensity_properties_per_channel"):
        CTNormalization().run(IMAGE)


def test_no_normalization_rescale_and_rgb():
    assert np.array_equal(NoNormalization().run(IMAGE.astype(np.int32)), IMAGE)
    np.testing.assert_allclose(RescaleTo01Normalization().run(IMAGE + 5), (IMAGE + 5 - 5) / 30)
    np.testing.assert_allclose(RGBTo01Normalization().run(np.array([0, 51, 255], dtype=np.uint8)), [0, 0.2, 1])
    with pytest.raises(DatasetError, match=r"expects values in \[0, 255\], found \[0, 300\]"):
        RGBTo01Normalization().run(np.array([0.0, 300.0]))


def test_input_is_not_modified():
    image = IMAGE.copy()
    for cls in (ZScoreNormalization, NoNormalization, RescaleTo01Normalization):
        cls().run(image, SEG)
    assert np.array_equal(image, IMAGE)


def test_lookup_by_plans_name():
    assert normalization_class_from_name("CTNormalization") is CTNormalization
    assert normalization_class_from_name("RGBTo01Normalization") is RGBTo01Normalization
    assert normalization_class_from_name("RGBTo0_1Normalization") is RGBTo01Normalization
    with pytest.raises(PlansError, match="unknown normalization scheme 'FancyNorm'"):
        normalization_class_from_name("FancyNorm")
