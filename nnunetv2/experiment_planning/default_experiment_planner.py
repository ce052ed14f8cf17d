"""ExperimentPlanner: dataset.json + fingerprint -> nnU-Net v2 plans (2d, 3d_fullres, 3d_lowres + cascade)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import PlansError
from nnunetv2.experiment_planning.fingerprint import FINGERPRINT_FILE_NAME, FINGERPRINT_KEYS
from nnunetv2.experiment_planning.network_topology import NetworkTopology, compute_network_topology
from nnunetv2.experiment_planning.planning_rules import (
    fullres_target_spacing,
    initial_patch_size,
    normalization_schemes,
    transpose_for_spacing,
)
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ArchitectureSpec, Plans
from nnunetv2.preprocessing.resampling import compute_new_shape
from nnunetv2.utilities.file_io import load_json
from nnunetv2.utilities.parameters import check_number

logger = logging.getLogger(__name__)

_CONV_OPS = {2: "torch.nn.modules.conv.Conv2d", 3: "torch.nn.modules.conv.Conv3d"}
_INSTANCE_NORMS = {2: "torch.nn.modules.instancenorm.InstanceNorm2d", 3: "torch.nn.modules.instancenorm.InstanceNorm3d"}
_RESAMPLING_FN = "resample_data_or_seg_to_shape"


def _case_geometry(fingerprint: dict[str, Any], source: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the fingerprint's per-case spacings and cropped shapes, checked, as (n, 3) arrays."""
    missing = [k for k in FINGERPRINT_KEYS if k not in fingerprint]
    if missing:
        raise PlansError(f"{source}: required key '{missing[0]}' is missing")
    spacings = np.asarray(fingerprint["spacings"], dtype=np.float64)
    shapes = np.asarray(fingerprint["shapes_after_crop"], dtype=np.float64)
    if spacings.ndim != 2 or spacings.shape[1] != 3 or shapes.shape != spacings.shape or not len(spacings):
        raise PlansError(f"{source}: 'spacings' and 'shapes_after_crop' must list 3 numbers for each of the same cases")
    if np.any(spacings <= 0):
        raise PlansError(f"{source}: a case has a spacing <= 0")
    return spacings, shapes


