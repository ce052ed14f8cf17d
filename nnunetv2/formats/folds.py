"""Fold names of a model folder and of ``splits_final.json``: an index into the splits, or 'all'."""

from __future__ import annotations

from nnunetv2.exceptions import TrainingError

Fold = int | str


def parse_fold(fold: int | str) -> Fold:
    """Return ``fold`` as an int, or the string 'all'."""
    if isinstance(fold, int) or fold == "all":
        return fold
    try:
        return int(fold)
    except ValueError:
        raise TrainingError(f"fold must be an integer or 'all', got '{fold}'") from None
