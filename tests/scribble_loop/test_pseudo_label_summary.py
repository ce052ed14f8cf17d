"""summary.json of a pseudo-label run: per-class change against the prediction, low confidence, shrunk classes,
scribbled classes the network does not recognise."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from nnunetv2.scribble_loop.pseudo_label_summary import case_summary, classes_over_cases, warn_about_shrunk_classes


def _case(shrink: int) -> dict:
    """A 10 x 10 case: the prediction has 40 voxels of class 1; the pseudo label turns ``shrink`` of them into 0
    and 5 background voxels into class 2 (a class the prediction does not have)."""
    prediction = np.zeros((10, 10), dtype=np.int64)
    prediction[:4] = 1
    label = prediction.copy()
    label.flat[:shrink] = 0
    label[9, :5] = 2
    confidence = np.full((10, 10), 0.9, dtype=np.float32)
    confidence[9] = 0.2  # low on the new class-2 voxels and their row
    scribbles = np.full((10, 10), 3, dtype=np.int64)
    scribbles[9, 0] = 2
    scribbles[0, 0] = 1
    return case_summary(prediction, label, scribbles, 3, confidence, num_classes=3)


def test_case_summary_counts_per_class_and_flags_a_class_that_shrank_by_more_than_a_tenth():
    entry = _case(shrink=8)
    one, two = entry["per_class"]["1"], entry["per_class"]["2"]
    assert (one["prediction_voxels"], one["pseudo_label_voxels"], one["lost_voxels"]) == (40, 32, 8)
    assert one["change_fraction"] == pytest.approx(-0.2) and one["shrunk"]
    assert two["prediction_voxels"] == 0 and two["gained_voxels"] == 5 and not two["shrunk"]
    assert two["low_confidence_voxels"] == 5 and two["low_confidence_fraction"] == 1.0
    assert entry["shrunk_classes"] == ["1"]
    assert entry["scribbled_classes"] == [1, 2]
    assert entry["unrecognised_classes"] == ["2"]  # scribbled, and labelled nowhere by the network
    assert entry["low_confidence_fraction"] == pytest.approx(0.1)
    assert entry["changes"] == {"1->0": 8, "0->2": 5}
    assert not _case(shrink=4)["per_class"]["1"]["shrunk"]  # 10% is within the tolerance


def test_classes_over_cases_add_up_the_counts_and_warnings_name_case_and_class(caplog):
    cases = {"a": _case(shrink=8), "b": _case(shrink=0)}
    total = classes_over_cases(cases)
    assert total["1"]["prediction_voxels"] == 80 and total["1"]["lost_voxels"] == 8
    assert total["1"]["change_fraction"] == pytest.approx(-0.1) and not total["1"]["shrunk"]
    with caplog.at_level(logging.WARNING):
        warn_about_shrunk_classes(cases)
    assert "a: the pseudo label has 20% fewer voxels of class 1" in caplog.text
    assert "b:" not in caplog.text
