"""nnU-Net v2's data-augmentation variants: without mirroring, mirroring only some axes, no augmentation,
no dummy-2D augmentation, nearest-neighbour segmentation resampling, and the stronger DA5 pipeline."""

from __future__ import annotations

import numpy as np

from nnunetv2.training.augmentation import pipelines
from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer


class nnUNetTrainerNoMirroring(nnUNetTrainer):
    """Neither augments nor (at inference) tests with mirroring."""

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """Return nnUNetTrainer's settings without mirror axes."""
        rotation, dummy_2d, initial_patch_size, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, initial_patch_size, None


class nnUNetTrainer_onlyMirror01(nnUNetTrainer):
    """Mirrors along the first two spatial axes in 3D (the first in 2D) only, in training and at inference."""

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """Return nnUNetTrainer's settings with mirror axes (0, 1) in 3D, (0,) in 2D."""
        rotation, dummy_2d, initial_patch_size, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        mirror_axes = (0,) if len(self.configuration_manager.patch_size) == 2 else (0, 1)
        self.inference_allowed_mirroring_axes = mirror_axes
        return rotation, dummy_2d, initial_patch_size, mirror_axes


class nnUNetTrainer_onlyMirror01_1500ep(nnUNetTrainer_onlyMirror01):
    """nnUNetTrainer_onlyMirror01 for 1500 epochs."""

    num_epochs = 1500


class nnUNetTrainer_DASegOrd0(nnUNetTrainer):
    """Segmentations resampled by nearest neighbour in the spatial transform: nnUNetTrainer's own augmentation here
    (it never blends label values, see ``nnunetv2.training.augmentation.pipelines``)."""


class nnUNetTrainer_DASegOrd0_NoMirroring(nnUNetTrainerNoMirroring):
    """nnUNetTrainer_DASegOrd0 without mirroring."""


class nnUNetTrainer_onlyMirror01_DASegOrd0(nnUNetTrainer_onlyMirror01):
    """nnUNetTrainer_DASegOrd0 mirroring only axes (0, 1)."""


class nnUNetTrainerNoDA(nnUNetTrainer):
    """No augmentation at all: training batches get only the label conversions validation batches get."""

    @staticmethod
    def get_training_transforms(
        patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
        use_mask_for_norm=None, is_cascaded=False, foreground_labels=None, regions=None, ignore_label=None,
    ):  # fmt: skip
        """Return the validation transforms."""
        return nnUNetTrainer.get_validation_transforms(
            deep_supervision_scales, is_cascaded, foreground_labels, regions, ignore_label
        )

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """Return nnUNetTrainer's settings with the patch itself as the sampled patch and no mirroring."""
        rotation, dummy_2d, _, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, np.array(self.configuration_manager.patch_size, dtype=int), None


class nnUNetTrainer_noDummy2DDA(nnUNetTrainer):
    """Never switches 3D augmentation to in-plane (dummy 2D) mode, however anisotropic the patch."""

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """Return nnUNetTrainer's settings with +-30 degree 3D rotation and no dummy 2D augmentation."""
        patch_size = list(self.configuration_manager.patch_size)
        if len(patch_size) == 2:
            return super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        rotation = (-np.pi / 6, np.pi / 6)
        initial = np.array(pipelines.compute_initial_patch_size(patch_size, rotation), dtype=int)
        self.inference_allowed_mirroring_axes = (0, 1, 2)
        return rotation, False, initial, (0, 1, 2)


class nnUNetTrainerDA5(nnUNetTrainer):
    """nnU-Net v2's stronger augmentation (``nnunetv2.training.augmentation.pipelines_da5``); the initial patch is
    sized for scaling down to 0.7."""

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """Return nnUNetTrainer's settings with the initial patch sized for DA5's scale range (0.7, 1.43)."""
        rotation, dummy_2d, _, mirror_axes = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        patch_size = list(self.configuration_manager.patch_size)
        initial = np.array(pipelines.compute_initial_patch_size(patch_size, rotation, (0.7, 1.43)), dtype=int)
        if dummy_2d:
            initial[0] = patch_size[0]
        return rotation, dummy_2d, initial, mirror_axes

    @staticmethod
    def get_training_transforms(
        patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
        use_mask_for_norm=None, is_cascaded=False, foreground_labels=None, regions=None, ignore_label=None,
    ):  # fmt: skip
        """Return the DA5 pipeline."""
        from nnunetv2.training.augmentation.pipelines_da5 import get_da5_training_transforms

        return get_da5_training_transforms(
            patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
            use_mask_for_norm, is_cascaded, foreground_labels, regions, ignore_label,
        )  # fmt: skip


class nnUNetTrainerDA5ord0(nnUNetTrainerDA5):
    """DA5 resampling image and segmentation by nearest neighbour in the spatial transform."""

    @staticmethod
    def get_training_transforms(
        patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
        use_mask_for_norm=None, is_cascaded=False, foreground_labels=None, regions=None, ignore_label=None,
    ):  # fmt: skip
        """Return the DA5 pipeline with nearest-neighbour image resampling."""
        from nnunetv2.training.augmentation.pipelines_da5 import get_da5_training_transforms

        return get_da5_training_transforms(
            patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
            use_mask_for_norm, is_cascaded, foreground_labels, regions, ignore_label, nearest_image=True,
        )  # fmt: skip


class nnUNetTrainerDA5Segord0(nnUNetTrainerDA5):
    """DA5 with nearest-neighbour segmentation resampling: DA5 itself here (segmentations are never blended)."""


class nnUNetTrainerDA5_10epochs(nnUNetTrainerDA5):
    """nnUNetTrainerDA5 for 10 epochs."""

    num_epochs = 10


class nnUNetTrainer_onlyMirror01_DA5(nnUNetTrainer_onlyMirror01, nnUNetTrainerDA5):
    """DA5 mirroring only axes (0, 1) (nnU-Net v2's AortaSeg24 trainer)."""
