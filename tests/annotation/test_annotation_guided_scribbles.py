"""Simulated correction scribbles placed by a worklist, for a case and for a pool (same strokes, same budget)."""

from __future__ import annotations

import numpy as np
import pytest

from nnunetv2.annotation.guided_scribbles import (
    simulate_guided_correction_scribbles,
    simulate_pool_correction_scribbles,
)
from nnunetv2.annotation.worklist import WorklistEntry
from nnunetv2.exceptions import NnUNetError
from nnunetv2.scribble_loop.correction_scribbles import simulate_correction_scribbles

UNANNOTATED = 3


def _case() -> tuple[np.ndarray, np.ndarray]:
    """(4, 40, 40): the prediction misses part of class 1 in slice 1 and adds class 2 in slice 2."""
    reference = np.zeros((4, 40, 40), dtype=np.uint8)
    reference[:, 5:20, 5:20] = 1
    prediction = reference.copy()
    prediction[1, 8:16, 8:16] = 0  # 64 wrong voxels of class 1
    prediction[2, 25:35, 25:35] = 2  # 100 wrong voxels of class 0
    return reference, prediction


def _entry(
    case: str, slice_index: int, rows: tuple[int, int], cols: tuple[int, int], score: float = 1.0, rank: int = 1
) -> WorklistEntry:
    return WorklistEntry(
        rank=rank,
        case=case,
        case_rank=1,
        axis=0,
        slice=slice_index,
        slice_rank=1,
        bbox=((slice_index, slice_index + 1), rows, cols),
        score=score,
        uncertainty_mass=score,
        size=10,
        mean_uncertainty=1.0,
    )


def test_strokes_go_into_the_entries_boxes_on_wrong_voxels_with_the_reference_class():
    reference, prediction = _case()
    entries = [_entry("a", 1, (6, 18), (6, 18)), _entry("a", 2, (24, 36), (24, 36))]
    scribbles = simulate_guided_correction_scribbles(reference, prediction, entries, UNANNOTATED)
    drawn = scribbles != UNANNOTATED
    assert drawn[1, 8:16, 8:16].any() and drawn[2, 25:35, 25:35].any()
    assert drawn.sum() == drawn[1, 8:16, 8:16].sum() + drawn[2, 25:35, 25:35].sum()  # nowhere else
    assert np.all(prediction[drawn] != reference[drawn]) and np.array_equal(scribbles[drawn], reference[drawn])
    assert set(np.unique(scribbles[1][drawn[1]])) == {1} and set(np.unique(scribbles[2][drawn[2]])) == {0}


def test_a_box_without_errors_gets_no_stroke_and_the_budget_is_respected():
    reference, prediction = _case()
    right_there = [_entry("a", 0, (0, 40), (0, 40)), _entry("a", 1, (30, 40), (30, 40))]
    assert (simulate_guided_correction_scribbles(reference, prediction, right_there, UNANNOTATED) == UNANNOTATED).all()
    entries = [_entry("a", 1, (6, 18), (6, 18)), _entry("a", 2, (24, 36), (24, 36))]
    limited = simulate_guided_correction_scribbles(reference, prediction, entries, UNANNOTATED, budget=5)
    assert (limited != UNANNOTATED).sum() == 5 and (limited[1] != UNANNOTATED).sum() == 5  # the first entry only
    assert (
        simulate_guided_correction_scribbles(reference, prediction, entries, UNANNOTATED, budget=0) == UNANNOTATED
    ).all()


def test_a_2d_case_and_an_entry_outside_the_image():
    reference, prediction = _case()
    scribbles = simulate_guided_correction_scribbles(
        reference[1], prediction[1], [_entry("a", 0, (6, 18), (6, 18))], UNANNOTATED
    )
    assert scribbles.shape == (40, 40) and (scribbles[8:16, 8:16] == 1).any()
    with pytest.raises(NnUNetError, match=r"worklist entry 1 of case 'a': box .* lies outside the image"):
        simulate_guided_correction_scribbles(reference, prediction, [_entry("a", 1, (30, 50), (0, 5))], UNANNOTATED)


@pytest.mark.parametrize("placement", ["random", "largest", "random_slices", "guided"])
def test_every_placement_respects_the_pool_budget(placement):
    reference, prediction = _case()
    references = {"a": reference, "b": reference[:, ::-1].copy()}
    predictions = {"a": prediction, "b": prediction[:, ::-1].copy()}
    worklist = [
        _entry("a", 1, (6, 18), (6, 18), 5.0),
        _entry("b", 2, (4, 16), (24, 36), 4.0),
        _entry("a", 2, (24, 36), (24, 36), 3.0),
    ]
    scribbles = simulate_pool_correction_scribbles(
        references, predictions, UNANNOTATED, 30, placement, worklist, seed=1
    )
    spent = sum(int((s != UNANNOTATED).sum()) for s in scribbles.values())
    assert set(scribbles) == {"a", "b"} and 0 < spent <= 30
    for case, s in scribbles.items():
        drawn = s != UNANNOTATED
        assert np.all(predictions[case][drawn] != references[case][drawn])


def test_guided_pool_placement_follows_the_scores_across_cases():
    reference, prediction = _case()
    references = {"a": reference, "b": reference.copy()}
    predictions = {"a": prediction, "b": prediction.copy()}
    worklist = [_entry("a", 2, (24, 36), (24, 36), 1.0), _entry("b", 1, (6, 18), (6, 18), 9.0)]
    scribbles = simulate_pool_correction_scribbles(references, predictions, UNANNOTATED, 4, "guided", worklist)
    assert (scribbles["b"] != UNANNOTATED).sum() == 4 and (scribbles["a"] == UNANNOTATED).all()


def test_random_region_order_of_the_scribble_loop_simulator():
    reference, prediction = _case()
    kwargs = dict(ignore_value=UNANNOTATED, budget=3, min_region_size=10)
    largest = simulate_correction_scribbles(reference, prediction, **kwargs)
    assert (largest[2] != UNANNOTATED).sum() == 3  # the 100-voxel region comes first
    orders = {
        tuple(
            np.flatnonzero(
                (
                    simulate_correction_scribbles(reference, prediction, seed=s, region_order="random", **kwargs)
                    != UNANNOTATED
                ).any((1, 2))
            )
        )
        for s in range(8)
    }
    assert orders == {(1,), (2,)}  # some seeds start with the smaller region
    with pytest.raises(NnUNetError, match="region_order must be one of largest, random, got 'smallest'"):
        simulate_correction_scribbles(reference, prediction, UNANNOTATED, region_order="smallest")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"placement": "anywhere"}, "scribble placement must be one of"),
        ({"budget": -3}, "budget must be a voxel count"),
        ({"placement": "guided", "worklist": None}, "guided placement needs a worklist"),
        ({"placement": "guided", "worklist": [_entry("zz", 0, (0, 2), (0, 2))]}, "names case 'zz', which is not in"),
    ],
)
def test_bad_pool_arguments_raise_one_clear_error(kwargs, message):
    reference, prediction = _case()
    arguments = {
        "references": {"a": reference},
        "predictions": {"a": prediction},
        "ignore_value": UNANNOTATED,
        "budget": 10,
        **kwargs,
    }
    with pytest.raises(NnUNetError, match=message):
        simulate_pool_correction_scribbles(**arguments)
