"""A scribble-loop round's ``metrics.json``: scribble effort, pseudo-label and prediction Dice, training summary.

``pool``: cases, scribbled voxels and their fraction of all pool voxels, voxels the pseudo labels
changed against the network, voxels that kept the previous round's label, mean confidence; with pool
reference labels also the Dice of the round's predictions and pseudo labels.
``test``: the Dice of the round's model on the test set.
``training`` (rounds >= 1): epochs, final training loss, last pseudo Dice (against the pseudo
labels), seconds. Dice entries are ``{"mean": foreground mean, "per_label": {label: mean over cases}}``; a
region-based dataset is scored per region, as nnUNetv2_evaluate_folder does (keys like ``"(1, 2)"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnunetv2.utilities.file_io import load_json

if TYPE_CHECKING:
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.scribble_loop.loop_state import ResolvedLoop


def round_metrics(loop: ResolvedLoop, round_index: int) -> dict[str, Any]:
    """Return the metrics of a finished round (its predictions, pseudo labels and, for r >= 1, its training)."""
    from nnunetv2.scribble_loop.pseudo_label_folder import SUMMARY_FILE

    request = loop.request
    round_folder = loop.round_folder(round_index)
    cases = load_json(round_folder / "pseudo_labels" / SUMMARY_FILE)["cases"]
    voxels = sum(c["voxels"] for c in cases.values())
    scribbled = sum(c["scribbled_voxels"] for c in cases.values())
    pool: dict[str, Any] = {
        "cases": len(cases),
        "voxels": voxels,
        "scribbled_voxels": scribbled,
        "scribbled_fraction": scribbled / voxels if voxels else 0.0,
        "changed_voxels": sum(c["changed_voxels"] for c in cases.values()),
        "kept_previous_voxels": sum(c.get("kept_previous_voxels", 0) for c in cases.values()),
        "mean_confidence": sum(c["mean_confidence"] * c["voxels"] for c in cases.values()) / max(voxels, 1),
    }
    reader = loop.plans.image_reader_writer
    if request.pool_reference is not None:
        for key, folder in (("prediction_dice", "predictions"), ("pseudo_label_dice", "pseudo_labels")):
            pool[key] = folder_dice(request.pool_reference, round_folder / folder, loop.dataset_json, reader)
    metrics: dict[str, Any] = {"round": round_index, "pool": pool}
    if request.test_reference is not None:
        metrics["test"] = {
            "dice": folder_dice(request.test_reference, round_folder / "test_predictions", loop.dataset_json, reader)
        }
    if round_index > 0:
        metrics["training"] = _training_summary(round_folder / "model" / "fold_all" / "checkpoint_final.pth")
    return metrics


def folder_dice(
    reference_folder: str | os.PathLike,
    prediction_folder: str | os.PathLike,
    dataset_json: DatasetJson,
    image_reader_writer: str,
) -> dict[str, Any]:
    """Return the foreground-mean and per-label (per-region for a region-based dataset) Dice of the label files in
    ``prediction_folder``."""
    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder, label_or_region_to_key
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    label_manager = LabelManager.from_dataset_json(dataset_json)
    # chill: the reference folder may hold more cases than the pool or test set
    results = compute_metrics_on_folder(
        reference_folder,
        prediction_folder,
        None,
        reader_writer_class_from_name(image_reader_writer),
        dataset_json.file_ending,
        label_manager.foreground_labels_or_regions,
        ignore_label=label_manager.ignore_label,
        chill=True,
    )
    return {
        "mean": results["foreground_mean"]["Dice"],
        "per_label": {label_or_region_to_key(key): values["Dice"] for key, values in results["mean"].items()},
    }


def _training_summary(checkpoint_file: Path) -> dict[str, Any]:
    from nnunetv2.formats.checkpoint_io import load_checkpoint

    curves = load_checkpoint(checkpoint_file)["logging"]
    epochs = len(curves.get("train_losses", []))
    seconds = sum(
        end - start
        for start, end in zip(curves.get("epoch_start_timestamps", []), curves.get("epoch_end_timestamps", []))
    )
    return {
        "epochs": epochs,
        "final_train_loss": float(curves["train_losses"][-1]) if epochs else None,
        "final_pseudo_dice": float(curves["mean_fg_dice"][-1]) if curves.get("mean_fg_dice") else None,
        "seconds": float(seconds),
    }
