"""Cross-validation splits: ``splits_final.json`` in the preprocessed dataset folder (nnU-Net v2's seeded KFold)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.folds import Fold
from nnunetv2.utilities.file_io import load_json, save_json

logger = logging.getLogger(__name__)

SPLITS_FILE_NAME = "splits_final.json"
DEFAULT_NUM_FOLDS = 5
SPLIT_SEED = 12345


def generate_crossval_split(
    case_ids: Sequence[str], seed: int = SPLIT_SEED, n_splits: int = DEFAULT_NUM_FOLDS
) -> list[dict[str, list[str]]]:
    """Return ``n_splits`` folds of sorted ``case_ids``, identical to sklearn's KFold(shuffle=True).

    KFold shuffles the indices with a RandomState of the seed and cuts them into consecutive chunks
    (the first ``n % n_splits`` one case larger), each listed in sorted order; nnU-Net v2 uses it
    with seed 12345, so do we.
    """
    ids = sorted(case_ids)
    if len(ids) < n_splits:
        raise TrainingError(
            f"{len(ids)} training case(s) are too few for {n_splits}-fold cross-validation "
            f"(need at least {n_splits}); train fold 'all' instead"
        )
    order = np.arange(len(ids))
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_splits, len(ids) // n_splits)
    sizes[: len(ids) % n_splits] += 1
    splits, start = [], 0
    for size in sizes:
        is_val = np.zeros(len(ids), dtype=bool)
        is_val[order[start : start + size]] = True
        splits.append(
            {"train": [ids[i] for i in np.flatnonzero(~is_val)], "val": [ids[i] for i in np.flatnonzero(is_val)]}
        )
        start += size
    return splits


def load_or_create_splits(preprocessed_dataset_folder: str | Path, case_ids: Sequence[str]) -> list[dict]:
    """Return the folds in ``splits_final.json``, creating the default 5 folds when the file is missing."""
    path = Path(preprocessed_dataset_folder) / SPLITS_FILE_NAME
    if path.is_file():
        splits = load_json(path)
        if not isinstance(splits, list) or not all(isinstance(s, dict) and "train" in s and "val" in s for s in splits):
            raise TrainingError(f'{path}: expected a list of {{"train": [...], "val": [...]}} folds')
        _warn_about_uncovered_cases(path, splits, case_ids)
        return splits
    splits = generate_crossval_split(case_ids)
    save_json(splits, path)
    logger.info("created %s with %d folds of %d cases", path, len(splits), len(case_ids))
    return splits


def _warn_about_uncovered_cases(path: Path, splits: list[dict], case_ids: Sequence[str]) -> None:
    """Warn when cases of the dataset are in no fold (e.g. a split made before cases were added)."""
    covered = {case for split in splits for case in list(split["train"]) + list(split["val"])}
    uncovered = sorted(set(case_ids) - covered)
    if uncovered:
        shown = ", ".join(uncovered[:5]) + (", ..." if len(uncovered) > 5 else "")
        logger.warning(
            "%s: %d of the %d preprocessed cases are in no fold (%s) and are never used; delete the file to "
            "make new 5-fold splits of all cases",
            path,
            len(uncovered),
            len(case_ids),
            shown,
        )


def train_val_cases(
    preprocessed_dataset_folder: str | Path, case_ids: Sequence[str], fold: Fold
) -> tuple[list[str], list[str]]:
    """Return (training cases, validation cases) of ``fold``; 'all' trains and validates on every case."""
    case_ids = sorted(case_ids)
    if fold == "all":
        return list(case_ids), list(case_ids)
    splits = load_or_create_splits(preprocessed_dataset_folder, case_ids)
    path = Path(preprocessed_dataset_folder) / SPLITS_FILE_NAME
    if not isinstance(fold, int) or not 0 <= fold < len(splits):
        raise TrainingError(
            f"fold {fold} is out of range: {path} has {len(splits)} folds (0-{len(splits) - 1}), or use 'all'"
        )
    train, val = list(splits[fold]["train"]), list(splits[fold]["val"])
    unknown = sorted(set(train + val) - set(case_ids))
    if unknown:
        raise TrainingError(f"{path}: fold {fold} names case '{unknown[0]}' which is not preprocessed")
    return train, val
