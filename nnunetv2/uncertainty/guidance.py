"""Warnings about checkpoint ensembles whose uncertainty is unlikely to mean much.

Checked from each fold's ``checkpoint_ensemble.json`` and the members a run uses:

- cycles shorter than ``MIN_EPOCHS_PER_CYCLE``: the shortest cycle the uncertainty benchmark saw
  work (10 epochs of 25 iterations, Spearman rho -0.92 between Dice and score; see
  documentation/uncertainty.md). Much shorter runs leave checkpoints that barely differ, and every
  case gets about the same score;
- checkpoints from the first half of their cycle (e.g. ``-checkpoints late`` with cycles under 20
  epochs): the learning rate is still high there, the network is between minima;
- with fold selection, folds with different numbers of checkpoints: fewer checkpoints disagree
  less, so such a fold wins more cases than it deserves (one checkpoint has no disagreement at all:
  ``t_test`` scores it 0 on every case).

Each warning is one line, logged and recorded in the run's index file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MIN_EPOCHS_PER_CYCLE = 10


def ensemble_warnings(
    model_folder: str | os.PathLike | None, members: Iterable[Mapping[str, Any]], select_fold: bool = False
) -> list[str]:
    """Return one line per problem of the ensemble ``members`` (``{"fold", "checkpoint"}``) of ``model_folder``
    (None: a run that did not record its model; only the checkpoint counts are checked)."""
    from nnunetv2.formats.checkpoint_index import CHECKPOINT_INDEX_FILE, cycle_bounds, load_checkpoint_index

    per_fold: dict[str, list[str]] = {}
    for member in members:
        per_fold.setdefault(str(member["fold"]), []).append(str(member.get("checkpoint", "")))
    warnings = []
    for fold, checkpoints in per_fold.items() if model_folder is not None and str(model_folder) else ():
        fold_folder = Path(str(model_folder)) / f"fold_{fold}"
        if not (fold_folder / CHECKPOINT_INDEX_FILE).is_file():
            continue  # checkpoints named with -chk, or a moved model folder: nothing to check against
        index = load_checkpoint_index(fold_folder)
        num_epochs, num_cycles = index.get("num_epochs"), index.get("num_of_cycles")
        if not isinstance(num_epochs, int) or not isinstance(num_cycles, int) or not 1 <= num_cycles <= num_epochs:
            continue
        bounds = cycle_bounds(num_epochs, num_cycles)
        shortest = min(end - start for start, end in bounds)
        if shortest < MIN_EPOCHS_PER_CYCLE:
            warnings.append(
                f"fold {fold}: cycles of {shortest} epoch(s) ({num_epochs} epochs, {num_cycles} cycles) are shorter "
                f"than the recommended {MIN_EPOCHS_PER_CYCLE}; the checkpoints barely differ and case scores come out "
                f"nearly equal (see 'settings for short runs' in documentation/uncertainty.md)"
            )
        entries = {e["file"]: e for e in index["checkpoints"]}
        early = []
        for name in checkpoints:
            entry = entries.get(name, {})
            cycle, epoch = entry.get("cycle"), entry.get("epoch")
            if not isinstance(cycle, int) or not isinstance(epoch, int) or not 1 <= cycle <= len(bounds):
                continue
            start, end = bounds[cycle - 1]
            if epoch - start <= (end - start) / 2:  # epoch counts completed epochs
                early.append(f"{epoch - start}/{end - start}")
        if early:
            warnings.append(
                f"fold {fold}: {len(early)} of {len(checkpoints)} ensemble checkpoints come from the first half of "
                f"their cycle (epoch in cycle: {', '.join(early)}), where the learning rate is still high; use "
                f"longer cycles or -checkpoints sparse"
            )
    counts = {fold: len(names) for fold, names in per_fold.items()}
    if select_fold and len(set(counts.values())) > 1:
        listed = ", ".join(f"fold {fold}: {count}" for fold, count in counts.items())
        warnings.append(
            f"--select_fold: the folds have different numbers of checkpoints ({listed}); a fold with fewer "
            f"checkpoints disagrees less with itself and wins cases unfairly (a single checkpoint scores 0 with "
            f"t_test)"
        )
    for warning in warnings:
        logger.warning("warning: %s", warning)
    return warnings
