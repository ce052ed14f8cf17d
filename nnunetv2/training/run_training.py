"""``nnUNetv2_train`` as a library call: pick the trainer, resume or fine-tune, train, validate; DDP too."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from nnunetv2 import paths
from nnunetv2.exceptions import PlansError, TrainingError
from nnunetv2.formats.folds import Fold, parse_fold
from nnunetv2.training.trainer_options import TrainerOptions
from nnunetv2.utilities.parameters import check_number

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
    cpu_bf16: bool | None = None  # bfloat16 network on the CPU (None: where the CPU has it natively)
    show_progress: bool = True  # the in-epoch bar (plain lines when redirected); the epoch lines stay
    overwrite: bool = False  # start a fold that already holds a finished training over (nnU-Net v2 always does)


def _check_request(request: TrainingRequest) -> TrainingRequest:
    if request.continue_training and request.pretrained_weights:
        raise TrainingError("-pretrained_weights only applies to a new training, not together with --c")
    if request.only_run_validation and request.pretrained_weights:
        raise TrainingError("-pretrained_weights cannot be combined with --val")
    if request.validate_with_best and request.disable_checkpointing:
        raise TrainingError("--val_best needs checkpoint_best.pth, which --disable_checkpointing never writes")
    if request.continue_training and request.overwrite:
        raise TrainingError("--c continues the fold's training and --overwrite starts it over: give one of them")
    check_number("-num_gpus", request.num_gpus, "integer >= 1", error=TrainingError)
    for name in _OVERRIDABLE:
        check_number(f"-{name}", getattr(request, name), "integer >= 1", error=TrainingError, optional=True)
    check_number("-seed", request.seed, "integer >= 0", error=TrainingError, optional=True)
    check_number("-num_of_cycles", request.num_of_cycles, "integer >= 1", error=TrainingError, optional=True)
    check_number("num_data_workers", request.num_data_workers, "integer >= 0", error=TrainingError, optional=True)
    from nnunetv2.training.trainers.nnUNetTrainerCyclicLR import trainer_for_cycle_flags

    # UnnUNet's instructions give -num_of_cycles / -checkpoints to the default trainer
    trainer_name = trainer_for_cycle_flags(request.trainer_name, request.num_of_cycles, request.checkpoint_rule)
    if trainer_name != request.trainer_name:
        logger.info("-num_of_cycles/-checkpoints given: training with %s", trainer_name)
    elif trainer_name == "nnUNetTrainer" and request.num_of_cycles == 1 and request.checkpoint_rule is None:
        request = replace(request, num_of_cycles=None)  # one cycle is nnUNetTrainer's own schedule
    return replace(request, fold=parse_fold(request.fold), trainer_name=trainer_name)


def trainer_options(request: TrainingRequest, trainer_class: type | None = None) -> TrainerOptions:
    """Return the request's run settings as TrainerOptions (the augmentation workers resolved here)."""
    from nnunetv2.training.dataloading.background_loader import default_num_workers

    settings = {}
    for name, flag in _CYCLIC_SETTINGS.items():
        if getattr(request, name) is not None:
            if trainer_class is not None and not hasattr(trainer_class, name):
                raise TrainingError(
                    f"{flag} needs a cyclic learning-rate trainer (-tr nnUNetTrainerCyclicLR or a "
                    f"subclass); '{request.trainer_name}' has none"
                )
            settings[name] = getattr(request, name)
    return TrainerOptions(
        num_epochs=request.num_epochs,
        num_iterations_per_epoch=request.num_iterations_per_epoch,
        num_val_iterations_per_epoch=request.num_val_iterations_per_epoch,
        save_every=request.save_every,
        seed=request.seed,
        num_data_workers=default_num_workers() if request.num_data_workers is None else request.num_data_workers,
        disable_checkpointing=request.disable_checkpointing,
        cpu_bf16=request.cpu_bf16,
        show_progress=request.show_progress,
        settings=settings,
    )


def check_safe_to_start(trainer, request: TrainingRequest) -> None:
    """Refuse, before anything is written, a start from unfinished preprocessing or over a finished fold."""
    from nnunetv2.dataset.preprocessed_case import list_complete_preprocessed_cases

    if not request.only_run_validation:
        list_complete_preprocessed_cases(
            trainer.preprocessed_dataset_folder
        )  # PreprocessingError naming what is missing
    finished = Path(trainer.output_folder) / "checkpoint_final.pth"
    starting_over = not (request.continue_training or request.only_run_validation)
    if starting_over and finished.is_file() and not request.overwrite:
        raise TrainingError(
            f"{finished.parent}: this fold has finished training; continue it with --c (e.g. with more -num_epochs), "
            f"validate with --val, or train it again from scratch with --overwrite"
        )


def build_trainer(request: TrainingRequest, device=None):
    """Return the requested trainer for its dataset, plans and configuration, built from one request."""
    from nnunetv2.formats.dataset_json import DatasetJson
    from nnunetv2.formats.plans import Plans
    from nnunetv2.training.trainer_lookup import find_trainer_class
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name
    from nnunetv2.utilities.device import resolve_device
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
    device = resolve_device(request.device) if device is None else resolve_device(str(device))
    return trainer_class(
        plans, request.configuration, request.fold, dataset_json, device,
        options=trainer_options(request, trainer_class),
    )  # fmt: skip


def prepare_run_environment(trainer, seed: int | None) -> None:
    """Set up the machine for a training run: torch's CPU threads (and a thread trial) or cuDNN autotuning.

    Launcher concerns, kept out of the trainer: on the CPU, torch gets the idle cores beside the
    augmentation workers; an unseeded single-process run also times the first iterations with every
    core (``trainer.iteration_timer``) and keeps the faster choice. Seeded runs keep one rule, to stay
    repeatable.
    """
    import os

    import torch

    from nnunetv2.training.dataloading.background_loader import default_num_workers
    from nnunetv2.training.run_environment import (
        CpuThreadTrial,
        cpu_threads_beside_workers,
        cpu_threads_without_workers,
    )

    if trainer.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        return
    if trainer.device.type != "cpu":
        return
    if trainer.num_data_workers is None:
        trainer.num_data_workers = default_num_workers()
    world_size = trainer.dist.world_size
    threads, reason = cpu_threads_beside_workers(trainer.num_data_workers, world_size, consider_load=seed is None)
    torch.set_num_threads(threads)
    more = cpu_threads_without_workers(world_size)
    if seed is None and world_size == 1 and not os.environ.get("OMP_NUM_THREADS") and more > threads:
        trainer.iteration_timer = CpuThreadTrial([threads, more])
        reason += f"; {more} will be tried on the first iterations"
    trainer.print_to_log_file(
        f"CPU training: {torch.get_num_threads()} torch thread(s) beside "
        f"{trainer.num_data_workers} augmentation worker(s) ({reason}); network in "
        f"{'bfloat16 (--fp32 for float32)' if trainer.cpu_bf16 else 'float32'}"
        f"{', channels-last (nnUNet_channels_last)' if trainer.channels_last else ''}"
    )


def _checkpoint_to_resume(fold_folder: Path) -> Path | None:
    # latest first: it is never older than final (written with it at the end, and during an extended
    # run); best last, as nnU-Net v2, for a run that stopped before its first checkpoint_latest
    for name in ("checkpoint_latest.pth", "checkpoint_final.pth", "checkpoint_best.pth"):
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
            prepare_run_environment(trainer, request.seed)
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
    check_safe_to_start(trainer, request)
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
        trainer.do_split()
        spawn_processes(_ddp_worker, request.num_gpus, (request, device.type))
    else:
        execute(trainer, request)
    return trainer.output_folder
