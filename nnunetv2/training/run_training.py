"""``nnUNetv2_train`` as a library call: pick the trainer, resume or fine-tune, train, validate; DDP too."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from nnunetv2 import paths
from nnunetv2.exceptions import PlansError, TrainingError
from nnunetv2.formats.folds import Fold, parse_fold

logger = logging.getLogger(__name__)

_OVERRIDABLE = ("num_epochs", "num_iterations_per_epoch", "num_val_iterations_per_epoch", "save_every")
# settings only cyclic-LR trainers have (nnUNetTrainerCyclicLR): request field -> its flag
_CYCLIC_SETTINGS = {"num_of_cycles": "-num_of_cycles", "checkpoint_rule": "-checkpoints"}


@dataclass(frozen=True)
class TrainingRequest:
    """Everything ``nnUNetv2_train`` can be asked for (nnU-Net v2's flags, plus seed and workers)."""

    dataset_name_or_id: str | int
    configuration: str
    fold: Fold
    trainer_name: str = "nnUNetTrainer"
    plans_identifier: str = "nnUNetPlans"
    pretrained_weights: str | None = None
    num_gpus: int = 1
    device: str | None = None  # None: CUDA when present, else CPU
    continue_training: bool = False
    only_run_validation: bool = False
    validate_with_best: bool = False
    export_validation_probabilities: bool = False
    disable_checkpointing: bool = False
    num_epochs: int | None = None
    num_iterations_per_epoch: int | None = None
    num_val_iterations_per_epoch: int | None = None
    save_every: int | None = None
    seed: int | None = None
    num_data_workers: int | None = None  # None: the augmentation default (nnUNet_n_proc_DA)
    num_of_cycles: int | None = None  # cyclic-LR trainers: learning-rate restarts (None: the trainer's)
    checkpoint_rule: str | None = None  # cyclic-LR trainers: 'sparse' or 'late' ensemble checkpoints
    cpu_bf16: bool = False  # bfloat16 network on the CPU
    show_progress: bool = True  # the in-epoch bar (plain lines when redirected); the epoch lines stay


def _check_request(request: TrainingRequest) -> TrainingRequest:
    if request.continue_training and request.pretrained_weights:
        raise TrainingError("-pretrained_weights only applies to a new training, not together with --c")
    if request.only_run_validation and request.pretrained_weights:
        raise TrainingError("-pretrained_weights cannot be combined with --val")
    if request.validate_with_best and request.disable_checkpointing:
        raise TrainingError("--val_best needs checkpoint_best.pth, which --disable_checkpointing never writes")
    if request.num_gpus < 1:
        raise TrainingError(f"-num_gpus must be at least 1, got {request.num_gpus}")
    for name in _OVERRIDABLE:
        value = getattr(request, name)
        if value is not None and value < 1:
            raise TrainingError(f"-{name} must be at least 1, got {value}")
    return replace(request, fold=parse_fold(request.fold))


def build_trainer(request: TrainingRequest, device=None):
    """Return the requested trainer for its dataset, plans and configuration, flags applied."""
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.formats.plans import Plans
    from nnunetv2.training.trainer_lookup import find_trainer_class
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name
    from nnunetv2.utilities.file_io import load_json

    dataset_name = convert_id_to_dataset_name(request.dataset_name_or_id)
    preprocessed = paths.preprocessed_folder() / dataset_name
    if not preprocessed.is_dir():
        raise TrainingError(f"{preprocessed}: preprocessed dataset not found (run nnUNetv2_plan_and_preprocess)")
    plans_file = preprocessed / f"{request.plans_identifier}.json"
    if not plans_file.is_file():
        raise PlansError(f"{plans_file}: plans not found (run nnUNetv2_plan_experiment, or check -p)")
    plans = load_json(plans_file)
    Plans.from_dict(plans, source=str(plans_file)).configuration(request.configuration)  # unknown -> PlansError
    dataset_json = load_json(preprocessed / "dataset.json")
    DatasetJson.from_dict(dataset_json, source=str(preprocessed / "dataset.json"))
    trainer_class = find_trainer_class(request.trainer_name)
    trainer = trainer_class(
        plans, request.configuration, request.fold, dataset_json, request.device if device is None else device
    )
    for name in _OVERRIDABLE:
        if getattr(request, name) is not None:
            setattr(trainer, name, getattr(request, name))
    for name, flag in _CYCLIC_SETTINGS.items():
        if getattr(request, name) is not None:
            if not hasattr(trainer, name):
                raise TrainingError(
                    f"{flag} needs a cyclic learning-rate trainer (-tr nnUNetTrainerCyclicLR or a "
                    f"subclass); '{request.trainer_name}' has none"
                )
            setattr(trainer, name, getattr(request, name))
    trainer.disable_checkpointing = trainer.disable_checkpointing or request.disable_checkpointing
    trainer.seed = request.seed
    trainer.num_data_workers = request.num_data_workers
    trainer.cpu_bf16 = trainer.cpu_bf16 or request.cpu_bf16
    trainer.show_progress = getattr(trainer, "show_progress", True) and request.show_progress
    return trainer


def _checkpoint_to_resume(fold_folder: Path) -> Path | None:
    for name in ("checkpoint_latest.pth", "checkpoint_final.pth"):
        if (fold_folder / name).is_file():
            return fold_folder / name
    return None


def _validation_checkpoint(fold_folder: Path, request: TrainingRequest) -> Path:
    path = fold_folder / ("checkpoint_best.pth" if request.validate_with_best else "checkpoint_final.pth")
    if not path.is_file():
        raise TrainingError(f"{path}: not found; train this fold first")
    return path


def execute(trainer, request: TrainingRequest) -> None:
    """Resume or fine-tune as requested, train unless only validating, then run the final validation."""
    from nnunetv2.training.checkpointing import load_pretrained_weights

    if request.continue_training:
        checkpoint = _checkpoint_to_resume(trainer.output_folder)
        if checkpoint is None:
            logger.warning("--c: no checkpoint in %s to continue from; starting a new training", trainer.output_folder)
        else:
            trainer.load_checkpoint(checkpoint)
            logger.info("continuing from %s at epoch %d", checkpoint, trainer.current_epoch)
    elif request.pretrained_weights and not request.only_run_validation:
        trainer.initialize()
        load_pretrained_weights(trainer.unwrapped_network(), request.pretrained_weights)

    if request.only_run_validation:
        trainer.load_checkpoint(_validation_checkpoint(trainer.output_folder, request))
    else:
        if trainer.current_epoch >= trainer.num_epochs:
            logger.info("training already finished (%d epochs); only validating", trainer.current_epoch)
        else:
            trainer.run_training()
        if request.validate_with_best:
            trainer.load_checkpoint(trainer.output_folder / "checkpoint_best.pth")
    trainer.perform_actual_validation(request.export_validation_probabilities)


def _ddp_worker(rank: int, world_size: int, request: TrainingRequest, device_type: str) -> None:
    """Entry point of one spawned DDP process."""
    import torch.distributed as dist

    from nnunetv2.training.ddp import DistributedContext, init_process_group

    context = DistributedContext(rank, world_size, rank)
    init_process_group(context, device_type)
    try:
        device = f"cuda:{rank}" if device_type == "cuda" else device_type
        execute(build_trainer(request, device=device), request)
    finally:
        dist.destroy_process_group()


def run_training(request: TrainingRequest) -> Path:
    """Run ``nnUNetv2_train`` for ``request``; returns the fold folder."""
    from nnunetv2.training.ddp import init_process_group, spawn_processes, torchrun_context

    request = _check_request(request)
    # build once here: user errors surface as one line before any process is spawned, and the
    # splits file is written by this process alone
    trainer = build_trainer(request)
    device = trainer.device
    torchrun = torchrun_context()
    if torchrun is not None:
        import torch.distributed as dist

        init_process_group(torchrun, device.type)
        try:
            trainer = build_trainer(request, device=f"cuda:{torchrun.local_rank}" if device.type == "cuda" else device)
            execute(trainer, request)
        finally:
            dist.destroy_process_group()
    elif request.num_gpus > 1:
        if device.type == "cuda":
            import torch

            if torch.cuda.device_count() < request.num_gpus:
                raise TrainingError(
                    f"-num_gpus {request.num_gpus} but only {torch.cuda.device_count()} CUDA device(s) are visible"
                )
        if device.type == "mps":
            raise TrainingError("-num_gpus > 1 is not supported on MPS")
        if request.only_run_validation:
            _validation_checkpoint(trainer.output_folder, request)
        trainer.split_cases()
        spawn_processes(_ddp_worker, request.num_gpus, (request, device.type))
    else:
        execute(trainer, request)
    return trainer.output_folder
