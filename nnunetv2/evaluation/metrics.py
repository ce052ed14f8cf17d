"""Per-case overlap metrics (Dice, IoU, TP/FP/FN/TN) for labels and regions, ignoring unannotated voxels.

All labels and regions of a case come from one confusion matrix over label values, counted with a
single ``bincount`` pass (in chunks, to bound memory), instead of one full pass per label.
A label or region absent from both reference and prediction has Dice and IoU NaN: there is
nothing to score, and a mean over cases skips it (nanmean).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnunetv2.exceptions import EvaluationError

LabelOrRegion = int | tuple[int, ...]
METRIC_NAMES = ("Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref")

# voxels per bincount pass: bounds the temporary index arrays to ~100 MB on very large volumes
_CHUNK_VOXELS = 2**23


def compute_tp_fp_fn_tn(
    mask_ref: np.ndarray, mask_pred: np.ndarray, ignore_mask: np.ndarray | None = None
) -> tuple[int, int, int, int]:
    """Return (TP, FP, FN, TN) of two boolean masks, not counting voxels where ``ignore_mask`` is True."""
    mask_ref = np.asarray(mask_ref, dtype=bool)
    mask_pred = np.asarray(mask_pred, dtype=bool)
    if ignore_mask is not None:
        keep = ~np.asarray(ignore_mask, dtype=bool)
        mask_ref, mask_pred = mask_ref[keep], mask_pred[keep]
    tp = int(np.count_nonzero(mask_ref & mask_pred))
    n_ref = int(np.count_nonzero(mask_ref))
    n_pred = int(np.count_nonzero(mask_pred))
    fp, fn = n_pred - tp, n_ref - tp
    return tp, fp, fn, int(mask_ref.size) - tp - fp - fn


def _as_values(label_or_region: LabelOrRegion) -> tuple[int, ...]:
    return (
        tuple(int(v) for v in label_or_region)
        if isinstance(label_or_region, (tuple, list))
        else (int(label_or_region),)
    )


class _Confusion:
    """Voxel counts ``matrix[i, j]`` of reference bin i and predicted bin j, and each label's bin."""

    def __init__(self, matrix: np.ndarray, bin_of: dict[int, int], ignore_label: int | None):
        if ignore_label is not None and ignore_label in bin_of:
            # voxels whose reference is the ignore label never count, in any label's TP/FP/FN/TN
            matrix[bin_of[ignore_label]] = 0
        self.matrix = matrix
        self.bin_of = bin_of

    def counts(self, label_values: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(TP, FP, FN, TN) of the voxels whose value is one of ``label_values``."""
        bins = np.array(sorted({self.bin_of[v] for v in label_values if v in self.bin_of}), dtype=np.intp)
        tp = int(self.matrix[np.ix_(bins, bins)].sum())
        n_ref = int(self.matrix[bins].sum())
        n_pred = int(self.matrix[:, bins].sum())
        fp, fn = n_pred - tp, n_ref - tp
        return tp, fp, fn, int(self.matrix.sum()) - tp - fp - fn


def _chunks(seg_ref: np.ndarray, seg_pred: np.ndarray):
    ref_flat, pred_flat = seg_ref.reshape(-1), seg_pred.reshape(-1)
    for start in range(0, ref_flat.size, _CHUNK_VOXELS):
        yield ref_flat[start : start + _CHUNK_VOXELS], pred_flat[start : start + _CHUNK_VOXELS]


def _integer_labels(seg: np.ndarray) -> np.ndarray:
    """The label map as integers when it is stored as whole-valued floats (some readers return float32)."""
    if np.issubdtype(seg.dtype, np.integer):
        return seg
    as_int = seg.astype(np.int32)
    return as_int if np.array_equal(as_int, seg) else seg


def _dense_confusion(seg_ref: np.ndarray, seg_pred: np.ndarray, ignore_label: int | None) -> _Confusion | None:
    """Confusion over every value 0..n-1 when both maps hold small non-negative integers, else None."""
    if not (np.issubdtype(seg_ref.dtype, np.integer) and np.issubdtype(seg_pred.dtype, np.integer)):
        return None
    if seg_ref.size == 0 or min(seg_ref.min(), seg_pred.min()) < 0:
        return None
    n = int(max(seg_ref.max(), seg_pred.max())) + 1
    # the pair index must fit a small dtype: that is what makes one bincount pass cheap
    index_dtype = np.uint8 if n * n <= 2**8 else np.uint16 if n * n <= 2**16 else None
    if index_dtype is None:
        return None
    counts = np.zeros(n * n, dtype=np.int64)
    for ref, pred in _chunks(seg_ref, seg_pred):
        pair = ref.astype(index_dtype) * index_dtype(n) + pred.astype(index_dtype)
        counts += np.bincount(pair, minlength=n * n)
    return _Confusion(counts.reshape(n, n), {v: v for v in range(n)}, ignore_label)


def _binned_confusion(
    seg_ref: np.ndarray, seg_pred: np.ndarray, values: set[int], ignore_label: int | None
) -> _Confusion:
    """Confusion over ``values`` (and the ignore label) plus one bin for every other value (any dtype, range)."""
    counted = values if ignore_label is None else values | {ignore_label}
    value_array = np.array(sorted(counted), dtype=np.int64)
    num_bins = len(value_array) + 1
    counts = np.zeros(num_bins * num_bins, dtype=np.int64)
    for ref, pred in _chunks(seg_ref, seg_pred):
        counts += np.bincount(
            _bin_index(ref, value_array) * num_bins + _bin_index(pred, value_array), minlength=num_bins * num_bins
        )
    return _Confusion(counts.reshape(num_bins, num_bins), {int(v): i for i, v in enumerate(value_array)}, ignore_label)


def _bin_index(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of each voxel: its position in the sorted ``values``, or ``len(values)`` for other values."""
    position = np.searchsorted(values, labels)
    found = values[np.minimum(position, len(values) - 1)] == labels
    return np.where(found, position, len(values))


def metrics_from_segmentations(
    seg_ref: np.ndarray,
    seg_pred: np.ndarray,
    labels_or_regions: Sequence[LabelOrRegion],
    ignore_label: int | None = None,
) -> dict[LabelOrRegion, dict[str, float | int]]:
    """Return ``{label_or_region: {Dice, IoU, FP, TP, FN, TN, n_pred, n_ref}}`` of two label maps."""
    if seg_ref.shape != seg_pred.shape:
        raise EvaluationError(
            f"reference shape {tuple(seg_ref.shape)} differs from prediction shape {tuple(seg_pred.shape)}"
        )
    keys = [tuple(r) if isinstance(r, list) else r for r in labels_or_regions]
    if not keys:
        raise EvaluationError("no labels or regions to evaluate")
    seg_ref, seg_pred = _integer_labels(seg_ref), _integer_labels(seg_pred)
    confusion = _dense_confusion(seg_ref, seg_pred, ignore_label)
    if confusion is None:
        confusion = _binned_confusion(seg_ref, seg_pred, {v for key in keys for v in _as_values(key)}, ignore_label)
    results: dict[LabelOrRegion, dict[str, float | int]] = {}
    for key in keys:
        tp, fp, fn, tn = confusion.counts(_as_values(key))
        scored = tp + fp + fn > 0
        results[key] = {
            "Dice": 2 * tp / (2 * tp + fp + fn) if scored else float("nan"),
            "IoU": tp / (tp + fp + fn) if scored else float("nan"),
            "FP": fp,
            "TP": tp,
            "FN": fn,
            "TN": tn,
            "n_pred": tp + fp,
            "n_ref": tp + fn,
        }
    return results


def compute_metrics(
    reference_file: str | os.PathLike,
    prediction_file: str | os.PathLike,
    reader_writer,
    labels_or_regions: Sequence[LabelOrRegion],
    ignore_label: int | None = None,
    declared_values: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Return ``{'reference_file', 'prediction_file', 'metrics': {label_or_region: {...}}}`` for one case.

    With ``declared_values`` (dataset.json's labels), a file holding any other value is refused: its
    voxels would otherwise count silently as background.
    """
    from nnunetv2.dataset.case_checks import label_value_problem

    seg_ref, _ = reader_writer.read_seg(str(reference_file))
    seg_pred, _ = reader_writer.read_seg(str(prediction_file))
    if declared_values is not None:
        for file, seg in ((prediction_file, seg_pred), (reference_file, seg_ref)):
            problem = label_value_problem(seg, declared_values)
            if problem:
                raise EvaluationError(f"{file}: {problem}")
    try:
        metrics = metrics_from_segmentations(seg_ref, seg_pred, labels_or_regions, ignore_label)
    except EvaluationError as e:
        raise EvaluationError(f"{prediction_file}: {e} ({reference_file})") from None
    return {"reference_file": str(reference_file), "prediction_file": str(prediction_file), "metrics": metrics}
