"""Simulated correction scribbles placed by a worklist, and the same for a whole pool of cases.

The simulated person of the scribble loop (nnunetv2.scribble_loop.correction_scribbles) corrects
error regions: the largest first, or in random order. Here the person instead opens the slices a
worklist names and, inside each entry's box, corrects the largest piece of wrong voxels they see
(one reference class, face-connected in the slice) with the same strokes. As there, wrong voxels
of an error region (3D) under ``min_region_size`` voxels are left alone. An entry whose box shows
no such wrong voxel gets no stroke: the network was unsure there but right, and only corrections
are simulated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from nnunetv2.annotation.worklist import WorklistEntry
from nnunetv2.exceptions import NnUNetError

logger = logging.getLogger(__name__)

PLACEMENTS = ("largest", "random", "random_slices", "guided")


def simulate_guided_correction_scribbles(
    reference: np.ndarray,
    prediction: np.ndarray,
    entries: Sequence[WorklistEntry],
    ignore_value: int,
    budget: int | float = 1.0,
    min_region_size: int = 10,
    strokes_per_region: int = 1,
    thickness: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Return a scribble map (shape of ``reference``): strokes of the reference class where the entries point
    at wrong voxels, ``ignore_value`` elsewhere.

    entries: the worklist entries of this case, visited in the given order; their boxes are in
    ``(z, y, x)`` array coordinates (a 2D map is taken as ``(1, y, x)``). budget: the most voxels
    scribbled (an int) or a fraction of the wrong voxels (a float in (0, 1]); the stroke crossing
    it is shortened. The other options are those of simulate_correction_scribbles.
    """
    canvas = _Canvas(reference, prediction, ignore_value, budget, min_region_size, strokes_per_region, thickness)
    rng = np.random.default_rng(seed)
    for entry in entries:
        if canvas.spent >= canvas.limit:
            break
        canvas.draw(entry, rng)
    logger.debug(
        "guided: scribbled %d voxels (budget %d) following %d entries", canvas.spent, canvas.limit, len(entries)
    )
    return canvas.scribbles.reshape(canvas.shape)


class _Canvas:
    """One case's scribble map being drawn, with the wrong voxels and the voxel budget left."""

    def __init__(
        self,
        reference: np.ndarray,
        prediction: np.ndarray,
        ignore_value: int,
        budget: int | float,
        min_region_size: int = 10,
        strokes_per_region: int = 1,
        thickness: int = 3,
    ):
        from nnunetv2.scribble_loop.correction_scribbles import check_correction_arguments, error_regions

        reference, prediction = np.asarray(reference), np.asarray(prediction)
        check_correction_arguments(
            reference, prediction, ignore_value, budget, min_region_size, strokes_per_region, thickness, 0
        )
        self.shape = reference.shape
        volume_shape = reference.shape if reference.ndim == 3 else (1, *reference.shape)
        self.reference = reference.reshape(volume_shape)
        self.wrong = (prediction.reshape(volume_shape) != self.reference) & (self.reference != ignore_value)
        dtype = np.promote_types(reference.dtype, np.min_scalar_type(ignore_value))
        self.scribbles = np.full(volume_shape, ignore_value, dtype=dtype)
        self.ignore_value = ignore_value
        self.limit = int(np.floor(budget * np.count_nonzero(self.wrong))) if isinstance(budget, float) else int(budget)
        self.spent = 0
        self.strokes_per_region, self.thickness = strokes_per_region, thickness
        # as in simulate_correction_scribbles, an error region (3D) under min_region_size voxels gets no stroke
        regions, sizes, _ = error_regions(self.reference, self.wrong)
        self.correctable = np.concatenate([[False], sizes >= min_region_size])[regions]

    def draw(self, entry: WorklistEntry, rng: np.random.Generator) -> None:
        """Stroke the largest wrong piece (in the slice) inside the entry's box, within the budget left."""
        from nnunetv2.scribble_loop.correction_scribbles import error_regions, shortened_strokes, strokes_in_region

        box = _box_slices(entry, self.reference.shape)
        pieces, sizes, _ = error_regions(self.reference[box], self.correctable[box])
        if len(sizes) == 0:
            return
        piece = pieces == int(np.argmax(sizes)) + 1
        strokes = strokes_in_region(piece, rng, self.strokes_per_region, self.thickness, entry.axis)
        # boxes of one slice may overlap: voxels drawn before cost nothing again
        strokes = shortened_strokes(strokes & (self.scribbles[box] == self.ignore_value), self.limit - self.spent)
        self.scribbles[box][strokes] = self.reference[box][strokes]
        self.spent += int(np.count_nonzero(strokes))


