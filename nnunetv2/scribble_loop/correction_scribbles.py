"""Simulate a person correcting a prediction: strokes of the true class inside its largest error regions.

An error region is a connected component (face connectivity) of the voxels where the prediction
differs from the reference, taken per reference class. Regions are visited from the largest down;
each gets ``strokes_per_region`` strokes drawn in slices of the region (as a person draws on a
slice), until the voxel budget is spent. Stroke styles (``style``), after how people draw:

- ``spline``: a smooth curve through random points of the region's core, ``thickness`` wide;
- ``centreline``: a trace along the middle of the region's piece in the slice (the longest path of
  its skeleton), as a person follows a wrongly labelled structure with a thin brush;
- ``dab``: a short piece (``DAB_LENGTH`` voxels) of that centre line around the piece's deepest point,
  a quick click-and-drag; with the same budget more regions get one.

The result is a scribble file's content: the reference class on the strokes, ``ignore_value`` (the
unannotated value) everywhere else.
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
STROKE_STYLES = ("spline", "centreline", "dab")
# voxels of a dab: a short drag of the mouse
DAB_LENGTH = 6


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
    style: str = "spline",
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
    style: ``spline``, ``centreline`` or ``dab`` (module docstring); centre lines and dabs are widened
    to ``thickness`` as well (1: one voxel wide).
    """
    reference = np.asarray(reference)
    prediction = np.asarray(prediction)
    _check_arguments(reference, prediction, ignore_value, budget, min_region_size, strokes_per_region, thickness, axis)
    if region_order not in REGION_ORDERS:
        raise NnUNetError(
            f"correction scribbles: region_order must be one of {', '.join(REGION_ORDERS)}, got {region_order!r}"
        )
    if style not in STROKE_STYLES:
        raise NnUNetError(f"correction scribbles: style must be one of {', '.join(STROKE_STYLES)}, got {style!r}")
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
        strokes = _strokes_in_region(region, rng, strokes_per_region, thickness, axis3d, style)
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
    region: np.ndarray, rng: np.random.Generator, num_strokes: int, thickness: int, axis: int, style: str = "spline"
) -> np.ndarray:
    """Bool mask (shape of ``region``) of ``num_strokes`` strokes, each in one slice of the region.

    A stroke's slice is drawn with probability proportional to the region's area in it; within the
    slice the stroke lies in the 2D piece around a random region pixel, drawn in ``style``.
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
        if style == "spline":
            line = interior_scribble(piece, rng, STROKE_CONTROL_POINTS)
        else:
            line = centre_line(piece, DAB_LENGTH if style == "dab" else None)
        if radius:
            line = ndimage.binary_dilation(line, in_plane, iterations=radius) & piece
        stroke_slices[index] |= line
    return strokes


def centre_line(piece: np.ndarray, length: int | None = None) -> np.ndarray:
    """Return a bool mask of the longest path through the skeleton of the 2D mask ``piece`` (8-connected, one
    pixel wide); with ``length``, only that many pixels of it around the skeleton pixel deepest inside the piece."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra
    from skimage.morphology import skeletonize

    skeleton = skeletonize(piece) & piece
    if not skeleton.any():  # skeletonize may erase a 2-pixel piece entirely
        skeleton = piece.copy()
    pixels = np.argwhere(skeleton)
    index = np.full(piece.shape, -1, dtype=np.int64)
    index[tuple(pixels.T)] = np.arange(len(pixels))
    rows, cols, weights = [], [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each neighbour pair once; the graph is undirected
        target = pixels + (dy, dx)
        inside = (target >= 0).all(1) & (target < piece.shape).all(1)
        neighbour = np.full(len(pixels), -1, dtype=np.int64)
        neighbour[inside] = index[tuple(target[inside].T)]
        linked = neighbour >= 0
        rows.append(np.flatnonzero(linked))
        cols.append(neighbour[linked])
        weights.append(np.full(int(linked.sum()), np.hypot(dy, dx)))
    graph = coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(len(pixels), len(pixels))
    ).tocsr()
    # the skeleton's longest path: from any pixel to the farthest one, then from there to its farthest one
    first = dijkstra(graph, directed=False, indices=0)
    start = int(np.argmax(np.where(np.isfinite(first), first, -1)))
    distance, predecessor = dijkstra(graph, directed=False, indices=start, return_predecessors=True)
    node = int(np.argmax(np.where(np.isfinite(distance), distance, -1)))
    path = [node]
    while predecessor[node] >= 0:
        node = int(predecessor[node])
        path.append(node)
    if length is not None and len(path) > length:
        depth = ndimage.distance_transform_edt(piece)[tuple(pixels[path].T)]
        middle = int(np.clip(np.argmax(depth), length // 2, len(path) - (length - length // 2)))
        path = path[middle - length // 2 : middle - length // 2 + length]
    line = np.zeros(piece.shape, dtype=bool)
    line[tuple(pixels[path].T)] = True
    return line


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
