"""Per-epoch training curves (nnU-Net v2's ``logging`` checkpoint entry) and the text training log."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ESTIMATE_WINDOW = 5  # epochs whose mean duration predicts the rest of the run (the first epoch is often slower)
# nnU-Net v2's key names, so a checkpoint's 'logging' entry can be continued by either implementation
CURVE_KEYS = (
    "mean_fg_dice",
    "ema_fg_dice",
    "dice_per_class_or_region",
    "train_losses",
    "val_losses",
    "lrs",
    "epoch_start_timestamps",
    "epoch_end_timestamps",
)


class TrainingCurves:
    """One list per quantity, indexed by epoch; logging ``mean_fg_dice`` also updates its EMA.

    The trainer's ``self.logger``, with nnU-Net v2's MetaLogger methods (``log``, ``get_value``,
    ``log_summary``, ``plot_progress_png``, ``get_checkpoint``, ``load_checkpoint``). A trainer may log
    keys of its own; they are kept in the checkpoint too.
    """

    def __init__(self, ema_momentum: float = 0.9):
        self.ema_momentum = ema_momentum
        self.values: dict[str, list[Any]] = {k: [] for k in CURVE_KEYS}
        self.summary: dict[str, Any] = {}

    def log(self, key: str, value: Any, epoch: int) -> None:
        """Record ``value`` for ``epoch`` (appending, or replacing a value logged before)."""
        series = self.values.setdefault(key, [])
        if len(series) < epoch:
            raise ValueError(f"'{key}' has no value for epoch {len(series)} but one for {epoch} is logged")
        if len(series) == epoch:
            series.append(value)
        else:
            series[epoch] = value
        if key == "mean_fg_dice":
            ema = self.values["ema_fg_dice"]
            new_ema = (
                value if epoch == 0 or not ema else self.ema_momentum * ema[epoch - 1] + (1 - self.ema_momentum) * value
            )
            self.log("ema_fg_dice", new_ema, epoch)

    def get_value(self, key: str, step: int | None) -> Any:
        """Return the value of ``key`` at ``step`` (-1: the last), or all its values when ``step`` is None."""
        return self.values[key] if step is None else self.values[key][step]

    def log_summary(self, key: str, value: Any) -> None:
        """Record a value logged once per run (e.g. the final validation Dice)."""
        self.summary[key] = value

    def update_config(self, config: dict[str, Any]) -> None:
        """Accept nnU-Net v2's experiment configuration (only its optional external loggers use it)."""

    def plot_progress_png(self, output_folder: str | os.PathLike) -> None:
        """Draw progress.png into ``output_folder``."""
        from nnunetv2.training.progress_plot import plot_progress

        plot_progress(self.get_checkpoint(), Path(output_folder) / "progress.png")

    def get_checkpoint(self) -> dict[str, list[Any]]:
        """Return the curves for the checkpoint's ``logging`` entry."""
        return {k: list(v) for k, v in self.values.items()}

    def load_checkpoint(self, curves: dict[str, list[Any]], num_epochs_done: int | None = None) -> None:
        """Restore curves from a checkpoint, dropping entries of epochs after ``num_epochs_done`` (if given)."""
        keys = list(CURVE_KEYS) + [k for k in curves if k not in CURVE_KEYS]
        self.values = {k: list(curves.get(k, []))[:num_epochs_done] for k in keys}

    def epoch_summary(self, epoch: int, num_epochs: int, class_names: Sequence[str] | None = None) -> str:
        """Return the one-line report of a finished epoch: losses, pseudo Dice per class (named when
        ``class_names`` are given), learning rate, duration and the estimate for the rest of the run."""
        v = self.values
        values = v["dice_per_class_or_region"][epoch]
        names = list(class_names) if class_names is not None and len(class_names) == len(values) else None
        dice = ", ".join(
            ("nan" if math.isnan(d) else f"{d:.4f}")
            if names is None
            else f"{n} {'nan' if math.isnan(d) else f'{d:.4f}'}"
            for d, n in zip(values, names or values)
        )
        duration = v["epoch_end_timestamps"][epoch] - v["epoch_start_timestamps"][epoch]
        return (
            f"epoch {epoch + 1}/{num_epochs}: train_loss {v['train_losses'][epoch]:.4f}, "
            f"val_loss {v['val_losses'][epoch]:.4f}, pseudo Dice [{dice}] "
            f"(EMA {v['ema_fg_dice'][epoch]:.4f}), lr {v['lrs'][epoch]:.3e}, {duration:.1f} s"
            f"{self.run_estimate(epoch, num_epochs)}"
        )

    def run_estimate(self, epoch: int, num_epochs: int, now: datetime | None = None) -> str:
        """Return ``", about 12 min left (until 18:52)"`` after ``epoch`` from the mean of the last
        ``ESTIMATE_WINDOW`` epochs' durations; empty after the last epoch."""
        remaining = num_epochs - epoch - 1
        if remaining <= 0:
            return ""
        starts = self.values["epoch_start_timestamps"][: epoch + 1][-ESTIMATE_WINDOW:]
        ends = self.values["epoch_end_timestamps"][: epoch + 1][-ESTIMATE_WINDOW:]
        seconds = remaining * sum(e - s for s, e in zip(starts, ends)) / max(len(ends), 1)
        finish = (now or datetime.now()) + timedelta(seconds=seconds)
        return f", about {_duration(seconds)} left (until {finish:%H:%M})"


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min`` or ``3.4 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TrainingLogFile:
    """``training_log_<timestamp>.txt`` in the fold folder; every line also goes to ``logging``.

    Disabled (on DDP ranks other than 0) it neither writes nor logs, so each line appears once.
    """

    def __init__(self, folder: str | os.PathLike, enabled: bool = True):
        stamp = datetime.now().strftime("%Y_%m_%d_%H_%M_%S")
        self.path = Path(folder) / f"training_log_{stamp}.txt" if enabled else None

    def write(self, message: str) -> None:
        """Log ``message`` and append it, timestamped, to the log file."""
        if self.path is not None:
            logger.info(message)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(f"{datetime.now():%Y-%m-%d %H:%M:%S}: {message}\n")
