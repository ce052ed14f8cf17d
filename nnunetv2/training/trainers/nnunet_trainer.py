"""nnUNetTrainer: nnU-Net v2's default training, with nnU-Net v2's hooks as its public face.

Every hook of nnU-Net v2's trainer exists here with its name, signature, return value and place in
the run (``initialize``, ``build_network_architecture``, ``configure_optimizers``, ``_build_loss``,
``get_training_transforms``, ``get_dataloaders``, ``do_split``, the ``on_*`` callbacks, ``train_step``,
``validation_step``, ``save_checkpoint``, ...), so a subclass written for nnU-Net v2 works unchanged and
overriding a hook changes what it controls. Behind the hooks the parts come from their own modules:
loss/, lr_schedule/, dataloading/, augmentation/, checkpointing, logger. The settings of one run come
in one request: the constructor's arguments plus ``options=TrainerOptions(...)`` (trainer_options.py),
all stored in the checkpoints' ``init_args``. ``-tr NAME`` finds subclasses by class name.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnunetv2 import paths
from nnunetv2.dataset.label_manager import LabelManager, label_names
from nnunetv2.dataset.preprocessed_case import list_complete_preprocessed_cases
from nnunetv2.dataset.previous_stage import next_stage_folder
from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.checkpoint_io import unwrap_state_dict
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.folds import parse_fold
from nnunetv2.formats.model_folder import fold_folder, model_folder, remove_unfinished_writes, write_model_folder_files
from nnunetv2.formats.plans import ConfigurationPlans, Plans, as_configuration_plans
from nnunetv2.training.augmentation import pipelines
from nnunetv2.training.checkpointing import read_training_checkpoint, save_checkpoint_file
from nnunetv2.training.data_pipeline import PreprocessedCases, build_batch_streams, derive_seed
from nnunetv2.training.ddp import DistributedContext, split_batch
from nnunetv2.training.final_validation import (
    VALIDATION_FOLDER_NAME,
    evaluate_validation_folder,
    predict_validation_cases,
)
from nnunetv2.training.logger import TrainingCurves, TrainingLogFile
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper, deep_supervision_weights
from nnunetv2.training.loss.factory import build_segmentation_loss
from nnunetv2.training.lr_schedule.poly import PolyLRScheduler
from nnunetv2.training.progress import epoch_iterations
from nnunetv2.training.pseudo_dice import dice_from_counts, hard_tp_fp_fn, mean_foreground_dice
from nnunetv2.training.run_environment import collect_debug_information
from nnunetv2.training.splits import train_val_cases
from nnunetv2.training.trainer_options import TrainerMeta, options_being_applied
from nnunetv2.utilities.compile import compile_network
from nnunetv2.utilities.file_io import save_json
from nnunetv2.utilities.memory_format import as_network_input, resolve_channels_last, set_network_memory_format
from nnunetv2.utilities.precision import resolve_cpu_bf16

logger = logging.getLogger(__name__)


def _to_device(x: torch.Tensor | list[torch.Tensor], device: torch.device) -> torch.Tensor | list[torch.Tensor]:
    if isinstance(x, (list, tuple)):
        return [t.to(device, non_blocking=True) for t in x]
    return x.to(device, non_blocking=True)


def _as_float32(output: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    """The network's output(s) in float32 (autocast leaves them in float16/bfloat16)."""
    if isinstance(output, (list, tuple)):
        return [o.float() for o in output]
    return output.float()


def _resolve_device(device: torch.device | str | None) -> torch.device:
    if isinstance(device, torch.device):
        return device
    from nnunetv2.utilities.device import resolve_device

    return resolve_device(device)


