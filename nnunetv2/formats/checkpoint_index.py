"""The checkpoint ensemble of a fold: ``fold_k/checkpoint_ensemble.json`` and its checkpoint names.

The cyclic-LR trainer writes the index while it trains; prediction reads it to find the ensemble.
Layout::

    {"trainer_name": "nnUNetTrainerCyclicLR", "num_epochs": 1000, "num_of_cycles": 3,
     "checkpoint_rule": "sparse", "lr_schedule": "poly decay restarted every cycle",
     "checkpoints": [{"file": "checkpoint_cycle1_epoch234.pth", "cycle": 1, "epoch": 234}, ...]}

``epoch`` counts the epochs completed when the checkpoint was saved (1-based, as in the log),
``cycle`` is 1-based too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import InferenceError, NnUNetError
from nnunetv2.utilities.file_io import load_json, save_json

CHECKPOINT_INDEX_FILE = "checkpoint_ensemble.json"


def cycle_bounds(num_epochs: int, num_cycles: int) -> list[tuple[int, int]]:
    """Return each cycle's 0-based ``[start, end)`` epochs: ``num_epochs`` split into ``num_cycles`` near-equal runs."""
    edges = np.round(np.linspace(0, num_epochs, num_cycles + 1)).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def ensemble_checkpoint_name(cycle: int, epoch: int) -> str:
    """Return the file name of the ensemble checkpoint saved in ``cycle`` after ``epoch`` epochs."""
    return f"checkpoint_cycle{cycle}_epoch{epoch}.pth"


def save_checkpoint_index(fold_folder: str | os.PathLike, index: dict[str, Any]) -> None:
    """Write ``index`` to ``fold_folder/checkpoint_ensemble.json`` atomically."""
    save_json(index, Path(fold_folder) / CHECKPOINT_INDEX_FILE)


def load_checkpoint_index(fold_folder: str | os.PathLike) -> dict[str, Any]:
    """Return the checkpoint index of a fold; a missing or malformed file is an InferenceError."""
    path = Path(fold_folder) / CHECKPOINT_INDEX_FILE
    if not path.is_file():
        raise InferenceError(
            f"{path}: not found; train the fold with -tr nnUNetTrainerCyclicLR (which saves "
            f"the checkpoint ensemble) or name checkpoints explicitly (-chk)"
        )
    try:
        index = load_json(path)
    except NnUNetError as e:
        raise InferenceError(str(e)) from None
    entries = index.get("checkpoints") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("file"), str) for e in entries
    ):
        raise InferenceError(f"{path}: expected a 'checkpoints' list of {{\"file\": ...}} entries")
    return index


def ensemble_checkpoint_files(fold_folder: str | os.PathLike) -> list[str]:
    """Return the checkpoint file names listed in a fold's index (at least one)."""
    names = [entry["file"] for entry in load_checkpoint_index(fold_folder)["checkpoints"]]
    if not names:
        raise InferenceError(
            f"{Path(fold_folder) / CHECKPOINT_INDEX_FILE}: lists no checkpoints yet; the "
            f"first ensemble checkpoint is saved at 70% of the first cycle"
        )
    return names


def folds_with_checkpoint_index(model_folder: str | os.PathLike) -> list[int | str]:
    """Return the folds (numbers first, then ``all``) of a model folder that hold a checkpoint index."""
    folds: list[int | str] = []
    for child in Path(model_folder).glob("fold_*"):
        suffix = child.name[len("fold_") :]
        if (child / CHECKPOINT_INDEX_FILE).is_file() and (suffix.isdigit() or suffix == "all"):
            folds.append(int(suffix) if suffix.isdigit() else suffix)
    return sorted(folds, key=lambda f: (isinstance(f, str), f if isinstance(f, int) else 0))
