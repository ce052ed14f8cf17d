"""Alias of ``nnunetv2.training.trainers.variants_benchmarking``
(nnU-Net v2's ``variants/benchmarking/nnUNetTrainerBenchmark_5epochs_noDataLoading.py``)."""

from nnunetv2.training.trainers.variants_benchmarking import (
    nnUNetTrainerBenchmark_5epochs_noDataLoading,
)

__all__ = ["nnUNetTrainerBenchmark_5epochs_noDataLoading"]