class nnUNetTrainer(metaclass=TrainerMeta):
    """Trains one fold of one configuration; files go to the fold folder of the model folder."""

    # nnU-Net v2's hyperparameters: a subclass sets them in __init__ (after super().__init__) or as class attributes
    num_epochs = 1000
    stop_after_epoch: int | None = None  # see TrainerOptions.stop_after_epoch
    num_iterations_per_epoch = 250
    num_val_iterations_per_epoch = 50
    initial_lr = 1e-2
    weight_decay = 3e-5
    oversample_foreground_percent = 0.33
    probabilistic_oversampling = False
    enable_deep_supervision = True
    save_every = 50  # checkpoint_latest interval in epochs
    disable_checkpointing = False
    # this package's settings
    momentum = 0.99
    nesterov = True
    grad_clip_norm = 12.0
    pseudo_dice_ema_momentum = 0.9
    # bfloat16 network on the CPU: ~2x faster steps; None follows default_cpu_bf16 (on where the CPU has it natively)
    cpu_bf16: bool | None = None
    # channels-last network and batches; None follows nnUNet_channels_last (default off: slower step, measured)
    channels_last: bool | None = None
    show_progress = True  # the bar inside each epoch (nnUNetv2_train --disable_progress_bar: False)
    seed: int | None = None
    num_data_workers: int | None = None  # None: nnUNet_n_proc_DA or a default from the CPU count

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int | str,
        dataset_json: dict,
        device: torch.device | str | None = None,
    ):
        options = options_being_applied()
        # nnU-Net v2's launcher passes this flag inside the plans; it is no plans key
        plans = {k: v for k, v in plans.items() if k != "continue_training"}
        self.device = _resolve_device(device)
        self.cpu_bf16 = resolve_cpu_bf16(self.cpu_bf16)
        self.channels_last = resolve_channels_last(self.channels_last, self.device, self.cpu_bf16)
        # stored in checkpoints as nnU-Net v2 does, so a checkpoint can rebuild its trainer (and run)
        self.init_args = {
            "plans": plans,
            "configuration": configuration,
            "fold": fold,
            "dataset_json": dataset_json,
            "device": self.device,
            "options": options.to_dict(),
        }
        self.dist = DistributedContext.current()
        self.is_ddp = self.dist.is_distributed
        self.local_rank = self.dist.rank
        self.plans_manager = Plans.from_dict(plans)
        self.configuration_name = configuration
        self.configuration_manager = self.plans_manager.configuration(configuration)
        self.dataset_json = dataset_json
        self.typed_dataset_json = DatasetJson.from_dict(dataset_json)
        self.label_manager = LabelManager.from_dataset_json(self.typed_dataset_json)
        self.fold = parse_fold(fold)
        previous_stage = self.configuration_manager.previous_stage_name
        self.is_cascaded = previous_stage is not None
        dataset_name, plans_name = self.plans_manager.dataset_name, self.plans_manager.plans_name
        # nnU-Net v2: the previous stage trained with the same trainer and plans left the cascade's input
        self.folder_with_segs_from_previous_stage = (
            next_stage_folder(
                model_folder(dataset_name, type(self).__name__, plans_name, previous_stage), configuration
            )
            if previous_stage is not None
            else None
        )
        self._set_folders(
            options.preprocessed_dataset_folder or paths.preprocessed_folder() / dataset_name,
            options.output_folder_base or model_folder(dataset_name, type(self).__name__, plans_name, configuration),
        )

        self.current_epoch = 0  # epochs completed, i.e. the next epoch to run
        self._best_ema: float | None = None
        self.logger = TrainingCurves(self.pseudo_dice_ema_momentum)
        self.inference_allowed_mirroring_axes: tuple[int, ...] | None = None
        # set by initialize(); typed Any because subclasses may put any module / optimizer here, as in nnU-Net v2
        self.num_input_channels: Any = None
        self.batch_size: Any = None
        self.network: Any = None
        self.optimizer: Any = None
        self.lr_scheduler: Any = None
        self.loss: Any = None
        # mixed precision only where it pays off and is well supported
        self.grad_scaler = torch.amp.GradScaler("cuda") if self.device.type == "cuda" else None
        self.dataloader_train: Any = None
        self.dataloader_val: Any = None
        # set by the launcher to time the first iterations (CPU thread trial); not part of the run's settings
        self.iteration_timer: Any = None
        self.was_initialized = False

    def _set_folders(self, preprocessed_dataset_folder_base: str | os.PathLike, output_folder_base: str | os.PathLike):
        """Set the preprocessed dataset folder (holding the data_identifier folder) and the model folder."""
        self.preprocessed_dataset_folder_base = Path(preprocessed_dataset_folder_base)
        self.preprocessed_dataset_folder = (
            self.preprocessed_dataset_folder_base / self.configuration_manager.data_identifier
        )
        self.output_folder_base = Path(output_folder_base)
        self.output_folder = fold_folder(self.output_folder_base, self.fold)
        # the log file appears at its first line; every run (training or --val) gets its own
        self.log_file = TrainingLogFile(self.output_folder, enabled=self.dist.is_main)

    @property
    def my_init_kwargs(self) -> dict[str, Any]:
        """Return the constructor arguments (nnU-Net v2's name of ``init_args``)."""
        return self.init_args

    # ----- set-up hooks -----

    def initialize(self) -> None:
        """Build network, optimiser, lr scheduler and loss through their hooks (once; later calls do nothing)."""
        if self.was_initialized:
            return
        if self.seed is not None:
            random.seed(self.seed)
            np.random.seed(self.seed % 2**32)
            torch.manual_seed(self.seed)
        self._set_batch_size_and_oversample()
        self.num_input_channels = self.typed_dataset_json.num_channels + (
            len(self.label_manager.foreground_labels) if self.is_cascaded else 0
        )
        as_configuration_plans(self.configuration_manager).check_patch_fits_network()
        self.network = self._build_network().to(self.device)
        self.channels_last = set_network_memory_format(self.network, bool(self.channels_last))
        compile_network(self.network, self.device, "training", self.print_to_log_file)
        self.optimizer, self.lr_scheduler = self.configure_optimizers()
        if self.is_ddp:
            from torch.nn.parallel import DistributedDataParallel

            self.network = DistributedDataParallel(
                nn.SyncBatchNorm.convert_sync_batchnorm(self.network),
                device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None,
            )
        self.loss = self._build_loss()
        self.was_initialized = True

    def _build_network(self) -> nn.Module:
        """Call ``build_network_architecture`` with nnU-Net v2's signature (or its older one)."""
        heads = self.label_manager.num_segmentation_heads
        if "plans_manager" in inspect.signature(self.build_network_architecture).parameters:
            return self.build_network_architecture(
                self.plans_manager, self.configuration_manager, self.num_input_channels, heads,
                self.enable_deep_supervision,
            )  # fmt: skip
        cm = self.configuration_manager
        older_signature: Any = self.build_network_architecture  # nnU-Net v2's older signature
        return older_signature(
            cm.network_arch_class_name, cm.network_arch_init_kwargs, cm.network_arch_init_kwargs_req_import,
            self.num_input_channels, heads, self.enable_deep_supervision,
        )  # fmt: skip

    def _set_batch_size_and_oversample(self) -> None:
        """Set this process' batch size and foreground oversampling (a DDP rank gets its share of the batch)."""
        self.batch_size, self.oversample_foreground_percent = split_batch(
            self.configuration_manager.batch_size, self.oversample_foreground_percent, self.dist.rank,
            self.dist.world_size,
        )  # fmt: skip

    @staticmethod
    def build_network_architecture(
        plans_manager: Plans,
        configuration_manager: ConfigurationPlans,
        num_input_channels: int,
        num_output_channels: int,
        enable_deep_supervision: bool = True,
    ) -> nn.Module:
        """Return the plans' network, He-initialised when the architecture provides that (also used to predict)."""
        from nnunetv2.architectures.network_builder import build_network

        network = build_network(
            configuration_manager.architecture, num_input_channels, num_output_channels, enable_deep_supervision
        )
        if hasattr(network, "initialize"):
            network.apply(network.initialize)
        return network

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, Any]:
        """Return (SGD with nnU-Net v2's momentum, Nesterov and weight decay, poly lr scheduler stepped per epoch)."""
        optimizer = torch.optim.SGD(
            self.network.parameters(),
            self.initial_lr,
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
        )
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    def _get_deep_supervision_scales(self) -> list[list[float]] | None:
        """Return the target scale of each supervised decoder output (None without deep supervision)."""
        if not self.enable_deep_supervision:
            return None
        dim = len(self.configuration_manager.patch_size)
        strides = self.configuration_manager.pool_op_kernel_sizes
        strides = [[s] * dim if isinstance(s, int) else list(s) for s in strides]
        return [list(map(float, s)) for s in 1 / np.cumprod(np.vstack(strides), axis=0)][:-1]

    def _build_loss(self) -> nn.Module:
        """Return Dice + (B)CE, wrapped for deep supervision."""
        scales = self._get_deep_supervision_scales()
        weights = None if scales is None else deep_supervision_weights(len(scales), self.is_ddp)
        return build_segmentation_loss(
            self.label_manager, self.configuration_manager.batch_dice, weights, distributed=self.is_ddp
        )

    def _wrap_for_deep_supervision(self, loss: nn.Module) -> nn.Module:
        """Return ``loss`` weighted over the decoder outputs as nnU-Net v2 does (unchanged without deep supervision)."""
        scales = self._get_deep_supervision_scales()
        if scales is None:
            return loss
        return DeepSupervisionWrapper(loss, deep_supervision_weights(len(scales), self.is_ddp))

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(
        self,
    ) -> tuple[tuple[float, float], bool, np.ndarray, tuple[int, ...] | None]:
        """Return (rotation range, dummy 2D augmentation, initial patch size, mirror axes); sets the mirror axes
        inference may use."""
        rotation, dummy_2d, initial, mirror_axes = (
            pipelines.configure_rotation_dummy_da_mirroring_and_initial_patch_size(
                self.configuration_manager.patch_size
            )
        )
        self.inference_allowed_mirroring_axes = mirror_axes
        return rotation, dummy_2d, np.array(initial, dtype=int), mirror_axes

    @staticmethod
    def get_training_transforms(
        patch_size: Any,
        rotation_for_DA: Any,
        deep_supervision_scales: Any,
        mirror_axes: tuple[int, ...] | None,
        do_dummy_2d_data_aug: bool,
        use_mask_for_norm: list[bool] | None = None,
        is_cascaded: bool = False,
        foreground_labels: Any = None,
        regions: Any = None,
        ignore_label: int | None = None,
    ):
        """Return nnU-Net v2's training augmentation as one composed batchgeneratorsv2 transform."""
        return pipelines.get_training_transforms(
            patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
            use_mask_for_norm, is_cascaded, foreground_labels, regions, ignore_label,
        )  # fmt: skip

    @staticmethod
    def get_validation_transforms(
        deep_supervision_scales: Any,
        is_cascaded: bool = False,
        foreground_labels: Any = None,
        regions: Any = None,
        ignore_label: int | None = None,
    ):
        """Return the validation transforms: only the label conversions, no augmentation."""
        return pipelines.get_validation_transforms(
            deep_supervision_scales, is_cascaded, foreground_labels, regions, ignore_label
        )

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        """Switch the decoder between all outputs (training) and the full-resolution one (inference)."""
        decoder = getattr(self.unwrapped_network(), "decoder", None)
        if decoder is not None and hasattr(decoder, "deep_supervision"):
            decoder.deep_supervision = enabled

    def unwrapped_network(self) -> Any:
        """Return the network without its DDP wrapper."""
        return self.network.module if hasattr(self.network, "module") else self.network

    def do_split(self) -> tuple[list[str], list[str]]:
        """Return (training, validation) case ids of this fold; rank 0 creates splits_final.json if needed."""
        if not self.preprocessed_dataset_folder.is_dir():
            raise TrainingError(
                f"{self.preprocessed_dataset_folder}: preprocessed data of configuration "
                f"'{self.configuration_name}' not found (run nnUNetv2_preprocess)"
            )
        cases = list_complete_preprocessed_cases(self.preprocessed_dataset_folder)  # an unfinished run: refused
        if not self.dist.is_main:
            self.dist.barrier()
        split = train_val_cases(self.preprocessed_dataset_folder_base, cases, self.fold)
        if self.dist.is_main:
            self.dist.barrier()
        return split

    def get_tr_and_val_datasets(self) -> tuple[PreprocessedCases, PreprocessedCases]:
        """Return the training and validation cases of this fold (folder, identifiers, previous-stage folder)."""
        tr_keys, val_keys = self.do_split()
        previous = self.folder_with_segs_from_previous_stage
        return (
            PreprocessedCases(self.preprocessed_dataset_folder, list(tr_keys), previous),
            PreprocessedCases(self.preprocessed_dataset_folder, list(val_keys), previous),
        )

    def get_dataloaders(self) -> tuple[Any, Any]:
        """Return the endless (training, validation) batch iterators of this rank."""
        return self._make_dataloaders()

    def _make_dataloaders(self, make_loader: Any = None) -> tuple[Any, Any]:
        """Build the batch iterators from the augmentation and dataset hooks; ``make_loader`` replaces the loader
        class (same arguments as NnUNetDataLoader)."""
        from nnunetv2.training.dataloading.background_loader import default_num_workers

        if self.batch_size is None:
            self._set_batch_size_and_oversample()
        if self.num_data_workers is None:
            self.num_data_workers = default_num_workers()
        patch_size = list(self.configuration_manager.patch_size)
        scales = self._get_deep_supervision_scales()
        rotation, dummy_2d, initial_patch_size, mirror_axes = (
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        )
        label_kwargs: dict[str, Any] = dict(
            is_cascaded=self.is_cascaded,
            foreground_labels=self.label_manager.foreground_labels,
            regions=self.label_manager.foreground_regions if self.label_manager.has_regions else None,
            ignore_label=self.label_manager.ignore_label,
        )
        train_transforms = self.get_training_transforms(
            patch_size, rotation, scales, mirror_axes, dummy_2d,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm, **label_kwargs,
        )  # fmt: skip
        val_transforms = self.get_validation_transforms(scales, **label_kwargs)
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        num_tr, num_val = len(dataset_tr.identifiers), len(dataset_val.identifiers)
        self.print_to_log_file(f"fold {self.fold}: {num_tr} training / {num_val} validation cases")
        return build_batch_streams(
            dataset_tr, dataset_val, [int(p) for p in initial_patch_size], patch_size, train_transforms,
            val_transforms, self.label_manager, self.batch_size, self.oversample_foreground_percent,
            int(self.num_data_workers), seed=derive_seed(self.seed, self.dist.rank, self.current_epoch),
            pin_memory=self.device.type == "cuda", probabilistic_oversampling=self.probabilistic_oversampling,
            make_loader=make_loader,
        )  # fmt: skip

    def _autocast(self) -> contextlib.AbstractContextManager:
        from nnunetv2.utilities.precision import network_autocast

        return network_autocast(self.device, bool(self.cpu_bf16))  # resolved to a bool in __init__

    def print_to_log_file(self, *args: Any, also_print_to_console: bool = True, add_timestamp: bool = True) -> None:
        """Append ``args`` (joined by spaces) to the training log and to ``logging`` (rank 0 only)."""
        self.log_file.write(" ".join(str(a) for a in args))

    def print_plans(self) -> None:
        """Write the configuration this run trains to the training log."""
        self.print_to_log_file(f"configuration '{self.configuration_name}':", self.configuration_manager.to_dict())

    def on_train_start(self) -> None:
        """Initialise, build the batch iterators, write plans/dataset.json/debug.json and log the run."""
        self.initialize()
        self.dataloader_train, self.dataloader_val = self.get_dataloaders()
        self.set_deep_supervision_enabled(self.enable_deep_supervision)
        if self.dist.is_main:
            self.output_folder.mkdir(parents=True, exist_ok=True)
            remove_unfinished_writes(self.output_folder)
            write_model_folder_files(
                self.output_folder_base, self.plans_manager, self.typed_dataset_json,
                self.preprocessed_dataset_folder_base,
            )  # fmt: skip
            save_json(collect_debug_information(self), self.output_folder / "debug.json", sort_keys=True)
        self.print_to_log_file(
            f"{type(self).__name__}: {self.plans_manager.dataset_name} {self.configuration_name} fold {self.fold}, "
            f"device {self.device}{f' x {self.dist.world_size} processes' if self.is_ddp else ''}, batch size "
            f"{self.configuration_manager.batch_size}, patch {self.configuration_manager.patch_size}, epochs "
            f"{self.current_epoch}->{self.num_epochs}, {self.num_data_workers} augmentation worker(s) per process"
        )
        if self.is_cascaded:
            self.print_to_log_file(
                f"cascade stage: the segmentations of '{self.configuration_manager.previous_stage}' in "
                f"{self.folder_with_segs_from_previous_stage} are extra input channels"
            )

    # ----- one epoch -----

    def on_epoch_start(self) -> None:
        """Record the epoch's start time."""
        self.logger.log("epoch_start_timestamps", time.time(), self.current_epoch)

    def on_train_epoch_start(self) -> None:
        """Switch to training mode and set (and log) this epoch's learning rate."""
        self.network.train()
        with warnings.catch_warnings():
            # torch's own schedulers (e.g. CosineAnnealingLR) warn about the epoch argument nnU-Net v2's contract uses
            warnings.filterwarnings("ignore", message=r".*(epoch parameter|lr_scheduler.step\(\)` before).*")
            self.lr_scheduler.step(self.current_epoch)
        self.logger.log("lrs", self.optimizer.param_groups[0]["lr"], self.current_epoch)

    def train_step(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run one optimiser step on a batch; return ``{'loss': ...}``."""
        data = as_network_input(batch["data"].to(self.device, non_blocking=True), bool(self.channels_last))
        target = _to_device(batch["target"], self.device)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            output = self.network(data)
        loss = self.loss(_as_float32(output), target)  # the loss in float32 whatever the network's precision
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip_norm)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip_norm)
            self.optimizer.step()
        return {"loss": loss.detach().cpu().numpy()}

    def on_train_epoch_end(self, train_outputs: list[dict[str, Any]]) -> None:
        """Log the epoch's mean training loss (over all ranks)."""
        loss = float(np.mean([np.mean(o["loss"]) for o in train_outputs]))
        self.logger.log("train_losses", self.dist.mean_over_ranks(loss), self.current_epoch)

    def on_validation_epoch_start(self) -> None:
        """Switch to evaluation mode."""
        self.network.eval()

    def validation_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Return ``{'loss', 'tp_hard', 'fp_hard', 'fn_hard'}`` of a batch; counts on the full-resolution output."""
        data = as_network_input(batch["data"].to(self.device, non_blocking=True), bool(self.channels_last))
        target = _to_device(batch["target"], self.device)
        with torch.no_grad():
            with self._autocast():
                output = self.network(data)
            output = _as_float32(output)
            loss = self.loss(output, target)
        if isinstance(output, (list, tuple)):
            output, target = output[0], target[0]
        tp, fp, fn = hard_tp_fp_fn(output, target, self.label_manager)  # type: ignore[arg-type]
        return {"loss": loss.detach().cpu().numpy(), "tp_hard": tp, "fp_hard": fp, "fn_hard": fn}

    def on_validation_epoch_end(self, val_outputs: list[dict[str, Any]]) -> None:
        """Sum the counts over batches and ranks; log pseudo Dice per class, its mean and the validation loss."""
        tp, fp, fn = (
            self.dist.sum_over_ranks(np.sum([o[key] for o in val_outputs], axis=0))
            for key in ("tp_hard", "fp_hard", "fn_hard")
        )
        val_loss = self.dist.mean_over_ranks(float(np.mean([np.mean(o["loss"]) for o in val_outputs])))
        dice = dice_from_counts(tp, fp, fn)
        self.logger.log("mean_fg_dice", mean_foreground_dice(dice), self.current_epoch)
        self.logger.log("dice_per_class_or_region", dice.tolist(), self.current_epoch)
        self.logger.log("val_losses", val_loss, self.current_epoch)

    def on_epoch_end(self) -> None:
        """Report the epoch, keep checkpoint_best / checkpoint_latest, redraw progress.png, count the epoch."""
        epoch = self.current_epoch
        self.logger.log("epoch_end_timestamps", time.time(), epoch)
        names = label_names(self.typed_dataset_json.labels, self.label_manager.foreground_labels_or_regions)
        message = self.logger.epoch_summary(epoch, self.num_epochs, names)
        ema = self.logger.get_value("ema_fg_dice", epoch)
        new_best = self._best_ema is None or (
            not math.isnan(ema) and (math.isnan(self._best_ema) or ema > self._best_ema)
        )
        if new_best:
            self._best_ema = ema
            message += f"; new best EMA pseudo Dice {ema:.4f}"
        # logged before the checkpoints are written: the log of a killed run lists every epoch its checkpoints hold
        self.print_to_log_file(message)
        if new_best:
            self.save_checkpoint(self.output_folder / "checkpoint_best.pth")
        if (epoch + 1) % self.save_every == 0 and epoch != self.num_epochs - 1:
            self.save_checkpoint(self.output_folder / "checkpoint_latest.pth")
        if self.dist.is_main:
            self.logger.plot_progress_png(self.output_folder)
        self.current_epoch += 1

    def _next_train_step(self) -> dict[str, Any]:
        """Train on the next batch; an ``iteration_timer`` (set by the launcher) times it, batch waiting included."""
        timer = self.iteration_timer
        if timer is None:
            return self.train_step(next(self.dataloader_train))
        timer.before_iteration()
        start = time.perf_counter()
        output = self.train_step(next(self.dataloader_train))
        decision = timer.after_iteration(time.perf_counter() - start)
        if decision is not None:
            self.print_to_log_file(decision)
            self.iteration_timer = None
        return output

    def run_training(self) -> None:
        """Train from ``current_epoch`` to ``num_epochs`` through the hooks, in nnU-Net v2's order."""
        self.on_train_start()
        try:
            last = self.num_epochs if self.stop_after_epoch is None else min(self.stop_after_epoch, self.num_epochs)
            for _ in range(self.current_epoch, last):
                self.on_epoch_start()
                self.on_train_epoch_start()
                train_outputs = [self._next_train_step() for _ in epoch_iterations(self, self.current_epoch)]
                self.on_train_epoch_end(train_outputs)
                with torch.no_grad():
                    self.on_validation_epoch_start()
                    val_outputs = [
                        self.validation_step(next(self.dataloader_val))
                        for _ in range(self.num_val_iterations_per_epoch)
                    ]
                    self.on_validation_epoch_end(val_outputs)
                self.on_epoch_end()
        except BaseException:
            self._close_dataloaders()
            raise
        self.on_train_end()

    def on_train_end(self) -> None:
        """Save checkpoint_final (and checkpoint_latest), stop the batch workers, check DDP ranks agree."""
        # current_epoch already counts the last epoch; a checkpoint stores current_epoch + 1
        self.current_epoch -= 1
        self.save_checkpoint(self.output_folder / "checkpoint_final.pth")
        self.save_checkpoint(self.output_folder / "checkpoint_latest.pth")
        self.current_epoch += 1
        self._close_dataloaders()
        if self.is_ddp:
            checksum = float(sum(p.double().sum() for p in self.unwrapped_network().state_dict().values()))
            checksums = self.dist.gather_objects(checksum)
            if len(set(checksums)) != 1:
                raise TrainingError(f"DDP ranks ended with different network weights (checksums {checksums})")
            self.print_to_log_file(
                f"network weights identical on all {self.dist.world_size} ranks (checksum {checksum:.6f})"
            )
        self.print_to_log_file(f"training done after {self.current_epoch} epochs")

    def _close_dataloaders(self) -> None:
        """Stop the augmentation workers (safe to call twice)."""
        for name in ("dataloader_train", "dataloader_val"):
            loader = getattr(self, name)
            if loader is not None and hasattr(loader, "close"):
                loader.close()
            setattr(self, name, None)

    # ----- checkpoints -----

    def save_checkpoint(self, filename: str | os.PathLike) -> None:
        """Write a checkpoint with nnU-Net v2's keys (rank 0 only); a bare file name goes into the fold folder.

        As in nnU-Net v2 it records ``current_epoch + 1`` epochs done (it is called before the epoch is counted).
        """
        if self.disable_checkpointing or not self.dist.is_main:
            return
        path = Path(filename)
        if path.parent == Path("."):
            path = self.output_folder / path
        save_checkpoint_file(
            {
                "network_weights": self.unwrapped_network().state_dict(),
                "optimizer_state": self.optimizer.state_dict(),
                "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
                "logging": self.logger.get_checkpoint(),
                "_best_ema": self._best_ema,
                "current_epoch": self.current_epoch + 1,
                "init_args": self.init_args,
                "trainer_name": type(self).__name__,
                "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
            },
            path,
        )

    def load_checkpoint(self, filename_or_checkpoint: str | os.PathLike | dict[str, Any]) -> None:
        """Restore network, optimiser, scaler, curves and epoch from a checkpoint file or dict."""
        checkpoint = filename_or_checkpoint
        source = "checkpoint" if isinstance(checkpoint, dict) else str(checkpoint)
        if not isinstance(checkpoint, dict):
            checkpoint = read_training_checkpoint(checkpoint, map_location=self.device)
        self.initialize()
        try:
            self.unwrapped_network().load_state_dict(unwrap_state_dict(checkpoint["network_weights"]))
        except RuntimeError:
            raise TrainingError(
                f"{source}: its network does not fit configuration '{self.configuration_name}' of these plans"
            ) from None
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.grad_scaler is not None and checkpoint["grad_scaler_state"] is not None:
            self.grad_scaler.load_state_dict(checkpoint["grad_scaler_state"])
        self.current_epoch = int(checkpoint["current_epoch"])
        self.logger.load_checkpoint(checkpoint["logging"], self.current_epoch)
        self._best_ema = checkpoint["_best_ema"]
        axes = checkpoint["inference_allowed_mirroring_axes"]
        self.inference_allowed_mirroring_axes = tuple(axes) if axes is not None else None

    # ----- final validation -----

    def perform_actual_validation(self, save_probabilities: bool = False) -> dict[str, Any] | None:
        """Predict the fold's validation cases into ``validation/`` and score them; returns the summary on rank 0."""
        self.initialize()
        _, val_cases = self.do_split()
        validation_folder = self.output_folder / VALIDATION_FOLDER_NAME
        self.set_deep_supervision_enabled(False)
        self.network.eval()
        try:
            predict_validation_cases(
                self.unwrapped_network(),
                val_cases,
                self.preprocessed_dataset_folder,
                validation_folder,
                self.plans_manager,
                self.configuration_manager,
                self.typed_dataset_json,
                self.inference_allowed_mirroring_axes,
                self.device,
                save_probabilities,
                self.dist,
                model_folder_path=self.output_folder_base,
                previous_stage_folder=self.folder_with_segs_from_previous_stage,
            )
        finally:
            self.set_deep_supervision_enabled(self.enable_deep_supervision)
        if not self.dist.is_main:
            return None
        summary = evaluate_validation_folder(
            validation_folder,
            self.preprocessed_dataset_folder_base / "gt_segmentations",
            self.plans_manager,
            self.typed_dataset_json,
        )
        self.logger.log_summary("final_val/foreground_dice", summary["foreground_mean"]["Dice"])
        self.print_to_log_file(
            f"final validation of {len(val_cases)} cases: mean foreground Dice {summary['foreground_mean']['Dice']:.4f}"
        )
        return summary
