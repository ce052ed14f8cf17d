"""nnU-Net v2's network variants: batch normalisation instead of instance normalisation; no deep supervision.

A model trained with nnUNetTrainerBN is predicted by this package's predictor only if its plans'
architecture block names the batch-norm layers (the predictor builds networks from the plans).
"""

from __future__ import annotations

import dataclasses

from torch import nn

from nnunetv2.exceptions import TrainingError
from nnunetv2.formats.plans import ArchitectureSpec, ConfigurationPlans, Plans
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


class nnUNetTrainerBN(nnUNetTrainer):
    """The plans' network with batch normalisation (eps 1e-5, affine) in place of its normalisation layers."""

    @staticmethod
    def build_network_architecture(
        plans_manager: Plans,
        configuration_manager: ConfigurationPlans,
        num_input_channels: int,
        num_output_channels: int,
        enable_deep_supervision: bool = True,
    ) -> nn.Module:
        """Return the plans' network with BatchNorm matching its convolutions."""
        from dynamic_network_architectures.building_blocks.helper import get_matching_batchnorm

        from nnunetv2.architectures.network_builder import import_dotted

        kwargs = configuration_manager.network_arch_init_kwargs
        if "norm_op" not in kwargs:
            raise TrainingError("nnUNetTrainerBN: the plans' architecture has no 'norm_op' to replace")
        batchnorm = get_matching_batchnorm(import_dotted(kwargs["conv_op"]))
        kwargs["norm_op"] = f"{batchnorm.__module__}.{batchnorm.__name__}"
        kwargs["norm_op_kwargs"] = {"eps": 1e-5, "affine": True}
        architecture = ArchitectureSpec(
            configuration_manager.network_arch_class_name,
            kwargs,
            configuration_manager.network_arch_init_kwargs_req_import,
        )
        return nnUNetTrainer.build_network_architecture(
            plans_manager,
            dataclasses.replace(configuration_manager, architecture=architecture),
            num_input_channels,
            num_output_channels,
            enable_deep_supervision,
        )


class nnUNetTrainerNoDeepSupervision(nnUNetTrainer):
    """Supervises only the full-resolution output (the decoder returns one tensor)."""

    enable_deep_supervision = False