class ExperimentPlanner:
    """nnU-Net v2's default planner. Variants are subclasses that change these class attributes."""

    anisotropy_threshold = 3.0
    anisotropic_axis_spacing_percentile = 10
    UNet_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
    UNet_encoder_blocks_kwarg = "n_conv_per_stage"
    UNet_base_num_features = 32
    UNet_max_features_2d = 512
    UNet_max_features_3d = 320
    UNet_blocks_per_stage_encoder: tuple[int, ...] = (2,) * 14
    UNet_blocks_per_stage_decoder: tuple[int, ...] = (2,) * 13
    UNet_featuremap_min_edge_length = 4
    UNet_reference_val_3d = 560_000_000
    UNet_reference_val_2d = 85_000_000
    UNet_reference_val_corresp_GB = 8
    UNet_reference_val_corresp_bs_3d = 2
    UNet_reference_val_corresp_bs_2d = 12
    UNet_min_batch_size = 2
    # False: the patch must fit the memory target at the minimum batch size; True: at the reference one
    fit_memory_for_reference_batch_size = False
    max_dataset_covered = 0.05
    initial_patch_volume_3d = 256**3
    initial_patch_volume_2d = 2048**2
    lowres_creation_threshold = 0.25
    lowres_spacing_increase_factor = 1.03
    min_lowres_size_reduction = 2.0
    default_gpu_memory_target_in_gb = 8.0
    # presets tuned for one GPU size warn when asked to plan for another
    memory_target_is_tuned = False
    default_plans_name = "nnUNetPlans"
    # configurations whose preprocessed data is the default planner's (same data, other network)
    configurations_sharing_default_data: tuple[str, ...] = ()

    def __init__(
        self,
        dataset_json: DatasetJson,
        fingerprint: dict[str, Any],
        dataset_name: str,
        image_reader_writer: str,
        gpu_memory_target_in_gb: float | None = None,
        preprocessor_name: str = "DefaultPreprocessor",
        plans_name: str | None = None,
        overwrite_target_spacing: Sequence[float] | None = None,
        suppress_transpose: bool = False,
        fingerprint_source: str = FINGERPRINT_FILE_NAME,
    ):
        self.spacings, self.shapes_after_crop = _case_geometry(fingerprint, fingerprint_source)
        check_number("the GPU memory target (GB)", gpu_memory_target_in_gb, "> 0", error=PlansError, optional=True)
        if overwrite_target_spacing is not None and (
            len(overwrite_target_spacing) != 3 or min(overwrite_target_spacing) <= 0
        ):
            raise PlansError(f"the target spacing must be three positive numbers (got {overwrite_target_spacing})")
        if self.memory_target_is_tuned and gpu_memory_target_in_gb not in (None, self.default_gpu_memory_target_in_gb):
            logger.warning(
                "%s is tuned for %s GB; planning for %s GB as requested",
                type(self).__name__,
                self.default_gpu_memory_target_in_gb,
                gpu_memory_target_in_gb,
            )
        self.dataset_json = dataset_json
        self.fingerprint = fingerprint
        self.dataset_name = dataset_name
        self.image_reader_writer = image_reader_writer
        self.gpu_memory_target_in_gb = float(gpu_memory_target_in_gb or self.default_gpu_memory_target_in_gb)
        self.preprocessor_name = preprocessor_name
        self.plans_name = plans_name or self.default_plans_name
        self.overwrite_target_spacing = overwrite_target_spacing
        self.suppress_transpose = suppress_transpose

    @classmethod
    def from_dataset(cls, dataset_name_or_id: str | int, **options) -> ExperimentPlanner:
        """Build a planner from the raw dataset.json and the fingerprint in nnUNet_preprocessed."""
        from nnunetv2 import paths
        from nnunetv2.dataset.cases import list_training_cases
        from nnunetv2.imageio.registry import reader_writer_for_dataset
        from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

        dataset_name = convert_id_to_dataset_name(dataset_name_or_id)
        raw_folder = paths.raw_folder() / dataset_name
        dataset_json = DatasetJson.load(raw_folder / "dataset.json")
        fingerprint_file = paths.preprocessed_folder() / dataset_name / FINGERPRINT_FILE_NAME
        if not fingerprint_file.is_file():
            raise PlansError(
                f"{fingerprint_file}: fingerprint missing; run nnUNetv2_extract_fingerprint -d {dataset_name} first"
            )
        cases = list_training_cases(raw_folder, dataset_json)
        example_image = next(iter(cases.values()))["images"][0] if cases else None
        reader_writer = reader_writer_for_dataset(dataset_json, str(example_image) if example_image else None)
        return cls(
            dataset_json,
            load_json(fingerprint_file),
            dataset_name,
            reader_writer.__name__,
            fingerprint_source=str(fingerprint_file),
            **options,
        )

    # ----- single rules (override one of these to change one rule) -----

    def determine_fullres_target_spacing(self) -> np.ndarray:
        """Return the 3d_fullres spacing in the original axis order."""
        if self.overwrite_target_spacing is not None:
            return np.asarray(self.overwrite_target_spacing, dtype=np.float64)
        return fullres_target_spacing(
            self.spacings, self.shapes_after_crop, self.anisotropy_threshold, self.anisotropic_axis_spacing_percentile
        )

    def determine_transpose(self) -> tuple[list[int], list[int]]:
        """Return (transpose_forward, transpose_backward)."""
        if self.suppress_transpose:
            return [0, 1, 2], [0, 1, 2]
        return transpose_for_spacing(self.determine_fullres_target_spacing())

    def determine_normalization(self) -> tuple[list[str], list[bool]]:
        """Return normalization scheme names and use_mask_for_norm flags per channel."""
        return normalization_schemes(
            list(self.dataset_json.channel_names.values()),
            float(self.fingerprint["median_relative_size_after_cropping"]),
            bool(self.dataset_json.extra.get("use_mask_for_norm", False)),
        )

    def determine_resampling(self) -> dict[str, Any]:
        """Return the resampling function names and kwargs for data, segmentations and probabilities."""

        def kwargs(is_seg: bool, order: int) -> dict[str, Any]:
            return {"is_seg": is_seg, "order": order, "order_z": 0, "force_separate_z": None}

        # key order as in nnU-Net v2's plans files
        return {
            "resampling_fn_data": _RESAMPLING_FN,
            "resampling_fn_seg": _RESAMPLING_FN,
            "resampling_fn_data_kwargs": kwargs(False, 3),
            "resampling_fn_seg_kwargs": kwargs(True, 1),
            "resampling_fn_probabilities": _RESAMPLING_FN,
            "resampling_fn_probabilities_kwargs": kwargs(False, 1),
        }

    def generate_data_identifier(self, configuration_name: str) -> str:
        """Return the name of the preprocessed data folder of a configuration."""
        plans_name = (
            ExperimentPlanner.default_plans_name
            if configuration_name in self.configurations_sharing_default_data
            else self.plans_name
        )
        return f"{plans_name}_{configuration_name}"

    def architecture(self, topology: NetworkTopology) -> ArchitectureSpec:
        """Return the plans' architecture block for a topology."""
        dim = len(topology.patch_size)
        n_stages = topology.n_stages
        max_features = self.UNet_max_features_2d if dim == 2 else self.UNet_max_features_3d
        return ArchitectureSpec(
            self.UNet_class_name,
            {
                "n_stages": n_stages,
                "features_per_stage": [min(max_features, self.UNet_base_num_features * 2**i) for i in range(n_stages)],
                "conv_op": _CONV_OPS[dim],
                "kernel_sizes": topology.conv_kernel_sizes,
                "strides": topology.strides,
                self.UNet_encoder_blocks_kwarg: list(self.UNet_blocks_per_stage_encoder[:n_stages]),
                "n_conv_per_stage_decoder": list(self.UNet_blocks_per_stage_decoder[: n_stages - 1]),
                "conv_bias": True,
                "norm_op": _INSTANCE_NORMS[dim],
                "norm_op_kwargs": {"eps": 1e-05, "affine": True},
                "dropout_op": None,
                "dropout_op_kwargs": None,
                "nonlin": "torch.nn.LeakyReLU",
                "nonlin_kwargs": {"inplace": True},
            },
            ["conv_op", "norm_op", "dropout_op", "nonlin"],
        )

    def estimate_memory(self, architecture: ArchitectureSpec, patch_size: Sequence[int]) -> int:
        """Return the feature-map size of the network for one patch (nnU-Net's VRAM proxy)."""
        from nnunetv2.architectures.memory_estimate import conv_feature_map_size

        # nnU-Net v2 counts every dataset.json label entry here, the ignore label included
        return conv_feature_map_size(
            architecture, patch_size, self.dataset_json.num_channels, len(self.dataset_json.labels)
        )

    # ----- one configuration -----

    def get_plans_for_configuration(
        self,
        spacing: Sequence[float] | np.ndarray,
        median_shape: Sequence[float] | np.ndarray,
        data_identifier: str,
        approximate_n_voxels_dataset: float,
    ) -> dict[str, Any]:
        """Return one configuration: the largest patch that fits the memory target, and its batch size."""
        dim = len(spacing)
        spacing = [float(s) for s in spacing]
        median = np.asarray(median_shape, dtype=np.float64)
        volume = self.initial_patch_volume_2d if dim == 2 else self.initial_patch_volume_3d
        topology = self._topology(spacing, initial_patch_size(spacing, median, volume))
        # a one-stage U-Net has no decoder and predicts nothing
        if topology.n_stages < 2:
            raise PlansError(
                f"{data_identifier}: the median image size {median.tolist()} of dataset "
                f"{self.dataset_name} is too small for a U-Net (it needs "
                f"{2 * self.UNet_featuremap_min_edge_length} voxels along an axis)"
            )
        estimate = self.estimate_memory(self.architecture(topology), topology.patch_size)
        reference_batch = self.UNet_reference_val_corresp_bs_2d if dim == 2 else self.UNet_reference_val_corresp_bs_3d
        reference = (
            (self.UNet_reference_val_2d if dim == 2 else self.UNet_reference_val_3d)
            * self.gpu_memory_target_in_gb
            / self.UNet_reference_val_corresp_GB
        )
        while self._exceeds_memory(estimate, reference, reference_batch):
            topology = self._shrink_patch(spacing, median, topology, data_identifier)
            if topology.n_stages < 2:
                raise self._memory_too_small(data_identifier)
            estimate = self.estimate_memory(self.architecture(topology), topology.patch_size)
        patch_size = topology.patch_size
        batch_size = round(reference / estimate * reference_batch)
        # a batch may cover at most max_dataset_covered of all voxels (overfitting guard)
        batch_cap = round(
            approximate_n_voxels_dataset * self.max_dataset_covered / np.prod(patch_size, dtype=np.float64)
        )
        batch_size = int(max(min(batch_size, batch_cap), self.UNet_min_batch_size))
        schemes, use_mask = self.determine_normalization()
        return {
            "data_identifier": data_identifier,
            "preprocessor_name": self.preprocessor_name,
            "batch_size": batch_size,
            "patch_size": [int(p) for p in patch_size],
            "median_image_size_in_voxels": [m.item() if isinstance(m, np.generic) else m for m in median_shape],
            "spacing": spacing,
            "normalization_schemes": schemes,
            "use_mask_for_norm": use_mask,
            **self.determine_resampling(),
            "architecture": self.architecture(topology).to_dict(),
        }

    def _topology(self, spacing: Sequence[float], patch_size: Sequence[float]) -> NetworkTopology:
        return compute_network_topology(spacing, patch_size, self.UNet_featuremap_min_edge_length)

    def _exceeds_memory(self, estimate: int, reference: float, reference_batch: int) -> bool:
        if self.fit_memory_for_reference_batch_size:
            return estimate > reference
        return estimate / reference_batch * self.UNet_min_batch_size > reference

    def _memory_too_small(self, data_identifier: str) -> PlansError:
        return PlansError(
            f"{data_identifier}: the GPU memory target of {self.gpu_memory_target_in_gb} GB is too "
            f"small for a U-Net patch of dataset {self.dataset_name}"
        )

    def _shrink_patch(
        self, spacing: list[float], median: np.ndarray, topology: NetworkTopology, data_identifier: str
    ) -> NetworkTopology:
        """Shrink the patch axis that is largest relative to the median shape by one divisibility step."""
        patch = list(topology.patch_size)
        ratios = np.asarray(patch, dtype=np.float64) / median
        axis = int(np.flatnonzero(ratios == ratios.max())[-1])  # ties: the last axis, as nnU-Net v2
        # the step is the divisibility of the reduced size: from 256 (step 64) the next size is 224, not 192
        probe = list(patch)
        probe[axis] -= topology.shape_must_be_divisible_by[axis]
        step = self._topology(spacing, probe).shape_must_be_divisible_by[axis]
        if patch[axis] - step < 1:
            raise self._memory_too_small(data_identifier)
        patch[axis] -= step
        return self._topology(spacing, patch)

    # ----- the whole experiment -----

    def plan_experiment(self) -> Plans:
        """Return the plans with 2d, 3d_fullres and, for large images, 3d_lowres + 3d_cascade_fullres."""
        forward, backward = self.determine_transpose()
        fullres_spacing = self.determine_fullres_target_spacing()
        spacing = fullres_spacing[forward]
        new_shapes = [
            compute_new_shape(shape, case_spacing, fullres_spacing)
            for case_spacing, shape in zip(self.spacings, self.shapes_after_crop)
        ]
        median_shape = np.median(np.asarray(new_shapes, dtype=np.float64), axis=0)[forward]
        n_voxels_dataset = float(np.prod(median_shape, dtype=np.float64) * self.dataset_json.num_training)

        configurations: dict[str, dict[str, Any]] = {}
        is_3d = median_shape[0] != 1  # 2D data (one slice per image) gets no 3D configurations
        try:
            configurations["2d"] = self.get_plans_for_configuration(
                spacing[1:], median_shape[1:], self.generate_data_identifier("2d"), n_voxels_dataset
            )
            configurations["2d"]["batch_dice"] = True
        except PlansError as e:
            if not is_3d:
                raise
            # e.g. thin tubes: slices too small for a 2D U-Net while the volumes suit a 3D one
            logger.warning("no 2d configuration: %s", e)
        if is_3d:
            fullres = self.get_plans_for_configuration(
                spacing, median_shape, self.generate_data_identifier("3d_fullres"), n_voxels_dataset
            )
            lowres = self.plan_lowres(spacing, median_shape, fullres["patch_size"])
            fullres["batch_dice"] = lowres is not None
            if lowres is not None:
                lowres["batch_dice"] = False
                lowres["next_stage"] = "3d_cascade_fullres"
                configurations["3d_lowres"] = lowres
            configurations["3d_fullres"] = fullres
            if lowres is not None:
                configurations["3d_cascade_fullres"] = {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
        for name, configuration in configurations.items():
            logger.info("%s: %s", name, {k: configuration.get(k) for k in ("patch_size", "spacing", "batch_size")})

        return Plans.from_dict(
            {
                "dataset_name": self.dataset_name,
                "plans_name": self.plans_name,
                "original_median_spacing_after_transp": [float(s) for s in np.median(self.spacings, axis=0)[forward]],
                "original_median_shape_after_transp": [
                    int(round(s)) for s in np.median(self.shapes_after_crop, axis=0)[forward]
                ],
                "image_reader_writer": self.image_reader_writer,
                "transpose_forward": [int(a) for a in forward],
                "transpose_backward": [int(a) for a in backward],
                "configurations": configurations,
                "experiment_planner_used": type(self).__name__,
                "label_manager": "LabelManager",
                "foreground_intensity_properties_per_channel": self.fingerprint[
                    "foreground_intensity_properties_per_channel"
                ],
            }
        )

    def plan_lowres(
        self, fullres_spacing: np.ndarray, median_shape: np.ndarray, fullres_patch_size: Sequence[int]
    ) -> dict[str, Any] | None:
        """Return the 3d_lowres configuration, or None when the fullres patch already covers enough."""
        median_voxels = np.prod(median_shape, dtype=np.float64)
        patch_voxels = np.prod(fullres_patch_size, dtype=np.float64)
        spacing = np.array(fullres_spacing, dtype=np.float64)
        lowres = None
        while patch_voxels / median_voxels < self.lowres_creation_threshold:
            # coarsen the fine axes first until no axis is more than 2x coarser than them
            fine = spacing.max() / spacing > 2
            if fine.any():
                spacing[fine] *= self.lowres_spacing_increase_factor
            else:
                spacing *= self.lowres_spacing_increase_factor
            lowres_median = fullres_spacing / spacing * median_shape
            median_voxels = np.prod(lowres_median, dtype=np.float64)
            lowres = self.get_plans_for_configuration(
                spacing,
                [round(m) for m in lowres_median],
                self.generate_data_identifier("3d_lowres"),
                float(median_voxels * self.dataset_json.num_training),
            )
            patch_voxels = np.prod(lowres["patch_size"], dtype=np.float64)
        if np.prod(median_shape, dtype=np.float64) / median_voxels < self.min_lowres_size_reduction:
            if lowres is not None:
                logger.info(
                    "no 3d_lowres: its median image would not be %sx smaller than 3d_fullres'",
                    self.min_lowres_size_reduction,
                )
            return None
        return lowres

    def save_plans(self, plans: Plans, preprocessed_dataset_folder: str | Path) -> Path:
        """Write ``<plans_name>.json``, keeping custom configurations of an existing file with that name."""
        path = Path(preprocessed_dataset_folder) / f"{plans.plans_name}.json"
        if path.is_file():
            old = load_json(path).get("configurations", {})
            plans.configurations.update({k: v for k, v in old.items() if k not in plans.configurations})
        plans.save(path)
        return path