def simulate_pool_correction_scribbles(
    references: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    ignore_value: int,
    budget: int,
    placement: str = "random",
    worklist: Sequence[WorklistEntry] | None = None,
    seed: int = 0,
    axis: int = 0,
    **stroke_options,
) -> dict[str, np.ndarray]:
    """Return ``case -> scribble map`` for a pool, spending at most ``budget`` voxels in total.

    placement:
    - "largest" / "random": error regions per case, largest first / in random order (an oracle that
      knows where the errors are), strokes in slices perpendicular to ``axis``; the budget left is
      shared evenly among the cases still to visit, in a seeded random case order;
    - "random_slices": a person without guidance opens random slices (perpendicular to ``axis``) of
      random cases and corrects the largest wrong piece in each, until the budget is spent;
    - "guided": the entries of ``worklist`` by decreasing score (the order the ranking picked them in),
      the largest wrong piece inside each entry's box, until the budget is spent.
    stroke_options: min_region_size, strokes_per_region, thickness.
    """
    from nnunetv2.scribble_loop.correction_scribbles import simulate_correction_scribbles

    if placement not in PLACEMENTS:
        raise NnUNetError(f"scribble placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise NnUNetError(f"pool scribbles: budget must be a voxel count (integer >= 0), got {budget!r}")
    missing = sorted(set(references) ^ set(predictions))
    if missing:
        raise NnUNetError(f"pool scribbles: case '{missing[0]}' has a reference or a prediction but not both")
    cases = sorted(references)
    rng = np.random.default_rng(seed)
    if placement in ("largest", "random"):
        scribbles, remaining = {}, int(budget)
        visit_order = [cases[i] for i in rng.permutation(len(cases))]
        for index, case in enumerate(visit_order):
            share = remaining // (len(visit_order) - index)
            scribbles[case] = simulate_correction_scribbles(
                references[case],
                predictions[case],
                ignore_value,
                share,
                seed=seed + index,
                region_order=placement,
                axis=axis,
                **stroke_options,
            )
            remaining -= int(np.count_nonzero(scribbles[case] != ignore_value))
        return {case: scribbles[case] for case in cases}
    if placement == "guided":
        if worklist is None:
            raise NnUNetError("pool scribbles: guided placement needs a worklist")
        unknown = sorted({e.case for e in worklist} - set(cases))
        if unknown:
            raise NnUNetError(f"pool scribbles: the worklist names case '{unknown[0]}', which is not in the pool")
        # an entry's score is its benefit when the ranking picked it, so this is the pick order
        visits = sorted(worklist, key=lambda e: -e.score)
    else:
        visits = _random_slice_entries({case: np.shape(references[case]) for case in cases}, axis, rng)
    canvases = {
        case: _Canvas(references[case], predictions[case], ignore_value, int(budget), **stroke_options)
        for case in cases
    }
    remaining = int(budget)
    for entry in visits:
        if remaining <= 0:
            break
        canvas = canvases[entry.case]
        canvas.limit = canvas.spent + remaining  # the pool's budget, whichever case spends it
        before = canvas.spent
        canvas.draw(entry, rng)
        remaining -= canvas.spent - before
    return {case: canvases[case].scribbles.reshape(canvases[case].shape) for case in cases}


def _random_slice_entries(
    shapes: dict[str, tuple[int, ...]], axis: int, rng: np.random.Generator
) -> list[WorklistEntry]:
    """Every slice of every case as a whole-slice entry, in random order (what an unguided person looks at)."""
    entries = []
    for case, shape in shapes.items():
        volume_shape = tuple(shape) if len(shape) == 3 else (1, *shape)
        slice_axis = axis if len(shape) == 3 else 0
        for index in range(volume_shape[slice_axis]):
            bbox = tuple((index, index + 1) if a == slice_axis else (0, n) for a, n in enumerate(volume_shape))
            entries.append(
                WorklistEntry(
                    rank=0,
                    case=case,
                    case_rank=0,
                    axis=slice_axis,
                    slice=index,
                    slice_rank=0,
                    bbox=bbox,
                    score=0.0,
                    uncertainty_mass=0.0,
                    size=0,
                    mean_uncertainty=0.0,
                )
            )
    return [entries[i] for i in rng.permutation(len(entries))]


def _box_slices(entry: WorklistEntry, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The entry's box as slices, checked against the volume's shape."""
    if any(stop > n for (_, stop), n in zip(entry.bbox, shape)):
        raise NnUNetError(
            f"worklist entry {entry.rank} of case '{entry.case}': box {[list(p) for p in entry.bbox]} "
            f"lies outside the image of shape {list(shape)}"
        )
    return tuple(slice(start, stop) for start, stop in entry.bbox)
