"""nnUNetTrainerCyclicLR: poly learning rate restarted every cycle, plus a checkpoint ensemble for uncertainty.

The run of ``num_epochs`` is split into ``num_of_cycles`` equal cycles; within each the learning
rate decays from ``initial_lr`` with nnU-Net's poly rule, then restarts (one cycle is exactly
nnUNetTrainer's schedule). Near the end of every cycle the network sits in a minimum; the
checkpoints saved there (``checkpoint_rule``: ``sparse`` = six evenly spaced from 70% of each
cycle to its end, ``late`` = its last ten epochs) form the ensemble whose disagreement measures
uncertainty. They are named ``checkpoint_cycle{c}_epoch{e}.pth`` (e = epochs completed) and
listed in ``fold_k/checkpoint_ensemble.json``. nnUNetv2_train sets both with ``-num_of_cycles``
and ``-checkpoints``.
"""

from __future__ import annotations

from typing import Any

from nnunetv2.formats.checkpoint_index import CHECKPOINT_INDEX_FILE, ensemble_checkpoint_name, save_checkpoint_index
from nnunetv2.training.lr_schedule.cyclic import CyclicPolyLRScheduler, cycle_of_epoch, ensemble_checkpoint_epochs
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer

LR_SCHEDULE_DESCRIPTION = "poly decay (exponent 0.9) restarted at the start of every cycle"
DEFAULT_TRAINER_NAME = "nnUNetTrainer"


def trainer_for_cycle_flags(trainer_name: str, num_of_cycles: int | None, checkpoint_rule: str | None) -> str:
    """Return the trainer to run: ``nnUNetTrainerCyclicLR`` for the default trainer with cycles or ensemble checkpoints.

    UnnUNet built the cycles into nnUNetTrainer itself, so its users type ``-num_of_cycles`` and
    ``-checkpoints`` without ``-tr``. One cycle and no ``-checkpoints`` stays plain nnUNetTrainer (its
    schedule is the same), so that run and its model folder are exactly nnU-Net's.
    """
    if trainer_name != DEFAULT_TRAINER_NAME:
        return trainer_name
    if checkpoint_rule is None and (num_of_cycles is None or num_of_cycles == 1):
        return trainer_name
    return nnUNetTrainerCyclicLR.__name__


class nnUNetTrainerCyclicLR(nnUNetTrainer):
    """nnUNetTrainer with a cyclic poly learning rate that saves an ensemble of checkpoints per cycle."""

    num_of_cycles = 1
    checkpoint_rule = "sparse"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._ensemble_epochs: set[int] = set()
        self._checkpoint_index: dict[str, Any] | None = None

    def ensemble_epochs(self) -> list[int]:
        """Return the 0-based epochs after which an ensemble checkpoint is saved (checks the settings)."""
        return ensemble_checkpoint_epochs(self.num_epochs, self.num_of_cycles, self.checkpoint_rule)

    def configure_optimizers(self) -> tuple[Any, CyclicPolyLRScheduler]:
        """Return nnUNetTrainer's optimizer with a poly learning rate restarted ``num_of_cycles`` times."""
        self.ensemble_epochs()  # bad settings fail here, before the first epoch
        optimizer, _ = super().configure_optimizers()
        return optimizer, CyclicPolyLRScheduler(optimizer, self.initial_lr, self.num_epochs, self.num_of_cycles)

    def _index_settings(self) -> dict[str, Any]:
        return {
            "trainer_name": type(self).__name__,
            "num_epochs": self.num_epochs,
            "num_of_cycles": self.num_of_cycles,
            "checkpoint_rule": self.checkpoint_rule,
            "lr_schedule": LR_SCHEDULE_DESCRIPTION,
        }

    def _resumed_index(self) -> dict[str, Any]:
        """The index to continue: the existing one when resuming with the same settings, else a new one."""
        from nnunetv2.exceptions import NnUNetError
        from nnunetv2.utilities.file_io import load_json

        settings = self._index_settings()
        path = self.output_folder / CHECKPOINT_INDEX_FILE
        if self.current_epoch == 0 or not path.is_file():
            return {**settings, "checkpoints": []}
        try:
            existing = load_json(path)
        except NnUNetError:
            existing = {}
        if not isinstance(existing, dict) or any(existing.get(k) != v for k, v in settings.items()):
            self.print_to_log_file(f"{path.name}: written with other settings; starting a new checkpoint ensemble")
            return {**settings, "checkpoints": []}
        kept = [
            entry
            for entry in existing.get("checkpoints", [])
            if entry.get("epoch", 0) <= self.current_epoch and (self.output_folder / entry["file"]).is_file()
        ]
        return {**settings, "checkpoints": kept}

    def on_train_start(self) -> None:
        """Prepare the run, then the list of ensemble epochs and the checkpoint index."""
        super().on_train_start()
        self._ensemble_epochs = set(self.ensemble_epochs())
        self._checkpoint_index = self._resumed_index()
        cycle_length = self.num_epochs / self.num_of_cycles
        self.print_to_log_file(
            f"cyclic learning rate: {self.num_of_cycles} cycle(s) of ~{cycle_length:g} epochs, "
            f"{len(self._ensemble_epochs)} ensemble checkpoint(s) ('{self.checkpoint_rule}')"
        )

    def on_epoch_end(self) -> None:
        """Finish the epoch as nnUNetTrainer does; save an ensemble checkpoint when the epoch is one."""
        epoch = self.current_epoch
        super().on_epoch_end()
        if epoch in self._ensemble_epochs:
            self.save_ensemble_checkpoint(epoch)

    def save_ensemble_checkpoint(self, epoch: int) -> None:
        """Save the checkpoint after 0-based ``epoch`` and list it in checkpoint_ensemble.json (rank 0 only)."""
        if self.disable_checkpointing or not self.dist.is_main:
            return
        assert self._checkpoint_index is not None, "on_train_start sets up the checkpoint index"
        cycle = cycle_of_epoch(epoch, self.num_epochs, self.num_of_cycles)
        name = ensemble_checkpoint_name(cycle, epoch + 1)
        # on_epoch_end has counted the epoch already; a checkpoint stores current_epoch + 1 epochs done
        self.current_epoch -= 1
        try:
            self.save_checkpoint(name)
        finally:
            self.current_epoch += 1
        entries = [e for e in self._checkpoint_index["checkpoints"] if e["file"] != name]
        self._checkpoint_index["checkpoints"] = entries + [{"file": name, "cycle": cycle, "epoch": epoch + 1}]
        save_checkpoint_index(self.output_folder, self._checkpoint_index)
        self.print_to_log_file(f"saved ensemble checkpoint {name}")
