"""What a person sees while a fold trains: a bar inside each epoch (the epoch's report line is logger.py's).

In a terminal each epoch draws a bar over its training iterations (cleared when the epoch ends,
whose one-line report, with the estimate for the run, follows; see logger.py). Redirected to a
file, the first epoch of a run writes a plain line at each quarter instead (until then there is
no estimate, and an epoch can take minutes); later epochs are reported by their line alone.
``nnUNetv2_train --disable_progress_bar`` (trainer attribute ``show_progress = False``) silences
both the bar and the plain lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def epoch_iterations(trainer: Any, epoch: int) -> Iterator[int]:
    """Yield the iteration numbers of one training epoch of ``trainer``, showing its progress (see module docstring)."""
    from nnunetv2.utilities.progress import output_is_terminal, progress_bar

    total = trainer.num_iterations_per_epoch
    shown = getattr(trainer, "show_progress", True) and trainer.dist.is_main
    first = not trainer.logger.get_value("epoch_end_timestamps", None)[:epoch]  # no epoch timed yet: no estimate either
    terminal = output_is_terminal()
    bar = progress_bar(
        range(total),
        desc=f"epoch {epoch + 1}/{trainer.num_epochs}",
        unit="iteration",
        disable=not shown or (not terminal and not first),
        plain=not terminal,
        leave=False,
    )
    try:
        yield from bar
    finally:
        bar.close()
