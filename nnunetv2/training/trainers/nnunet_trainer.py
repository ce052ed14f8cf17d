"""nnUNetTrainer: nnU-Net v2's default training, wired from loss, LR schedule, batch streams, checkpoints and logs.

Variants are subclasses that change class attributes or override one ``build_*`` / ``configure_*``
method; ``-tr NAME`` finds them by class name.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from nnunetv2 import paths
from nnunetv2.dataset.label_manager import LabelManager, label_names
from nnunetv2.dataset.preprocessed_case import list_preprocessed_cases
from nnunetv2.dataset.previous_stage import next_stage_folder
from nnunetv2.exceptions import PlansError, TrainingError
from nnunetv2.formats.checkpoint_io import unwrap_state_dict
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.folds import parse_fold
from nnunetv2.formats.model_folder import fold_folder, model_folder, remove_unfinished_writes, write_model_folder_files
from nnunetv2.formats.plans import Plans
from nnunetv2.training.checkpointing import read_training_checkpoint, save_checkpoint_file
from nnunetv2.training.data_pipeline import BatchStreams, build_batch_streams, derive_seed
from nnunetv2.training.ddp import DistributedContext, split_batch
from nnunetv2.training.final_validation import (
    VALIDATION_FOLDER_NAME,
    evaluate_validation_folder,
    predict_validation_cases,
)
from nnunetv2.training.logger import TrainingCurves, TrainingLogFile
from nnunetv2.training.loss.deep_supervision import deep_supervision_weights
from nnunetv2.training.loss.factory import build_segmentation_loss
from nnunetv2.training.lr_schedule.poly import PolyLRSchedule
from nnunetv2.training.progress import epoch_iterations
from nnunetv2.training.progress_plot import plot_progress
from nnunetv2.training.pseudo_dice import dice_from_counts, hard_tp_fp_fn, mean_foreground_dice
from nnunetv2.training.run_environment import (
    CpuThreadTrial,
    collect_debug_information,
    cpu_threads_beside_workers,
    cpu_threads_without_workers,
)
from nnunetv2.training.splits import train_val_cases
from nnunetv2.utilities.file_io import save_json

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


class nnUNetTrainer:
    """Trains one fold of one configuration; files go to the fold folder of the model folder."""

    num_epochs = 1000
    num_iterations_per_epoch = 250
    num_val_iterations_per_epoch = 50
    initial_lr = 1e-2
    weight_decay = 3e-5
    momentum = 0.99
    nesterov = True
    oversample_foreground_percent = 0.33
    enable_deep_supervision = True
    save_every = 50  # checkpoint_latest interval in epochs
    grad_clip_norm = 12.0
    poly_lr_exponent = 0.9
    pseudo_dice_ema_momentum = 0.9
    disable_checkpointing = False
    # bfloat16 network on the CPU (--bf16): ~2x faster steps where the CPU has native bfloat16
    cpu_bf16 = False

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int | str,
        dataset_json: dict,
        device: torch.device | str | None = None,
    ):
        from nnunetv2.utilities.device import resolve_device

        device = torch.device(device) if isinstance(device, torch.device) else resolve_device(device)
        # stored in checkpoints as nnU-Net v2 does, so a checkpoint can rebuild its trainer
        self.init_args = {
            "plans": plans,
            "configuration": configuration,
            "fold": fold,
            "dataset_json": dataset_json,
            "device": device,
        }
        self.plans = Plans.from_dict(plans)
        self.configuration_name = configuration
        self.configuration = self.plans.configuration(configuration)
        self.dataset_json = DatasetJson.from_dict(dataset_json)
        self.label_manager = LabelManager.from_dataset_json(self.dataset_json)
        self.fold = parse_fold(fold)
        self.device = device
        self.dist = DistributedContext.current()
        self.seed: int | None = None
        self.num_data_workers: int | None = None  # None: the augmentation default
        self.is_cascaded = self.configuration.previous_stage is not None

        self.preprocessed_dataset_folder = paths.preprocessed_folder() / self.plans.dataset_name
        self.preprocessed_data_folder = self.preprocessed_dataset_folder / self.configuration.data_identifier
        self.output_folder_base = model_folder(
            self.plans.dataset_name, type(self).__name__, self.plans.plans_name, configuration
        )
        self.output_folder = fold_folder(self.output_folder_base, self.fold)
        # nnU-Net v2: the previous stage trained with the same trainer and plans left the cascade's input
        self.folder_with_segs_from_previous_stage = (
            next_stage_folder(
                model_folder(
                    self.plans.dataset_name,
                    type(self).__name__,
                    self.plans.plans_name,
                    self.configuration.previous_stage,
                ),
                configuration,
            )
            if self.is_cascaded
            else None
        )

        self.current_epoch = 0  # epochs completed, i.e. the next epoch to run
        self._best_ema: float | None = None
        self._thread_trial: CpuThreadTrial | None = None  # set at the start of a CPU run when worth trying
        self.curves = TrainingCurves(self.pseudo_dice_ema_momentum)
        # the log file appears at its first line; every run (training or --val) gets its own
        self.log_file = TrainingLogFile(self.output_folder, enabled=self.dist.is_main)
        self.inference_allowed_mirroring_axes: tuple[int, ...] | None = None
        self.network: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.grad_scaler: torch.amp.GradScaler | None = None
        self.loss: nn.Module | None = None
        self.lr_schedule: Callable[[int], float] | None = None
        self.batches: BatchStreams | None = None
        self.was_initialized = False

    # ----- the parts; a variant overrides one of these -----

    def build_network_architecture(self) -> nn.Module:
        """Return the plans' network, He-initialised when the architecture provides that."""
        from nnunetv2.architectures.network_builder import build_network

        num_inputs = self.dataset_json.num_channels + (
            len(self.label_manager.foreground_labels) if self.is_cascaded else 0
        )
        network = build_network(
            self.configuration.architecture,
            num_inputs,
            self.label_manager.num_segmentation_heads,
            self.enable_deep_supervision,
        )
        if hasattr(network, "initialize"):
            network.apply(network.initialize)
        return network

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Return SGD with nnU-Net v2's momentum, Nesterov and weight decay."""
        return torch.optim.SGD(
            self.network.parameters(),
            self.initial_lr,
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
        )

    def configure_lr_schedule(self) -> Callable[[int], float]:
        """Return the epoch -> learning rate schedule (poly decay)."""
        return PolyLRSchedule(self.initial_lr, self.num_epochs, self.poly_lr_exponent)

    def deep_supervision_scales(self) -> list[list[float]] | None:
        """Return the target scale of each supervised decoder output (None without deep supervision)."""
        if not self.enable_deep_supervision:
            return None
        strides = self.configuration.architecture.arch_kwargs.get("strides")
        if strides is None:
            raise PlansError(f"configuration '{self.configuration_name}': the architecture has no 'strides'")
        dim = len(self.configuration.patch_size)
        strides = [[s] * dim if isinstance(s, int) else list(s) for s in strides]
        return [list(map(float, s)) for s in 1 / np.cumprod(np.vstack(strides), axis=0)][:-1]

    def build_loss(self) -> nn.Module:
        """Return Dice + (B)CE, wrapped for deep supervision."""
        scales = self.deep_supervision_scales()
        weights = None if scales is None else deep_supervision_weights(len(scales), self.dist.is_distributed)
        return build_segmentation_loss(
            self.label_manager, self.configuration.batch_dice, weights, distributed=self.dist.is_distributed
        )

    def build_batch_streams(self, train_cases: list[str], val_cases: list[str]) -> BatchStreams:
        """Return the training and validation batch streams of this rank."""
        batch_size, oversample = split_batch(
            self.configuration.batch_size, self.oversample_foreground_percent, self.dist.rank, self.dist.world_size
        )
        return build_batch_streams(
            self.preprocessed_data_folder,
            train_cases,
            val_cases,
            self.configuration,
            self.label_manager,
            batch_size,
            oversample,
            self.deep_supervision_scales(),
            self.num_data_workers,
            seed=derive_seed(self.seed, self.dist.rank, self.current_epoch),
            pin_memory=self.device.type == "cuda",
            previous_stage_folder=self.folder_with_segs_from_previous_stage,
        )

    # ----- set-up -----

    def initialize(self) -> None:
        """Build network, optimiser, grad scaler, loss and LR schedule (once)."""
        if self.was_initialized:
            return
        if self.seed is not None:
            random.seed(self.seed)
            np.random.seed(self.seed % 2**32)
            torch.manual_seed(self.seed)
        self.network = self.build_network_architecture().to(self.device)
        self.optimizer = self.configure_optimizers()
        if self.dist.is_distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.network = DistributedDataParallel(
                self.network, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None
            )
        self.lr_schedule = self.configure_lr_schedule()
        # mixed precision only where it pays off and is well supported
        self.grad_scaler = torch.amp.GradScaler("cuda") if self.device.type == "cuda" else None
        self.loss = self.build_loss()
        self.was_initialized = True

    def unwrapped_network(self) -> nn.Module:
        """Return the network without its DDP wrapper."""
        return self.network.module if hasattr(self.network, "module") else self.network

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        """Switch the decoder between all outputs (training) and the full-resolution one (inference)."""
        decoder = getattr(self.unwrapped_network(), "decoder", None)
        if decoder is not None and hasattr(decoder, "deep_supervision"):
            decoder.deep_supervision = enabled

    def split_cases(self) -> tuple[list[str], list[str]]:
        """Return (training, validation) case ids of this fold; rank 0 creates splits_final.json if needed."""
        if not self.preprocessed_data_folder.is_dir():
            raise TrainingError(
                f"{self.preprocessed_data_folder}: preprocessed data of configuration "
                f"'{self.configuration_name}' not found (run nnUNetv2_preprocess)"
            )
        cases = list_preprocessed_cases(self.preprocessed_data_folder)
        if not self.dist.is_main:
            self.dist.barrier()
        split = train_val_cases(self.preprocessed_dataset_folder, cases, self.fold)
        if self.dist.is_main:
            self.dist.barrier()
        return split

    def _autocast(self) -> contextlib.AbstractContextManager:
        from nnunetv2.utilities.precision import network_autocast

        return network_autocast(self.device, self.cpu_bf16)

    def on_train_start(self) -> None:
        """Prepare everything an epoch needs and record the run's settings."""
        if self.num_data_workers is None:
            from nnunetv2.training.dataloading.background_loader import default_num_workers

            self.num_data_workers = default_num_workers()
        threads_reason = ""
        if self.device.type == "cpu":
            threads, threads_reason = cpu_threads_beside_workers(
                self.num_data_workers, self.dist.world_size, consider_load=self.seed is None
            )
            torch.set_num_threads(threads)
            # unseeded single-process runs time both choices (seeded ones keep one rule, to stay repeatable)
            more = cpu_threads_without_workers(self.dist.world_size)
            if (
                self.seed is None
                and not self.dist.is_distributed
                and not os.environ.get("OMP_NUM_THREADS")
                and more > threads
            ):
                self._thread_trial = CpuThreadTrial([threads, more])
                threads_reason += f"; {more} will be tried on the first iterations"
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.initialize()
        train_cases, val_cases = self.split_cases()
        self.batches = self.build_batch_streams(train_cases, val_cases)
        self.inference_allowed_mirroring_axes = self.batches.mirror_axes
        if self.dist.is_main:
            self.output_folder.mkdir(parents=True, exist_ok=True)
            remove_unfinished_writes(self.output_folder)
            write_model_folder_files(
                self.output_folder_base, self.plans, self.dataset_json, self.preprocessed_dataset_folder
            )
            save_json(collect_debug_information(self), self.output_folder / "debug.json", sort_keys=True)
        self.log_file.write(
            f"{type(self).__name__}: {self.plans.dataset_name} {self.configuration_name} fold {self.fold}, "
            f"{len(train_cases)} training / {len(val_cases)} validation cases, device {self.device}"
            f"{f' x {self.dist.world_size} processes' if self.dist.is_distributed else ''}, batch size "
            f"{self.configuration.batch_size}, patch {self.configuration.patch_size}, epochs "
            f"{self.current_epoch}->{self.num_epochs}"
        )
        if self.is_cascaded:
            self.log_file.write(
                f"cascade stage: the segmentations of '{self.configuration.previous_stage}' in "
                f"{self.folder_with_segs_from_previous_stage} are extra input channels"
            )
        if self.device.type == "cpu":
            self.log_file.write(
                f"CPU training: {torch.get_num_threads()} torch thread(s) beside "
                f"{self.num_data_workers} augmentation worker(s) ({threads_reason})"
            )
        else:
            self.log_file.write(f"{self.num_data_workers} augmentation worker(s) per process")

    # ----- one epoch -----

    def train_step(self, batch: dict[str, Any]) -> float:
        """Run one optimiser step on a batch; return its loss."""
        data = batch["data"].to(self.device, non_blocking=True)
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
        return float(loss.detach().cpu())

    def validation_step(self, batch: dict[str, Any]) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Return (loss, tp, fp, fn) of a validation batch; counts on the full-resolution output."""
        data = batch["data"].to(self.device, non_blocking=True)
        target = _to_device(batch["target"], self.device)
        with torch.no_grad():
            with self._autocast():
                output = self.network(data)
            output = _as_float32(output)
            loss = self.loss(output, target)
        if isinstance(output, (list, tuple)):
            output, target = output[0], target[0]
        return (float(loss.cpu()), *hard_tp_fp_fn(output, target, self.label_manager))

    def run_epoch(self) -> None:
        """Train ``num_iterations_per_epoch`` batches, validate, log, and save checkpoints when due."""
        epoch = self.current_epoch
        self.curves.log("epoch_start_timestamps", time.time(), epoch)
        lr = self.lr_schedule(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.curves.log("lrs", lr, epoch)

        self.network.train()
        losses = [self.train_iteration() for _ in epoch_iterations(self, epoch)]
        self.curves.log("train_losses", self.dist.mean_over_ranks(float(np.mean(losses))), epoch)

        self.network.eval()
        results = [self.validation_step(next(self.batches.val)) for _ in range(self.num_val_iterations_per_epoch)]
        val_loss = self.dist.mean_over_ranks(float(np.mean([r[0] for r in results])))
        tp, fp, fn = (self.dist.sum_over_ranks(np.sum([r[i] for r in results], axis=0)) for i in (1, 2, 3))
        dice = dice_from_counts(tp, fp, fn)
        self.curves.log("val_losses", val_loss, epoch)
        self.curves.log("dice_per_class_or_region", dice.tolist(), epoch)
        self.curves.log("mean_fg_dice", mean_foreground_dice(dice), epoch)
        self.curves.log("epoch_end_timestamps", time.time(), epoch)
        self.on_epoch_end()

    @property
    def cpu_thread_trial_running(self) -> bool:
        """True until the CPU thread trial of this run (if any) has chosen the thread count."""
        return self._thread_trial is not None

    def train_iteration(self) -> float:
        """Train on the next batch; return the loss. During a CPU thread trial the iteration is timed (waiting for
        the batch included)."""
        trial = self._thread_trial
        if trial is None:
            return self.train_step(next(self.batches.train))
        trial.before_iteration()
        start = time.perf_counter()
        loss = self.train_step(next(self.batches.train))
        decision = trial.after_iteration(time.perf_counter() - start)
        if decision is not None:
            self.log_file.write(decision)
            self._thread_trial = None
        return loss

    def on_epoch_end(self) -> None:
        """Report the epoch, keep checkpoint_best / checkpoint_latest, redraw progress.png."""
        epoch = self.current_epoch
        names = label_names(self.dataset_json.labels, self.label_manager.foreground_labels_or_regions)
        message = self.curves.epoch_summary(epoch, self.num_epochs, names)
        ema = self.curves.values["ema_fg_dice"][epoch]
        new_best = self._best_ema is None or (
            not math.isnan(ema) and (math.isnan(self._best_ema) or ema > self._best_ema)
        )
        if new_best:
            self._best_ema = ema
            message += f"; new best EMA pseudo Dice {ema:.4f}"
        # logged before the checkpoints are written: the log of a killed run lists every epoch its checkpoints hold
        self.log_file.write(message)
        if new_best:
            self.save_checkpoint("checkpoint_best.pth", epochs_done=epoch + 1)
        if (epoch + 1) % self.save_every == 0 and epoch != self.num_epochs - 1:
            self.save_checkpoint("checkpoint_latest.pth", epochs_done=epoch + 1)
        if self.dist.is_main:
            plot_progress(self.curves.get_checkpoint(), self.output_folder / "progress.png")
        self.current_epoch += 1

    def run_training(self) -> None:
        """Train from ``current_epoch`` to ``num_epochs`` and save checkpoint_final."""
        self.on_train_start()
        try:
            while self.current_epoch < self.num_epochs:
                self.run_epoch()
        finally:
            self.close_batch_streams()
        self.on_train_end()

    def on_train_end(self) -> None:
        """Save checkpoint_final (and checkpoint_latest) and check DDP ranks agree on the weights."""
        self.save_checkpoint("checkpoint_final.pth", epochs_done=self.current_epoch)
        self.save_checkpoint("checkpoint_latest.pth", epochs_done=self.current_epoch)
        if self.dist.is_distributed:
            checksum = float(sum(p.double().sum() for p in self.unwrapped_network().state_dict().values()))
            checksums = self.dist.gather_objects(checksum)
            if len(set(checksums)) != 1:
                raise TrainingError(f"DDP ranks ended with different network weights (checksums {checksums})")
            self.log_file.write(
                f"network weights identical on all {self.dist.world_size} ranks (checksum {checksum:.6f})"
            )
        self.log_file.write(f"training done after {self.current_epoch} epochs")

    def close_batch_streams(self) -> None:
        """Stop the augmentation workers."""
        if self.batches is not None:
            self.batches.train.close()
            self.batches.val.close()
            self.batches = None

    # ----- checkpoints -----

    def save_checkpoint(self, filename: str, epochs_done: int) -> None:
        """Write a checkpoint with nnU-Net v2's keys into the fold folder (rank 0 only)."""
        if self.disable_checkpointing or not self.dist.is_main:
            return
        save_checkpoint_file(
            {
                "network_weights": self.unwrapped_network().state_dict(),
                "optimizer_state": self.optimizer.state_dict(),
                "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
                "logging": self.curves.get_checkpoint(),
                "_best_ema": self._best_ema,
                "current_epoch": epochs_done,
                "init_args": self.init_args,
                "trainer_name": type(self).__name__,
                "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
            },
            self.output_folder / filename,
        )

    def load_checkpoint(self, checkpoint: str | os.PathLike | dict[str, Any]) -> None:
        """Restore network, optimiser, scaler, curves and epoch from a checkpoint file or dict."""
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
        self.curves.load_checkpoint(checkpoint["logging"], self.current_epoch)
        self._best_ema = checkpoint["_best_ema"]
        axes = checkpoint["inference_allowed_mirroring_axes"]
        self.inference_allowed_mirroring_axes = tuple(axes) if axes is not None else None

    # ----- final validation -----

    def perform_actual_validation(self, save_probabilities: bool = False) -> dict[str, Any] | None:
        """Predict the fold's validation cases into ``validation/`` and score them; returns the summary on rank 0."""
        self.initialize()
        _, val_cases = self.split_cases()
        validation_folder = self.output_folder / VALIDATION_FOLDER_NAME
        self.set_deep_supervision_enabled(False)
        try:
            predict_validation_cases(
                self.unwrapped_network(),
                val_cases,
                self.preprocessed_data_folder,
                validation_folder,
                self.plans,
                self.configuration,
                self.dataset_json,
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
            validation_folder, self.preprocessed_dataset_folder / "gt_segmentations", self.plans, self.dataset_json
        )
        self.log_file.write(
            f"final validation of {len(val_cases)} cases: mean foreground Dice {summary['foreground_mean']['Dice']:.4f}"
        )
        return summary
