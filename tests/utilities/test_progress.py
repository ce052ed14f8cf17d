"""Progress: a tqdm bar in a terminal, plain quarter lines when redirected, and the training epoch helpers."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from nnunetv2.utilities.progress import PlainProgress, progress_bar


def test_redirected_progress_writes_a_plain_line_per_quarter(caplog):
    with caplog.at_level(logging.INFO, logger="nnunetv2.utilities.progress"):
        bar = progress_bar(range(8), desc="predicting", unit="case", plain=True)
        assert isinstance(bar, PlainProgress)
        assert list(bar) == list(range(8))
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines] == [f"predicting: {n}/8 case(s)" for n in (2, 4, 6, 8)]
    assert all("\r" not in line for line in lines) and "100%" in lines[-1]


def test_updates_postfix_and_silence(caplog):
    with caplog.at_level(logging.INFO, logger="nnunetv2.utilities.progress"):
        with progress_bar(total=3, desc="checkpoint x case predictions", unit="prediction", plain=True) as bar:
            bar.set_postfix_str("fold 0 checkpoint_cycle1_epoch3")
            bar.update(3)  # one jump over three quarters writes one line
        assert len(caplog.records) == 1 and "(fold 0 checkpoint_cycle1_epoch3)" in caplog.records[0].getMessage()
        silent = progress_bar(range(4), desc="x", disable=True)
        assert list(silent) == [0, 1, 2, 3] and len(caplog.records) == 1


def test_an_epoch_shows_progress_only_until_the_run_has_an_estimate(caplog):
    from nnunetv2.dataset.label_manager import label_names
    from nnunetv2.training.logger import TrainingCurves
    from nnunetv2.training.progress import epoch_iterations

    trainer = SimpleNamespace(
        num_iterations_per_epoch=4,
        num_epochs=3,
        dist=SimpleNamespace(is_main=True),
        logger=TrainingCurves(),
    )
    with caplog.at_level(logging.INFO, logger="nnunetv2.utilities.progress"):
        assert list(epoch_iterations(trainer, 0)) == [0, 1, 2, 3]
        assert [r.getMessage().split(",")[0] for r in caplog.records][-1] == "epoch 1/3: 4/4 iteration(s)"
        count = len(caplog.records)
        trainer.logger.values["epoch_end_timestamps"] = [12.0]
        assert list(epoch_iterations(trainer, 1)) == [0, 1, 2, 3]  # redirected: the epoch line suffices now
        trainer.logger.values["epoch_end_timestamps"] = []
        trainer.show_progress = False
        assert list(epoch_iterations(trainer, 0)) == [0, 1, 2, 3]
        assert len(caplog.records) == count
    assert label_names({"background": 0, "blob": 1, "both": [1, 2]}, [1, (1, 2), 5]) == ["blob", "both", "5"]
