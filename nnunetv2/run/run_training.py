"""nnU-Net v2's ``nnunetv2.run.run_training``: ``run_training`` and ``run_training_entry`` over ours.

The training itself is ``nnunetv2.training.run_training``; ``run_training_entry`` is nnUNetv2_train.
"""

from __future__ import annotations

from nnunetv2.cli.train import train_entry as run_training_entry
from nnunetv2.training.run_training import TrainingRequest
from nnunetv2.training.run_training import run_training as _run_training

__all__ = ["run_training", "run_training_entry"]


def run_training(
    dataset_name_or_id: str | int,
    configuration: str,
    fold: int | str,
    trainer_class_name: str = "nnUNetTrainer",
    plans_identifier: str = "nnUNetPlans",
    pretrained_weights: str | None = None,
    num_gpus: int = 1,
    export_validation_probabilities: bool = False,
    continue_training: bool = False,
    only_run_validation: bool = False,
    disable_checkpointing: bool = False,
    val_with_best: bool = False,
    device=None,
):
    """Train (or validate) one fold, as nnUNetv2_train; returns the fold's output folder.

    ``device`` is a ``torch.device`` or a name ('cuda', 'cpu', 'mps'); None picks CUDA when present.
    """
    return _run_training(
        TrainingRequest(
            dataset_name_or_id=dataset_name_or_id,
            configuration=configuration,
            fold=fold,
            trainer_name=trainer_class_name,
            plans_identifier=plans_identifier,
            pretrained_weights=pretrained_weights,
            num_gpus=num_gpus,
            device=getattr(device, "type", device),
            continue_training=continue_training,
            only_run_validation=only_run_validation,
            validate_with_best=val_with_best,
            export_validation_probabilities=export_validation_probabilities,
            disable_checkpointing=disable_checkpointing,
        )
    )
