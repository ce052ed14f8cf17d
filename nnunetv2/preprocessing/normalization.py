"""Intensity normalization schemes, selected per channel by the plans' ``normalization_schemes``.

Class names are nnU-Net v2's because plans store them by name. Each scheme normalizes one
channel ``(z, y, x)`` of a cropped case; ``seg`` is the cropped segmentation, whose negative
values mark voxels outside the nonzero region (the mask used when ``use_mask_for_norm`` is set).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from nnunetv2.exceptions import DatasetError, PlansError

_MIN_STD = 1e-8  # keeps constant images finite


class ImageNormalization(ABC):
    """Base class: ``run(image, seg)`` returns the normalized channel as ``target_dtype``."""

    leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true = False

    def __init__(
        self,
        use_mask_for_norm: bool | None = None,
        intensityproperties: dict[str, Any] | None = None,
        target_dtype: type = np.float32,
    ):
        self.use_mask_for_norm = bool(use_mask_for_norm)
        self.intensityproperties = intensityproperties
        self.target_dtype = target_dtype

    @abstractmethod
    def run(self, image: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
        """Return the normalized copy of ``image``."""


class ZScoreNormalization(ImageNormalization):
    """Subtract the image's mean and divide by its std (inside the nonzero mask with use_mask_for_norm)."""

    leaves_pixels_outside_mask_at_zero_if_use_mask_for_norm_is_true = True

    def run(self, image: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
        """Return the z-scored copy of ``image``; voxels outside the mask become 0 when masking."""
        if not self.use_mask_for_norm:
            out: np.ndarray = image.astype(self.target_dtype, copy=True)
            out -= out.mean(dtype=np.float64)
            out /= max(float(out.std(dtype=np.float64)), _MIN_STD)
            return out
        if seg is None:
            raise ValueError("ZScoreNormalization with use_mask_for_norm needs the cropped segmentation")
        mask = seg >= 0
        out = np.zeros(image.shape, dtype=self.target_dtype)
        values = image[mask].astype(np.float64)
        if values.size:
            out[mask] = (values - values.mean()) / max(float(values.std()), _MIN_STD)
        return out


class CTNormalization(ImageNormalization):
    """Clip to the dataset's foreground 0.5/99.5 percentiles, then z-score with its foreground mean/std."""

    _REQUIRED = ("mean", "std", "percentile_00_5", "percentile_99_5")

    def run(self, image: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
        """Return the clipped and standardised copy of ``image``."""
        props = self.intensityproperties
        if props is None:
            raise PlansError("CTNormalization needs the plans' foreground_intensity_properties_per_channel")
        missing = [k for k in self._REQUIRED if k not in props]
        if missing:
            raise PlansError(f"CTNormalization: foreground intensity properties lack '{missing[0]}'")
        out = np.clip(image, props["percentile_00_5"], props["percentile_99_5"]).astype(self.target_dtype)
        out -= props["mean"]
        out /= max(float(props["std"]), _MIN_STD)
        return out


class NoNormalization(ImageNormalization):
    """Keep intensities as they are (only the dtype changes)."""

    def run(self, image: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
        """Return ``image`` as a ``target_dtype`` copy."""
        return image.astype(self.target_dtype, copy=True)


class RescaleTo01Normalization(ImageNormalization):
    """Map the image's own min..max range to 0..1."""

    def run(self, image: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
        """Return ``(image - min) / (max - min)``."""
        out: np.ndarray = image.astype(self.target_dtype, copy=True)
        out -= out.min()
        out /= max(float(out.max()), _MIN_STD)
        return out


class RGBTo01Normalization(ImageNormalization):
    """Divide 8-bit colour values by 255."""

    def run(self, image: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
        """Return ``image / 255``; values outside 0..255 are a data error."""
        low, high = float(image.min()), float(image.max())
        if low < 0 or high > 255:
            raise DatasetError(f"rgb_to_0_1 normalization expects values in [0, 255], found [{low:g}, {high:g}]")
        out: np.ndarray = image.astype(self.target_dtype, copy=True)
        out /= 255.0
        return out


NORMALIZATION_SCHEMES: dict[str, type[ImageNormalization]] = {
    cls.__name__: cls
    for cls in (CTNormalization, NoNormalization, RescaleTo01Normalization, RGBTo01Normalization, ZScoreNormalization)
}
NORMALIZATION_SCHEMES["RGBTo0_1Normalization"] = RGBTo01Normalization  # a spelling seen in hand-written plans


def normalization_class_from_name(name: str) -> type[ImageNormalization]:
    """Return the normalization class a plans file names in ``normalization_schemes``."""
    if name not in NORMALIZATION_SCHEMES:
        raise PlansError(
            f"unknown normalization scheme '{name}' in the plans (known: {', '.join(NORMALIZATION_SCHEMES)})"
        )
    return NORMALIZATION_SCHEMES[name]
