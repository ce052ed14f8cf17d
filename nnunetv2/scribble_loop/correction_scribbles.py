"""Simulate a person correcting a prediction: strokes of the true class inside its largest error regions.

An error region is a connected component (face connectivity) of the voxels where the prediction
differs from the reference, taken per reference class. Regions are visited from the largest down;
each gets ``strokes_per_region`` smooth strokes drawn in slices of the region (as a person draws
on a slice), until the voxel budget is spent. The result is a scribble file's content: the
reference class on the strokes, ``ignore_value`` (the unannotated value) everywhere else.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities.parameters import check_number, check_numbers

logger = logging.getLogger(__name__)

# control points of one stroke: three give a gently curved line across the region's slice
STROKE_CONTROL_POINTS = 3
REGION_ORDERS = ("largest", "random")


def simulate_correction_scribbles(
    reference: np.ndarray,
    prediction: np.ndarray,
    ignore_value: int,
    budget: int | float = 1.0,
    min_region_size: int = 10,
    strokes_per_region: int = 1,
    thickness: int = 3,
    seed: int = 0,
    axis: int = 0,
    region_order: str = "largest",
) -> np.ndarray:
    """Return a scribble map (shape of ``reference``): the reference class on correction strokes, else ``ignore_value``.

    reference, prediction: label maps of equal shape, 2D ``(y, x)`` or 3D ``(z, y, x)``; reference
    voxels equal to ``ignore_value`` are unknown and never count as errors.
    budget: the most voxels scribbled in total; an int is a voxel count, a float in (0, 1] a fraction
    of the wrongly predicted voxels. The stroke that crosses the budget is shortened to fit.
    min_region_size: error regions with fewer voxels get no stroke.
    thickness: stroke width in voxels (within the slice, clipped to the region).
    axis: strokes lie in slices perpendicular to this array axis (of 3D maps).
    seed: the same seed gives the same strokes.
    region_order: "largest" visits error regions from the largest down; "random" in a seeded random
    order (a person correcting whatever error they happen to see first).
    """
    reference = np.asarray(reference)
    prediction = np.asarray(prediction)
    _check_arguments(reference, prediction, ignore_value, budget, min_region_size, strokes_per_region, thickness, axis)
    if region_order not in REGION_ORDERS:
        raise NnUNetError(
            f"correction scribbles: region_order must be one of {', '.join(REGION_ORDERS)}, got {region_order!r}"
        )
    volume_shape = reference.shape if reference.ndim == 3 else (1, *reference.shape)
    reference3d = reference.reshape(volume_shape)
    axis3d = axis if reference.ndim == 3 else 0
    wrong = (prediction.reshape(volume_shape) != reference3d) & (reference3d != ignore_value)
    dtype = np.promote_types(reference.dtype, np.min_scalar_type(ignore_value))
    scribbles = np.full(volume_shape, ignore_value, dtype=dtype)
    limit = int(np.floor(budget * np.count_nonzero(wrong))) if isinstance(budget, float) else int(budget)

    regions, sizes, boxes = _error_regions(reference3d, wrong)
    rng = np.random.default_rng(seed)
    spent = 0
    drawn = 0
    order = np.argsort(-sizes, kind="stable") if region_order == "largest" else rng.permutation(len(sizes))
    for index in order[sizes[order] >= min_region_size]:
        if spent >= limit:
            break
        box = boxes[index]
        region = regions[box] == index + 1
        strokes = _strokes_in_region(region, rng, strokes_per_region, thickness, axis3d)
        strokes = _shortened(strokes, limit - spent)
        scribbles[box][strokes] = reference3d[box][region][0]
        spent += int(np.count_nonzero(strokes))
        drawn += 1
    logger.debug("scribbled %d voxels in %d of %d error regions (budget %d voxels)", spent, drawn, len(sizes), limit)
    return scribbles.reshape(reference.shape)


def _check_arguments(
    reference: np.ndarray,
    prediction: np.ndarray,
    ignore_value,
    budget,
    min_region_size,
    strokes_per_region,
    thickness,
    axis,
) -> None:
    """Raise NnUNetError for unusable arguments."""
    if reference.shape != prediction.shape:
        raise NnUNetError(
            f"correction scribbles: prediction shape {list(prediction.shape)} differs from the "
            f"reference shape {list(reference.shape)}"
        )
    if reference.ndim not in (2, 3):
        raise NnUNetError(f"correction scribbles: label maps must be 2D or 3D, got shape {list(reference.shape)}")
    for name, array in (("reference", reference), ("prediction", prediction)):
        if not np.issubdtype(array.dtype, np.integer):
            raise NnUNetError(f"correction scribbles: the {name} must be an integer label map, got {array.dtype}")
    check_number("ignore_value", ignore_value, "integer >= 0", where="correction scribbles")
    if np.any(prediction == ignore_value):
        raise NnUNetError(f"correction scribbles: the prediction contains the unannotated value {ignore_value}")
    if isinstance(budget, float):
        if not 0.0 < budget <= 1.0:
            raise NnUNetError(f"correction scribbles: a fractional budget must be in (0, 1], got {budget}")
    elif not (_is_int(budget) and budget >= 0):
        raise NnUNetError(
            f"correction scribbles: budget must be a voxel count (int >= 0) or a fraction "
            f"(float in (0, 1]), got {budget!r}"
        )
    check_numbers(
        {"min_region_size": "integer >= 1", "strokes_per_region": "integer >= 1", "thickness": "integer >= 1"},
        {"min_region_size": min_region_size, "strokes_per_region": strokes_per_region, "thickness": thickness},
        where="correction scribbles",
    )
    if reference.ndim == 3 and axis not in (0, 1, 2):
        raise NnUNetError(f"correction scribbles: axis must be 0, 1 or 2, got {axis!r}")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _error_regions(reference: np.ndarray, wrong: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Return (region index map 1..n, size per region, bounding box per region) of the wrong voxels.

    Wrong voxels of different reference classes never share a region.
    """
    import cc3d

    # cc3d separates touching voxels of different values, so one call splits by class as well
    by_class = np.where(wrong, reference.astype(np.int64) + 1, 0)
    regions, count = cc3d.connected_components(by_class, connectivity=6, return_N=True)
    sizes = np.bincount(regions.ravel(), minlength=count + 1)[1:]
    return regions, sizes, ndimage.find_objects(regions)


