"""One request for a trainer: the settings of a run beside nnU-Net v2's constructor arguments.

``nnUNetTrainer(plans, configuration, fold, dataset_json, device, options=TrainerOptions(...))`` works
for every subclass, also for one written for nnU-Net v2 whose ``__init__`` knows only the five
upstream arguments: the trainers' metaclass takes ``options`` away from the constructor call, lets the
class be built, then applies the options (so they win over values a subclass sets in ``__init__``).
The options are stored, as a plain dict, in the checkpoints' ``init_args``; ``type(trainer)(**init_args)``
rebuilds the same run.
"""

from __future__ import annotations

import contextvars
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nnunetv2.exceptions import TrainingError

# trainer attributes an option overrides when it is not None
_OVERRIDES = (
    "num_epochs",
    "num_iterations_per_epoch",
    "num_val_iterations_per_epoch",
    "save_every",
    "initial_lr",
    "seed",
    "num_data_workers",
    "stop_after_epoch",
)


@dataclass(frozen=True)
class TrainerOptions:
    """Settings of one training run; None (or False) keeps the trainer's own value."""

    num_epochs: int | None = None
    num_iterations_per_epoch: int | None = None
    num_val_iterations_per_epoch: int | None = None
    save_every: int | None = None
    initial_lr: float | None = None
    seed: int | None = None
    num_data_workers: int | None = None  # augmentation worker processes (None: nnUNet_n_proc_DA or the CPU default)
    # end the run after this epoch while the lr schedule still spans num_epochs (a round cut into segments)
    stop_after_epoch: int | None = None
    disable_checkpointing: bool = False
    cpu_bf16: bool | None = None  # bfloat16 network on the CPU (None: the trainer's, by default where native)
    show_progress: bool = True  # False: no bar inside epochs (the epoch lines stay)
    # read the preprocessed dataset from / write the model folder to these folders instead of nnU-Net's
    preprocessed_dataset_folder: str | None = None
    output_folder_base: str | None = None
    # other attributes of the trainer class (e.g. num_of_cycles of nnUNetTrainerCyclicLR)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the options as a dict of builtins (stored in checkpoints)."""
        return asdict(self)

    @classmethod
    def coerce(cls, value: TrainerOptions | dict[str, Any] | None) -> TrainerOptions:
        """Return ``value`` as TrainerOptions (a dict as stored in ``init_args``; None: no options)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise TrainingError(f"unknown trainer option '{unknown[0]}'")
            return cls(**value)
        raise TrainingError(f"trainer options must be TrainerOptions or a dict, got {type(value).__name__}")

    def apply_to(self, trainer: Any) -> None:
        """Set the options on a constructed trainer; an unknown entry of ``settings`` is an error."""
        for name in _OVERRIDES:
            value = getattr(self, name)
            if value is not None:
                setattr(trainer, name, value)
        if self.disable_checkpointing:
            trainer.disable_checkpointing = True
        if self.cpu_bf16 is not None:  # --bf16 / --fp32
            trainer.cpu_bf16 = self.cpu_bf16
        if not self.show_progress:
            trainer.show_progress = False
        for name, value in self.settings.items():
            if not hasattr(trainer, name):
                raise TrainingError(f"{type(trainer).__name__} has no setting '{name}'")
            setattr(trainer, name, value)


_PENDING: contextvars.ContextVar[TrainerOptions | None] = contextvars.ContextVar("trainer_options", default=None)


def options_being_applied() -> TrainerOptions:
    """Return the options of the trainer under construction (read by ``nnUNetTrainer.__init__``)."""
    return _PENDING.get() or TrainerOptions()


class TrainerMeta(type):
    """Metaclass of nnUNetTrainer: accepts ``options=`` in every subclass' constructor call and applies them last."""

    def __call__(cls, *args: Any, options: TrainerOptions | dict[str, Any] | None = None, **kwargs: Any):
        options = TrainerOptions.coerce(options)
        token = _PENDING.set(options)
        try:
            trainer = super().__call__(*args, **kwargs)
        finally:
            _PENDING.reset(token)
        options.apply_to(trainer)
        return trainer
