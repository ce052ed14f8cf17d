"""Resample images, segmentations and probabilities to a new shape or spacing (nnU-Net v2's rules).

Plans name the resampling functions (``resampling_fn_data`` etc.), so the public names and
arguments are nnU-Net v2's. Geometry follows ``skimage.transform.resize`` with ``mode='edge'``
and no anti-aliasing, as nnU-Net v2 uses it: voxel centres map with corners not aligned, spline
output is clipped to the input's value range. When the spacing is anisotropic beyond a threshold
the coarse axis is resampled on its own with ``order_z`` (nearest neighbour by default), so
slices are never blended with interpolation across the coarse axis.

Segmentations are resampled as one map per label value (linear interpolation by default) and
each voxel takes the value whose map is largest, so no label bleeds into a value that was not
there: the ignore label and the -1 outside-crop marker are values like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from nnunetv2.exceptions import PlansError

ANISOTROPY_THRESHOLD = 3.0


def compute_new_shape(
    old_shape: Sequence[int], old_spacing: Sequence[float] | np.ndarray, new_spacing: Sequence[float] | np.ndarray
) -> list[int]:
    """Return the shape a volume of ``old_shape`` voxels takes at ``new_spacing`` (rounded, at least 1)."""
    ratio = np.asarray(old_spacing, dtype=float) / np.asarray(new_spacing, dtype=float)
    return [max(1, int(v)) for v in np.round(ratio * np.asarray(old_shape, dtype=float))]


def get_do_separate_z(spacing: Sequence[float], anisotropy_threshold: float = ANISOTROPY_THRESHOLD) -> bool:
    """Return True when the coarsest spacing exceeds ``anisotropy_threshold`` times the finest."""
    return max(spacing) / min(spacing) > anisotropy_threshold


def get_lowres_axis(spacing: Sequence[float]) -> list[int]:
    """Return the axes that have the coarsest spacing."""
    values = np.asarray(spacing, dtype=float)
    return [int(a) for a in np.flatnonzero(values == values.max())]


def _separate_axis(
    current_spacing: Sequence[float], new_spacing: Sequence[float], force_separate_z: bool | None, threshold: float
) -> int | None:
    """Return the axis to resample on its own, or None (nnU-Net v2's decision rule)."""
    if force_separate_z is not None:
        axes = get_lowres_axis(current_spacing) if force_separate_z else []
    elif get_do_separate_z(current_spacing, threshold):
        axes = get_lowres_axis(current_spacing)
    elif get_do_separate_z(new_spacing, threshold):
        axes = get_lowres_axis(new_spacing)
    else:
        axes = []
    # two or three equally coarse axes (e.g. 0.24 x 1.25 x 1.25) are resampled together
    return axes[0] if len(axes) == 1 else None


def _resize_window(
    crop: np.ndarray,
    in_start: Sequence[int],
    in_shape: Sequence[int],
    new_shape: Sequence[int],
    out_start: Sequence[int],
    out_stop: Sequence[int],
    order: int,
) -> np.ndarray:
    """Return ``[out_start:out_stop]`` of resizing a volume of ``in_shape`` to ``new_shape`` (float32).

    ``crop`` is the volume's part starting at ``in_start``; the result equals the full computation
    wherever the volume's edge-extension beyond ``crop`` matches the crop's own (e.g. zeros).
    """
    scale = np.asarray(in_shape, dtype=float) / np.asarray(new_shape, dtype=float)
    # output voxel i samples input coordinate (i + 0.5) * scale - 0.5 (skimage's resize); scale 1 copies
    offset = (np.asarray(out_start) + 0.5) * scale - 0.5 - np.asarray(in_start)
    output_shape = tuple(int(b - a) for a, b in zip(out_start, out_stop))
    return ndimage.affine_transform(
        crop, scale, offset=offset, output_shape=output_shape, order=order, mode="nearest", output=np.float32
    )


def _grid_resize(array: np.ndarray, new_shape: Sequence[int], order: int) -> np.ndarray:
    """Resize to ``new_shape`` with voxel centres aligned as skimage's resize (float32 out, no clipping)."""
    origin = (0,) * array.ndim
    return _resize_window(array, origin, array.shape, new_shape, origin, new_shape, order)


def _nearest_along_axis(array: np.ndarray, new_size: int, axis: int) -> np.ndarray:
    """Nearest-neighbour resampling along one axis (the same voxel choice as order 0 interpolation)."""
    old_size = array.shape[axis]
    if old_size == new_size:
        return array
    index = np.minimum(((np.arange(new_size) + 0.5) * (old_size / new_size)).astype(np.int64), old_size - 1)
    return np.take(array, index, axis=axis)


def _resize_slicewise(
    image: np.ndarray, new_shape: Sequence[int], order: int, axis: int, clip_per_slice: bool
) -> np.ndarray:
    """Resize every slice along ``axis`` in 2D (``new_shape[axis]`` must equal the current size)."""
    if tuple(image.shape) == tuple(new_shape):
        return image.astype(np.float32, copy=False)
    if order <= 1:
        # no spline prefilter: a 3D call with scale 1 along ``axis`` samples each slice exactly
        return _grid_resize(image, new_shape, order)
    moved = np.moveaxis(image, axis, 0)
    plane_shape = [s for a, s in enumerate(new_shape) if a != axis]
    out = np.empty((moved.shape[0], *plane_shape), dtype=np.float32)
    low, high = (None, None) if clip_per_slice else (image.min(), image.max())
    for i, plane in enumerate(moved):
        out[i] = _grid_resize(plane, plane_shape, order)
        if clip_per_slice:
            low, high = plane.min(), plane.max()
        np.clip(out[i], low, high, out=out[i])
    return np.moveaxis(out, 0, axis)


def _resample_image(
    image: np.ndarray, new_shape: Sequence[int], order: int, order_z: int, axis: int | None
) -> np.ndarray:
    """Resample one ``(z, y, x)`` channel to float32; ``axis`` is resampled on its own with ``order_z``."""
    new_shape = tuple(int(s) for s in new_shape)
    if axis is None:
        unchanged = [a for a in range(image.ndim) if image.shape[a] == new_shape[a]]
        if unchanged and order > 1:
            # resizing the other axes slice by slice gives the same spline values, several times faster
            return _resize_slicewise(image, new_shape, order, unchanged[0], clip_per_slice=False)
        out = _grid_resize(image, new_shape, order)
        if order > 1:
            np.clip(out, image.min(), image.max(), out=out)
        return out
    plane_shape = list(new_shape)
    plane_shape[axis] = image.shape[axis]
    if order_z == 0:
        # nearest neighbour along ``axis`` commutes with in-plane resizing: do it on the smaller side
        if new_shape[axis] < image.shape[axis]:
            image = _nearest_along_axis(image, new_shape[axis], axis)
            plane_shape[axis] = new_shape[axis]
            return _resize_slicewise(image, plane_shape, order, axis, clip_per_slice=True)
        out = _resize_slicewise(image, plane_shape, order, axis, clip_per_slice=True)
        return _nearest_along_axis(out, new_shape[axis], axis)
    out = _resize_slicewise(image, plane_shape, order, axis, clip_per_slice=True)
    along_axis = list(out.shape)
    along_axis[axis] = new_shape[axis]
    return _grid_resize(out, along_axis, order_z)


def _resample_labels(
    seg: np.ndarray, new_shape: Sequence[int], order: int, order_z: int, axis: int | None
) -> np.ndarray:
    """Resample a ``(z, y, x)`` label map: interpolate each label's mask, keep the strongest label."""
    new_shape = tuple(int(s) for s in new_shape)
    if order == 0 and (axis is None or order_z == 0):
        return _nearest_labels(seg, new_shape)
    if axis is not None and order_z == 0:
        # labels are picked per voxel, so nearest-neighbour slice picking can happen on the label map,
        # before the in-plane work when that shrinks it, after it otherwise
        if new_shape[axis] < seg.shape[axis]:
            seg = _nearest_along_axis(seg, new_shape[axis], axis)
        plane_shape = list(new_shape)
        plane_shape[axis] = seg.shape[axis]
        if order == 1:
            planes = _strongest_label_linear(seg, plane_shape)
        else:
            planes = _strongest_label(
                seg, lambda mask: _resize_slicewise(mask, plane_shape, order, axis, clip_per_slice=True)
            )
        return _nearest_along_axis(planes, new_shape[axis], axis)
    if order == 1 and axis is None:
        return _strongest_label_linear(seg, new_shape)
    return _strongest_label(seg, lambda mask: _resample_image(mask, new_shape, order, order_z, axis))


def _nearest_labels(seg: np.ndarray, new_shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resampling of a label map, axis by axis (exact values, any integer dtype)."""
    for axis, size in enumerate(new_shape):
        seg = _nearest_along_axis(seg, size, axis)
    return np.ascontiguousarray(seg)


def _output_range(start: int, stop: int, in_size: int, out_size: int) -> tuple[int, int]:
    """Output voxels whose linear interpolation reads any input voxel in ``[start, stop)`` (a superset)."""
    scale = in_size / out_size
    # output i samples c = (i + 0.5) * scale - 0.5 and reads floor(c) and floor(c) + 1
    first = int(np.floor((start - 0.5) / scale - 0.5))
    last = int(np.ceil((stop + 0.5) / scale - 0.5)) + 1
    return max(0, first), min(out_size, last)


def _strongest_label_linear(seg: np.ndarray, new_shape: Sequence[int]) -> np.ndarray:
    """Linear-interpolation version of ``_strongest_label`` that touches each label only near its bounding box.

    Linear interpolation keeps the masks summing to 1, so the most frequent label's score is 1 minus
    the others' and is never computed; the others are interpolated in their (small) boxes only.
    """
    offset = int(seg.min()) - 1
    shifted = seg.astype(np.int32) - offset  # values >= 1, as find_objects wants
    counts = np.bincount(shifted.ravel())
    values = [int(v) for v in np.flatnonzero(counts)]
    dominant = max(values, key=lambda v: counts[v])
    result = np.full(tuple(new_shape), dominant + offset, dtype=seg.dtype)
    if len(values) == 1:
        return result
    best_score = np.zeros(result.shape, dtype=np.float32)
    total = np.zeros(result.shape, dtype=np.float32)
    boxes = ndimage.find_objects(shifted)
    for value in values:  # ascending: ties go to the higher label
        if value == dominant:
            continue
        # one voxel of margin, so the crop's edge extension is zeros like the volume's mask beyond the box
        in_start = [max(0, s.start - 1) for s in boxes[value - 1]]
        in_stop = [min(n, s.stop + 1) for s, n in zip(boxes[value - 1], seg.shape)]
        out_start, out_stop = zip(
            *(_output_range(a, b, n, m) for a, b, n, m in zip(in_start, in_stop, seg.shape, new_shape))
        )
        crop = (shifted[tuple(slice(a, b) for a, b in zip(in_start, in_stop))] == value).astype(np.float32)
        score = _resize_window(crop, in_start, seg.shape, new_shape, out_start, out_stop, order=1)
        region = tuple(slice(a, b) for a, b in zip(out_start, out_stop))
        total[region] += score
        region_best, region_result = best_score[region], result[region]
        take = (score >= region_best) & (score > 0)
        region_best[take] = score[take]
        region_result[take] = value + offset
    dominant_score = 1.0 - total
    wins = (dominant_score > best_score) | ((dominant_score == best_score) & (result < dominant + offset))
    result[wins] = dominant + offset
    return result


def _strongest_label(seg: np.ndarray, resample_mask: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Return, per output voxel, the label whose resampled binary mask is largest.

    Ties go to the higher label value, as in nnU-Net v2 (which paints labels in increasing order):
    halving a 2-voxel structure puts every sample halfway, and the structure should survive.
    """
    labels = np.unique(seg)
    best_score = resample_mask((seg == labels[0]).astype(np.float32))
    result = np.full(best_score.shape, labels[0], dtype=seg.dtype)
    for label in labels[1:]:
        score = resample_mask((seg == label).astype(np.float32))
        np.copyto(result, label, where=score >= best_score)
        np.maximum(best_score, score, out=best_score)
    return result


def resample_data_or_seg_to_shape(
    data: np.ndarray,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    new_spacing: Sequence[float],
    is_seg: bool = False,
    order: int = 3,
    order_z: int = 0,
    force_separate_z: bool | None = None,
    separate_z_anisotropy_threshold: float = ANISOTROPY_THRESHOLD,
) -> np.ndarray:
    """Return ``(c, z, y, x)`` data resampled to ``(c, *new_shape)``: float32, or the seg's dtype for segs.

    Channels are processed one at a time, so probabilities of many classes need only one extra
    channel of float64 working memory. Torch tensors are accepted and come back as numpy.
    """
    if hasattr(data, "detach"):
        data = data.detach().cpu().numpy()
    if data.ndim != 4 or len(new_shape) != 3:
        raise ValueError(f"expected (c, z, y, x) data and a 3D shape, got {data.shape} and {tuple(new_shape)}")
    new_shape = tuple(int(s) for s in new_shape)
    if tuple(data.shape[1:]) == new_shape:
        return data if is_seg else data.astype(np.float32, copy=False)
    axis = _separate_axis(current_spacing, new_spacing, force_separate_z, separate_z_anisotropy_threshold)
    out = np.empty((data.shape[0], *new_shape), dtype=data.dtype if is_seg else np.float32)
    for c in range(data.shape[0]):
        if is_seg:
            out[c] = _resample_labels(data[c], new_shape, order, order_z, axis)
        else:
            out[c] = _resample_image(data[c], new_shape, order, order_z, axis)
    return out


def resample_data_or_seg_to_spacing(
    data: np.ndarray,
    current_spacing: Sequence[float],
    new_spacing: Sequence[float],
    is_seg: bool = False,
    order: int = 3,
    order_z: int = 0,
    force_separate_z: bool | None = None,
    separate_z_anisotropy_threshold: float = ANISOTROPY_THRESHOLD,
) -> np.ndarray:
    """Return ``(c, z, y, x)`` data resampled from ``current_spacing`` to ``new_spacing``."""
    new_shape = compute_new_shape(data.shape[1:], current_spacing, new_spacing)
    return resample_data_or_seg_to_shape(
        data,
        new_shape,
        current_spacing,
        new_spacing,
        is_seg,
        order,
        order_z,
        force_separate_z,
        separate_z_anisotropy_threshold,
    )


# functions the plans may name; all take (data, new_shape, current_spacing, new_spacing, **kwargs)
RESAMPLING_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "resample_data_or_seg_to_shape": resample_data_or_seg_to_shape,
}


def resampling_function_by_name(name: str) -> Callable[..., Any]:
    """Return the resampling function a plans file names (``resampling_fn_data`` etc.)."""
    if name not in RESAMPLING_FUNCTIONS:
        raise PlansError(
            f"unknown resampling function '{name}' in the plans (known: {', '.join(RESAMPLING_FUNCTIONS)})"
        )
    return RESAMPLING_FUNCTIONS[name]
