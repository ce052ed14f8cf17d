"""nnU-Net v2's benchmarking trainers: 5 epochs without checkpoints or final validation; the fastest epoch is added
to ``fold_0/benchmark_result.json`` under a key naming host, torch and device (here on any device, CPU included)."""

from __future__ import annotations

import itertools
import os
import platform
from typing import Any

import torch

from nnunetv2.exceptions import TrainingError
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer
from nnunetv2.utilities.file_io import load_json, save_json


class nnUNetTrainerBenchmark_5epochs(nnUNetTrainer):
    """Times 5 epochs; a run stopped by a RuntimeError (e.g. out of memory) is recorded as such."""

    num_epochs = 5
    disable_checkpointing = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.fold != 0:
            raise TrainingError(f"{type(self).__name__}: use fold 0, so results of all runs land in one file")
        self.crashed_with_runtime_error = False

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        """Skip the final validation."""

    def save_checkpoint(self, filename: str | os.PathLike) -> None:
        """Write no checkpoint."""

    def run_training(self) -> None:
        """Train; a RuntimeError ends the benchmark (and is recorded) instead of the program."""
        try:
            super().run_training()
        except RuntimeError as e:
            self.crashed_with_runtime_error = True
            self.on_train_end()
            self.print_to_log_file(f"benchmark stopped by an exception: {e}")

    def on_train_end(self) -> None:
        """Finish as nnUNetTrainer does, then add this machine's fastest epoch to benchmark_result.json."""
        super().on_train_end()
        if not self.dist.is_main:
            return
        if self.crashed_with_runtime_error:
            fastest: Any = "Training has ended due to an error. Check your logs for more information."
        else:
            starts = self.logger.get_value("epoch_start_timestamps", None)
            ends = self.logger.get_value("epoch_end_timestamps", None)
            fastest = min(e - s for s, e in zip(starts, ends))
        device_name = torch.cuda.get_device_name() if self.device.type == "cuda" else platform.processor() or "cpu"
        cudnn = torch.backends.cudnn.version() if self.device.type == "cuda" else None
        key = (
            f"{platform.node()}__{cudnn}__{torch.__version__.replace(' ', '')}__{device_name.replace(' ', '')}"
            f"__num_gpus_{self.dist.world_size}"
        )
        path = self.output_folder / "benchmark_result.json"
        results = load_json(path) if path.is_file() else {}
        results[key] = {
            "torch_version": torch.__version__,
            "cudnn_version": cudnn,
            "gpu_name": device_name,
            "fastest_epoch": fastest,
            "num_gpus": self.dist.world_size,
            "hostname": platform.node(),
        }
        self.output_folder.mkdir(parents=True, exist_ok=True)
        save_json(results, path)


class nnUNetTrainerBenchmark_5epochs_noDataLoading(nnUNetTrainerBenchmark_5epochs):
    """Times the network alone: every step gets the same random batch instead of loaded, augmented data."""

    def get_dataloaders(self) -> tuple[Any, Any]:
        """Return two endless iterators over one random batch of this configuration's shape."""
        if not self.enable_deep_supervision:
            raise TrainingError(f"{type(self).__name__} needs deep supervision")
        self.initialize()
        patch_size = list(self.configuration_manager.patch_size)
        scales = self._get_deep_supervision_scales() or []
        data = torch.rand((self.batch_size, self.num_input_channels, *patch_size), device=self.device)
        highest_label = max(self.label_manager.all_labels)
        target = [
            torch.round(
                torch.rand((self.batch_size, 1, *[int(p * s) for p, s in zip(patch_size, scale)]), device=self.device)
                * highest_label
            )
            for scale in scales
        ]
        batch = {"data": data, "target": target}
        return itertools.repeat(batch), itertools.repeat(batch)
