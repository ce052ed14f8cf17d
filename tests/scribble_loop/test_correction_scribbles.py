"""Simulated correction scribbles: only on wrong voxels, reference class, budget, seed, largest regions first."""

from __future__ import annotations

import numpy as np
import pytest

from nnunetv2.exceptions import NnUNetError
from nnunetv2.scribble_loop.correction_scribbles import simulate_correction_scribbles

UNANNOTATED = 3


def _case_2d() -> tuple[np.ndarray, np.ndarray]:
    """Reference with classes 0, 1, 2; the prediction misses a big part of 1, a small part of 2, adds a false 1."""
    reference = np.zeros((60, 60), dtype=np.uint8)
    reference[5:40, 5:40] = 1
    reference[45:55, 10:50] = 2
    prediction = reference.copy()
    prediction[10:30, 10:30] = 0  # 400 wrong voxels of class 1
    prediction[47:53, 15:25] = 0  # 60 wrong voxels of class 2
    prediction[5:15, 45:55] = 1  # 100 wrong voxels of class 0
    prediction[58, 58] = 1  # a single wrong voxel: too small for a stroke
    return reference, prediction


def test_strokes_lie_on_wrong_voxels_and_carry_the_reference_class():
    reference, prediction = _case_2d()
    scribbles = simulate_correction_scribbles(reference, prediction, UNANNOTATED, seed=0)
    drawn = scribbles != UNANNOTATED
    assert scribbles.shape == reference.shape
    assert drawn.any()
    assert np.all(prediction[drawn] != reference[drawn])
    assert np.array_equal(scribbles[drawn], reference[drawn])
    # every sizable error region got a stroke, the single voxel did not
    assert drawn[10:30, 10:30].any() and drawn[47:53, 15:25].any() and drawn[5:15, 45:55].any()
    assert not drawn[58, 58]
    assert set(np.unique(scribbles)) == {0, 1, 2, UNANNOTATED}


def test_voxel_budget_is_respected_and_spent_on_the_largest_region_first():
    reference, prediction = _case_2d()
    scribbles = simulate_correction_scribbles(reference, prediction, UNANNOTATED, budget=12, seed=0)
    drawn = scribbles != UNANNOTATED
    assert drawn.sum() == 12  # the first stroke is longer than 12 voxels and gets shortened
    assert drawn[10:30, 10:30].sum() == 12
    # the kept part is one contiguous piece of the stroke
    from scipy import ndimage

    assert ndimage.label(drawn, structure=np.ones((3, 3)))[1] == 1


def test_fractional_budget_is_a_share_of_the_wrong_voxels():
    reference, prediction = _case_2d()
    wrong = int((reference != prediction).sum())
    unlimited = simulate_correction_scribbles(reference, prediction, UNANNOTATED, budget=1.0, seed=0)
    limited = simulate_correction_scribbles(reference, prediction, UNANNOTATED, budget=0.05, seed=0)
    assert (limited != UNANNOTATED).sum() <= int(0.05 * wrong) < (unlimited != UNANNOTATED).sum()
    assert (limited != UNANNOTATED).sum() > 0
    assert simulate_correction_scribbles(reference, prediction, UNANNOTATED, budget=0, seed=0).max() == UNANNOTATED