def _strokes_in_region(
    region: np.ndarray, rng: np.random.Generator, num_strokes: int, thickness: int, axis: int
) -> np.ndarray:
    """Bool mask (shape of ``region``) of ``num_strokes`` strokes, each in one slice of the region.

    A stroke's slice is drawn with probability proportional to the region's area in it; within the
    slice the stroke crosses the 2D piece around a random region pixel.
    """
    from nnunetv2.sparse.simulate import interior_scribble

    strokes = np.zeros(region.shape, dtype=bool)
    region_slices = np.moveaxis(region, axis, 0)
    stroke_slices = np.moveaxis(strokes, axis, 0)  # a view: writes land in ``strokes``
    areas = region_slices.reshape(region_slices.shape[0], -1).sum(1)
    radius = (thickness - 1) // 2
    in_plane = ndimage.generate_binary_structure(2, 1)
    for _ in range(num_strokes):
        index = rng.choice(len(areas), p=areas / areas.sum())
        cross_section = region_slices[index]
        pieces, _ = ndimage.label(cross_section)
        pixels = np.flatnonzero(cross_section)
        piece = pieces == pieces.flat[pixels[rng.integers(len(pixels))]]
        line = interior_scribble(piece, rng, STROKE_CONTROL_POINTS)
        if radius:
            line = ndimage.binary_dilation(line, in_plane, iterations=radius) & piece
        stroke_slices[index] |= line
    return strokes


def _shortened(strokes: np.ndarray, max_voxels: int) -> np.ndarray:
    """Return ``strokes`` cut down to ``max_voxels`` voxels: those nearest the stroke voxel closest to the
    strokes' centre, which keeps one contiguous stretch of a stroke."""
    coordinates = np.argwhere(strokes)
    if len(coordinates) <= max_voxels:
        return strokes
    centre = coordinates[np.argmin(((coordinates - coordinates.mean(0)) ** 2).sum(1))]
    nearest = np.argsort(((coordinates - centre) ** 2).sum(1), kind="stable")[:max_voxels]
    kept = np.zeros_like(strokes)
    kept[tuple(coordinates[nearest].T)] = True
    return kept


# public names for other stroke placements (nnunetv2.annotation.guided_scribbles)
check_correction_arguments = _check_arguments
error_regions = _error_regions
strokes_in_region = _strokes_in_region
shortened_strokes = _shortened
