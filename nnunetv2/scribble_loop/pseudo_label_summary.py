"""summary.json of a pseudo-label run: what the pseudo labels changed against the network's prediction, per case
and per class, where confidence is low, which classes they shrank (a sign of strokes that did not help), and which
scribbled classes the network labels nowhere (only the strokes' growth speaks for them)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# summary.json: confidence below this counts as low; a class whose pseudo label has lost more than
# SHRINK_WARNING_FRACTION of the network's voxels of it is flagged (strokes of other classes spread into it)
LOW_CONFIDENCE = 0.5
SHRINK_WARNING_FRACTION = 0.1
_CLASS_COUNT_KEYS = (
    "prediction_voxels",
    "pseudo_label_voxels",
    "gained_voxels",
    "lost_voxels",
    "low_confidence_voxels",
)


def case_summary(
    prediction: np.ndarray,
    label: np.ndarray,
    scribbles: np.ndarray,
    unannotated: int,
    confidence: np.ndarray,
    num_classes: int,
) -> dict[str, Any]:
    """Changed voxels (pseudo label vs the network's argmax), per 'from->to' pair and per class, scribble counts,
    the share of low-confidence voxels, and the scribbled classes the network labels nowhere in the case."""
    changed = prediction != label
    pairs = np.bincount(
        prediction[changed].astype(np.int64) * num_classes + label[changed], minlength=num_classes * num_classes
    )
    scribbled = scribbles != unannotated
    scribbled_classes = sorted(int(c) for c in np.unique(scribbles[scribbled]))
    per_class = class_changes(prediction, label, confidence, num_classes)
    return {
        "voxels": int(label.size),
        "changed_voxels": int(changed.sum()),
        "changed_fraction": float(changed.mean()),
        "changes": {f"{i // num_classes}->{i % num_classes}": int(n) for i, n in enumerate(pairs) if n},
        "scribbled_voxels": int(scribbled.sum()),
        "scribbled_classes": scribbled_classes,
        "unannotated_value": int(unannotated),
        "mean_confidence": float(confidence.mean()),
        "low_confidence_fraction": float((confidence < LOW_CONFIDENCE).mean()),
        "per_class": per_class,
        "shrunk_classes": [c for c, entry in per_class.items() if entry["shrunk"]],
        # the network does not recognise these here: their strokes do not recalibrate it (stroke_recalibration)
        "unrecognised_classes": [str(c) for c in scribbled_classes if per_class[str(c)]["prediction_voxels"] == 0],
    }


def class_changes(
    prediction: np.ndarray, label: np.ndarray, confidence: np.ndarray, num_classes: int
) -> dict[str, dict[str, Any]]:
    """Per class (key: its label value as text): voxels in the prediction and in the pseudo label, the relative
    change, the voxels it gained and lost, the share of its pseudo-label voxels with low confidence, and whether it
    shrank by more than SHRINK_WARNING_FRACTION."""
    low = confidence < LOW_CONFIDENCE
    result = {}
    for c in range(num_classes):
        predicted, pseudo = prediction == c, label == c
        entry = {
            "prediction_voxels": int(predicted.sum()),
            "pseudo_label_voxels": int(pseudo.sum()),
            "gained_voxels": int((pseudo & ~predicted).sum()),
            "lost_voxels": int((predicted & ~pseudo).sum()),
            "low_confidence_voxels": int((pseudo & low).sum()),
        }
        result[str(c)] = _with_ratios(entry)
    return result


def _with_ratios(entry: dict[str, Any]) -> dict[str, Any]:
    """A class entry of counts with its change fraction, low-confidence fraction and shrink flag added."""
    predicted, pseudo = entry["prediction_voxels"], entry["pseudo_label_voxels"]
    change = (pseudo - predicted) / predicted if predicted else (0.0 if pseudo == 0 else float(pseudo))
    return {
        **entry,
        "change_fraction": float(change),
        "low_confidence_fraction": entry["low_confidence_voxels"] / pseudo if pseudo else 0.0,
        "shrunk": bool(change < -SHRINK_WARNING_FRACTION),
    }


def classes_over_cases(cases: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The per-class counts of all cases added up, with their ratios (``_with_ratios``)."""
    totals: dict[str, dict[str, Any]] = {}
    for entry in cases.values():
        for c, counts in entry["per_class"].items():
            total = totals.setdefault(c, dict.fromkeys(_CLASS_COUNT_KEYS, 0))
            for key in _CLASS_COUNT_KEYS:
                total[key] += counts[key]
    return {c: _with_ratios(total) for c, total in sorted(totals.items(), key=lambda item: int(item[0]))}


def warn_about_shrunk_classes(cases: dict[str, dict[str, Any]]) -> None:
    """Log a warning for every case and class the pseudo labels shrank (``case_summary``'s ``shrunk_classes``)."""
    for case, entry in cases.items():
        for c in entry["shrunk_classes"]:
            logger.warning(
                "%s: the pseudo label has %.0f%% fewer voxels of class %s than the prediction; check its strokes",
                case,
                -100 * entry["per_class"][c]["change_fraction"],
                c,
            )
