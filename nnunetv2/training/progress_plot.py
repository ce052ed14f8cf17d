"""progress.png: losses and pseudo Dice, epoch duration and learning rate per epoch."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nnunetv2.utilities.file_io import atomic_path


def plot_progress(curves: dict[str, list[Any]], output_file: str | os.PathLike) -> None:
    """Draw the training curves into ``output_file`` (a PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    n = min(
        len(curves["train_losses"]),
        len(curves["val_losses"]),
        len(curves["ema_fg_dice"]),
        len(curves["epoch_end_timestamps"]),
    )
    epochs = np.arange(n)
    fig, (ax_loss, ax_time, ax_lr) = plt.subplots(3, 1, figsize=(10, 12))
    ax_loss.plot(epochs, curves["train_losses"][:n], color="b", label="train loss")
    ax_loss.plot(epochs, curves["val_losses"][:n], color="r", label="val loss")
    ax_dice = ax_loss.twinx()
    ax_dice.plot(epochs, curves["mean_fg_dice"][:n], color="g", ls="dotted", label="pseudo Dice")
    ax_dice.plot(epochs, curves["ema_fg_dice"][:n], color="g", label="pseudo Dice (EMA)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_dice.set_ylabel("pseudo Dice")
    ax_loss.legend(loc=(0, 1))
    ax_dice.legend(loc=(0.2, 1))

    durations = np.array(curves["epoch_end_timestamps"][:n]) - np.array(curves["epoch_start_timestamps"][:n])
    ax_time.plot(epochs, durations, color="b", label="epoch duration")
    ax_time.set_xlabel("epoch")
    ax_time.set_ylabel("time [s]")
    ax_time.legend(loc=(0, 1))

    ax_lr.plot(epochs, curves["lrs"][:n], color="b", label="learning rate")
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate")
    ax_lr.legend(loc=(0, 1))
    fig.tight_layout()
    with atomic_path(output_file) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