def test_same_seed_same_strokes_other_seed_other_strokes():
    reference, prediction = _case_2d()
    first = simulate_correction_scribbles(reference, prediction, UNANNOTATED, strokes_per_region=2, seed=7)
    again = simulate_correction_scribbles(reference, prediction, UNANNOTATED, strokes_per_region=2, seed=7)
    other = simulate_correction_scribbles(reference, prediction, UNANNOTATED, strokes_per_region=2, seed=8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_more_strokes_and_thicker_strokes_cover_more():
    reference, prediction = _case_2d()
    thin = simulate_correction_scribbles(reference, prediction, UNANNOTATED, thickness=1, seed=1)
    thick = simulate_correction_scribbles(reference, prediction, UNANNOTATED, thickness=5, seed=1)
    many = simulate_correction_scribbles(reference, prediction, UNANNOTATED, thickness=1, strokes_per_region=4, seed=1)
    assert (thin != UNANNOTATED).sum() < (thick != UNANNOTATED).sum()
    assert (thin != UNANNOTATED).sum() < (many != UNANNOTATED).sum()


def test_min_region_size_skips_small_regions():
    reference, prediction = _case_2d()
    scribbles = simulate_correction_scribbles(reference, prediction, UNANNOTATED, min_region_size=101, seed=0)
    drawn = scribbles != UNANNOTATED
    assert drawn[10:30, 10:30].any()
    assert not drawn[47:53, 15:25].any() and not drawn[5:15, 45:55].any()


def test_unknown_reference_voxels_are_never_errors():
    reference, prediction = _case_2d()
    reference[10:30, 10:30] = UNANNOTATED  # the big error region is not annotated in the reference
    scribbles = simulate_correction_scribbles(reference, prediction, UNANNOTATED, seed=0)
    assert not (scribbles[10:30, 10:30] != UNANNOTATED).any()
    assert (scribbles != UNANNOTATED).any()


def test_3d_strokes_are_drawn_in_slices_of_the_chosen_axis():
    reference = np.zeros((12, 30, 30), dtype=np.uint8)
    reference[2:10, 5:25, 5:25] = 1
    prediction = np.zeros_like(reference)
    for axis in (0, 2):
        scribbles = simulate_correction_scribbles(reference, prediction, 2, axis=axis, seed=3)
        drawn = np.argwhere(scribbles != 2)
        assert len(drawn) > 0 and np.all(scribbles[scribbles != 2] == 1)
        assert len(np.unique(drawn[:, axis])) == 1  # one stroke -> one slice


def test_bad_inputs_raise_one_line_errors():
    reference, prediction = _case_2d()
    with pytest.raises(NnUNetError, match=r"prediction shape \[60, 59\] differs"):
        simulate_correction_scribbles(reference, prediction[:, :59], UNANNOTATED)
    with pytest.raises(NnUNetError, match="fractional budget must be in"):
        simulate_correction_scribbles(reference, prediction, UNANNOTATED, budget=1.5)
    with pytest.raises(NnUNetError, match="budget must be a voxel count"):
        simulate_correction_scribbles(reference, prediction, UNANNOTATED, budget=-3)
    with pytest.raises(NnUNetError, match="thickness must be an integer >= 1"):
        simulate_correction_scribbles(reference, prediction, UNANNOTATED, thickness=0)
    with pytest.raises(NnUNetError, match="prediction contains the unannotated value 1"):
        simulate_correction_scribbles(reference, prediction, 1)
    with pytest.raises(NnUNetError, match="must be an integer label map"):
        simulate_correction_scribbles(reference, prediction.astype(np.float32), UNANNOTATED)


def test_centreline_strokes_are_one_voxel_wide_traces_along_the_middle_of_a_region():
    reference = np.zeros((40, 60), dtype=np.uint8)
    reference[10:17, 5:55] = 1  # a 7-voxel wide band, wrongly predicted as background
    prediction = np.zeros_like(reference)
    scribbles = simulate_correction_scribbles(reference, prediction, UNANNOTATED, style="centreline", thickness=1)
    drawn = np.argwhere(scribbles != UNANNOTATED)
    assert set(np.unique(scribbles)) == {1, UNANNOTATED}
    # one voxel per column, on the band's middle row along most of its length (the skeleton forks at the ends)
    assert len(drawn) == len(np.unique(drawn[:, 1]))
    assert (drawn[:, 0] == 13).sum() >= 40


def test_dabs_are_short_and_reach_more_regions_than_centrelines_on_the_same_budget():
    reference = np.zeros((40, 80), dtype=np.uint8)
    for start in (5, 25, 45, 65):
        reference[5:35, start : start + 6] = 1  # four long wrong bands
    prediction = np.zeros_like(reference)
    dabs = simulate_correction_scribbles(reference, prediction, UNANNOTATED, budget=24, style="dab", thickness=1)
    traces = simulate_correction_scribbles(
        reference, prediction, UNANNOTATED, budget=24, style="centreline", thickness=1
    )

    def regions_hit(scribbles: np.ndarray) -> int:
        return sum(bool((scribbles[5:35, s : s + 6] != UNANNOTATED).any()) for s in (5, 25, 45, 65))

    from nnunetv2.scribble_loop.correction_scribbles import DAB_LENGTH

    assert (dabs != UNANNOTATED).sum() == 4 * DAB_LENGTH
    assert regions_hit(dabs) == 4 > regions_hit(traces) == 1


def test_unknown_stroke_style_is_refused():
    reference, prediction = _case_2d()
    with pytest.raises(NnUNetError, match="style must be one of"):
        simulate_correction_scribbles(reference, prediction, UNANNOTATED, style="zigzag")


def test_centre_line_of_tiny_pieces_is_the_piece_itself():
    from nnunetv2.scribble_loop.correction_scribbles import centre_line

    for pixels in ([(3, 3)], [(3, 3), (3, 4)], [(3, 3), (4, 4)]):
        piece = np.zeros((8, 8), dtype=bool)
        piece[tuple(np.array(pixels).T)] = True
        line = centre_line(piece)
        assert line.any() and not (line & ~piece).any()
        assert centre_line(piece, length=6).sum() == line.sum()
