"""Ensemble warnings: short cycles, checkpoints from the first half of a cycle, unequal folds under fold selection;
each is logged once and recorded in the run's index."""

from __future__ import annotations

import logging
from pathlib import Path

from nnunetv2.formats.checkpoint_index import save_checkpoint_index
from nnunetv2.uncertainty.guidance import MIN_EPOCHS_PER_CYCLE, ensemble_warnings


def _fold(model: Path, fold: int, num_epochs: int, num_cycles: int, checkpoints: list[tuple[int, int]]) -> list[dict]:
    """Write fold_k/checkpoint_ensemble.json with (cycle, epoch) checkpoints; return the run's members."""
    entries = [{"file": f"checkpoint_cycle{c}_epoch{e}.pth", "cycle": c, "epoch": e} for c, e in checkpoints]
    (model / f"fold_{fold}").mkdir(parents=True)
    save_checkpoint_index(
        model / f"fold_{fold}", {"num_epochs": num_epochs, "num_of_cycles": num_cycles, "checkpoints": entries}
    )
    return [{"fold": fold, "checkpoint": e["file"]} for e in entries]


def test_a_sound_ensemble_gets_no_warning(tmp_path: Path, caplog):
    members = _fold(tmp_path, 0, 300, 3, [(1, 70), (1, 100), (2, 170), (2, 200), (3, 270), (3, 300)])
    members += _fold(tmp_path, 1, 300, 3, [(1, 70), (1, 100), (2, 170), (2, 200), (3, 270), (3, 300)])
    with caplog.at_level(logging.WARNING):
        assert ensemble_warnings(tmp_path, members, select_fold=True) == []
    assert not caplog.records


def test_short_cycles_and_early_checkpoints_are_named(tmp_path: Path, caplog):
    # 12 epochs in 2 cycles of 6, "late" checkpoints: the last ten epochs of each cycle are all of it
    members = _fold(tmp_path, 0, 12, 2, [(1, 2), (1, 3), (1, 6), (2, 8), (2, 12)])
    with caplog.at_level(logging.WARNING):
        warnings = ensemble_warnings(tmp_path, members)
    assert len(warnings) == 2 and len(caplog.records) == 2
    assert warnings[0].startswith(
        f"fold 0: cycles of 6 epoch(s) (12 epochs, 2 cycles) are shorter than the recommended {MIN_EPOCHS_PER_CYCLE}"
    )
    assert warnings[1].startswith("fold 0: 3 of 5 ensemble checkpoints come from the first half of their cycle")
    assert "(epoch in cycle: 2/6, 3/6, 2/6)" in warnings[1]


def test_unequal_folds_warn_only_under_fold_selection(tmp_path: Path):
    members = _fold(tmp_path, 0, 300, 3, [(1, 100), (2, 200), (3, 300)])
    members += _fold(tmp_path, 1, 300, 3, [(3, 300)])
    assert ensemble_warnings(tmp_path, members) == []
    (warning,) = ensemble_warnings(tmp_path, members, select_fold=True)
    assert warning.startswith("--select_fold: the folds have different numbers of checkpoints (fold 0: 3, fold 1: 1)")
    # checkpoints named with -chk (no index in the fold): the cycles cannot be checked, the counts can
    chk = [{"fold": 2, "checkpoint": "checkpoint_final.pth"}, {"fold": 3, "checkpoint": "checkpoint_final.pth"}]
    assert ensemble_warnings(tmp_path, chk, select_fold=True) == []
