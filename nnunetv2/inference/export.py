"""Turn a network's logits (preprocessed geometry) into a segmentation in the original image geometry.

The steps undo preprocessing in reverse: logits are resampled to the cropped shape at the original
spacing (before the softmax/sigmoid, in nnU-Net v2's order, so both give the same labels),
turned into probabilities and labels, pasted into the uncropped shape, and transposed back to
the input's axis order. Without probabilities, labels come straight from the logits (argmax;
sigmoid > 0.5 for regions), as nnU-Net v2 does. Softmax and argmax run slab by slab in place, so
a large case needs little memory beyond its resampled logits. Outside the crop box the segmentation
is background (probability 1 for background when the network predicts labels, 0 everywhere for regions).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import ImageIOError, InferenceError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans, as_configuration_plans, as_plans
from nnunetv2.utilities.file_io import atomic_path, save_npz_compressed

if TYPE_CHECKING:
    import torch

    from nnunetv2.imageio.base_reader_writer import BaseReaderWriter

logger = logging.getLogger(__name__)

# softmax/sigmoid and argmax run on slabs of about this many voxels, so their temporaries stay small
_SLAB_VOXELS = 2**22


def spacings_for_export(
    properties: dict[str, Any], configuration: ConfigurationPlans, plans: Plans
) -> tuple[list[float], list[float]]:
    """Return (spacing of the network's output, original spacing), both in transposed axis order.

    A 2D configuration keeps the slice axis at its original spacing.
    """
    original = [float(properties["spacing"][a]) for a in plans.transpose_forward]
    current = [float(s) for s in configuration.spacing]
    if len(current) < len(original):
        current = [original[0], *current]
    return current, original


def _crop_box_slicer(properties: dict[str, Any]) -> tuple[slice, ...]:
    return tuple(slice(int(lo), int(hi)) for lo, hi in properties["bbox_used_for_cropping"])


def _resampled_channels(
    logits: np.ndarray, properties: dict[str, Any], configuration: ConfigurationPlans, plans: Plans
) -> Iterator[np.ndarray]:
    """Yield each channel of (C, ...) logits resampled to the cropped shape (views when no resampling is needed)."""
    target_shape = [int(s) for s in properties["shape_after_cropping_and_before_resampling"]]
    if list(logits.shape[1:]) == target_shape:
        yield from logits
        return
    from nnunetv2.preprocessing.resampling import resampling_function_by_name

    resample = resampling_function_by_name(configuration.resampling_fn_probabilities)
    current_spacing, original_spacing = spacings_for_export(properties, configuration, plans)
    for c in range(logits.shape[0]):
        yield resample(
            logits[c : c + 1],
            target_shape,
            current_spacing,
            original_spacing,
            **configuration.resampling_fn_probabilities_kwargs,
        )[0]


def _resample_to_cropped_shape(
    logits: np.ndarray, properties: dict[str, Any], configuration: ConfigurationPlans, plans: Plans
) -> np.ndarray:
    """Resample (C, ...) logits to the cropped shape, one class at a time to bound memory."""
    target_shape = [int(s) for s in properties["shape_after_cropping_and_before_resampling"]]
    if list(logits.shape[1:]) == target_shape:
        return logits
    out = np.empty((logits.shape[0], *target_shape), dtype=np.float32)
    for c, channel in enumerate(_resampled_channels(logits, properties, configuration, plans)):
        out[c] = channel
    return out


def _segmentation_one_channel_at_a_time(
    logits: np.ndarray,
    properties: dict[str, Any],
    configuration: ConfigurationPlans,
    plans: Plans,
    label_manager: LabelManager,
) -> np.ndarray:
    """Labels of the cropped image from logits resampled one channel at a time.

    The same rule as ``LabelManager.probabilities_to_segmentation`` on the logits (argmax, first
    channel wins ties; regions: sigmoid > 0.5 painted in ``regions_class_order``), but only two
    channels at the output size exist at once instead of all of them.
    """
    import torch

    shape = [int(s) for s in properties["shape_after_cropping_and_before_resampling"]]
    dtype = label_manager.probabilities_to_segmentation(np.zeros((logits.shape[0], 1), np.float32)).dtype
    segmentation = np.zeros(shape, dtype=dtype)
    best = None
    for c, channel in enumerate(_resampled_channels(logits, properties, configuration, plans)):
        if label_manager.has_regions:
            inside = label_manager.apply_inference_nonlinearity(torch.from_numpy(channel[None]))[0].numpy() > 0.5
            segmentation[inside] = label_manager.region_order[c]
        elif best is None:
            best = np.array(channel, dtype=np.float32)  # a copy: ``channel`` may be a view of the logits
        else:
            better = channel > best
            segmentation[better] = c
            np.copyto(best, channel, where=better)
    return segmentation


def paste_into_original_geometry(
    array: np.ndarray, properties: dict[str, Any], plans: Plans, fill_value: float = 0
) -> np.ndarray:
    """Return a cropped ``(*cropped_shape)`` array placed in the uncropped shape and transposed back."""
    full = np.full([int(s) for s in properties["shape_before_cropping"]], fill_value, dtype=array.dtype)
    full[_crop_box_slicer(properties)] = array
    return np.ascontiguousarray(full.transpose(plans.transpose_backward))


def _slabs(spatial_shape: Sequence[int]) -> list[slice]:
    """Slices along the first spatial axis holding about ``_SLAB_VOXELS`` voxels each."""
    per_slice = max(1, int(np.prod(spatial_shape[1:])))
    step = max(1, _SLAB_VOXELS // per_slice)
    return [slice(start, start + step) for start in range(0, int(spatial_shape[0]), step)]


def _segmentation(probabilities: np.ndarray, label_manager: LabelManager) -> np.ndarray:
    """Labels of ``(C, ...)`` probabilities, slab by slab (argmax's int64 result stays small)."""
    import torch

    slabs = _slabs(probabilities.shape[1:])
    first = label_manager.probabilities_to_segmentation(torch.from_numpy(probabilities[:, slabs[0]]))
    segmentation = np.empty(probabilities.shape[1:], dtype=first.dtype)
    segmentation[slabs[0]] = first
    for slab in slabs[1:]:
        segmentation[slab] = label_manager.probabilities_to_segmentation(torch.from_numpy(probabilities[:, slab]))
    return segmentation


def _apply_nonlinearity_in_place(logits: np.ndarray, label_manager: LabelManager) -> np.ndarray:
    """Turn ``(C, ...)`` float32 logits into probabilities in their own memory, slab by slab."""
    import torch

    for slab in _slabs(logits.shape[1:]):
        logits[:, slab] = label_manager.apply_inference_nonlinearity(torch.from_numpy(logits[:, slab])).numpy()
    return logits


def _uncrop_probabilities(
    probabilities: np.ndarray, properties: dict[str, Any], label_manager: LabelManager
) -> np.ndarray:
    """Place cropped probabilities in the uncropped shape (no copy when the crop box is the whole image)."""
    full_shape = [int(s) for s in properties["shape_before_cropping"]]
    if list(probabilities.shape[1:]) == full_shape:
        return probabilities
    full = np.zeros((probabilities.shape[0], *full_shape), dtype=np.float32)
    if not label_manager.has_regions:
        full[0] = 1  # outside the crop box is background for sure
    full[(slice(None),) + _crop_box_slicer(properties)] = probabilities
    return full


def convert_logits_to_segmentation_with_correct_shape(
    logits: torch.Tensor | np.ndarray,
    properties: dict[str, Any],
    configuration: ConfigurationPlans,
    plans: Plans,
    dataset_json: DatasetJson | dict | LabelManager,
    return_probabilities: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Return the segmentation (and, if asked, float32 probabilities ``(C, ...)``) in the original geometry.

    ``dataset_json`` may also be the LabelManager built from it.
    ``logits`` are ``(C, *shape)`` in preprocessed (transposed, cropped, resampled) geometry; they
    are not modified. Memory beyond them: the resampled logits, which become the probabilities in
    place, plus the uncropped probabilities when the crop box is smaller than the image. The
    probabilities come back as a transposed view (``np.savez`` writes such a view in chunks).
    """
    import torch

    configuration, plans = as_configuration_plans(configuration), as_plans(plans)
    if isinstance(dataset_json, LabelManager):
        label_manager = dataset_json
    else:
        if isinstance(dataset_json, dict):
            dataset_json = DatasetJson.from_dict(dataset_json)
        label_manager = LabelManager.from_dataset_json(dataset_json)
    logits = torch.as_tensor(logits)
    if logits.shape[0] != label_manager.num_segmentation_heads:
        raise InferenceError(
            f"the prediction has {logits.shape[0]} channels but the dataset's labels need "
            f"{label_manager.num_segmentation_heads}"
        )
    logits = logits.float().cpu().numpy()
    if not return_probabilities:
        segmentation = _segmentation_one_channel_at_a_time(logits, properties, configuration, plans, label_manager)
        return paste_into_original_geometry(segmentation, properties, plans)
    resampled = _resample_to_cropped_shape(logits, properties, configuration, plans)
    if resampled is logits:
        resampled = resampled.copy()  # the caller's logits stay as they were
    probabilities = _apply_nonlinearity_in_place(resampled, label_manager)
    segmentation = paste_into_original_geometry(_segmentation(probabilities, label_manager), properties, plans)
    probabilities = _uncrop_probabilities(probabilities, properties, label_manager)
    return segmentation, probabilities.transpose([0] + [a + 1 for a in plans.transpose_backward])


def export_prediction_from_logits(
    logits: torch.Tensor | np.ndarray,
    properties: dict[str, Any],
    configuration: ConfigurationPlans,
    plans: Plans,
    dataset_json: DatasetJson | dict | str | os.PathLike,
    output_file_truncated: str | os.PathLike,
    save_probabilities: bool = False,
    reader_writer: BaseReaderWriter | None = None,
) -> str:
    """Write ``output_file_truncated + file_ending`` (and ``.npz`` + ``.pkl`` with probabilities); return the seg path.

    The writer is the plans' ``image_reader_writer`` unless ``reader_writer`` is given. Every file
    appears only once it is complete.
    """
    if isinstance(dataset_json, (str, os.PathLike)):
        dataset_json = DatasetJson.load(dataset_json)
    elif isinstance(dataset_json, dict):
        dataset_json = DatasetJson.from_dict(dataset_json)
    configuration, plans = as_configuration_plans(configuration), as_plans(plans)
    result = convert_logits_to_segmentation_with_correct_shape(
        logits, properties, configuration, plans, dataset_json, return_probabilities=save_probabilities
    )
    if isinstance(result, tuple):
        segmentation, probabilities = result
    else:
        segmentation, probabilities = result, None
    if reader_writer is None:
        from nnunetv2.imageio.registry import reader_writer_class_from_name

        reader_writer = reader_writer_class_from_name(plans.image_reader_writer)()
    output_file_truncated = str(output_file_truncated)
    if probabilities is not None:
        save_npz_compressed(output_file_truncated + ".npz", probabilities=probabilities)
        with atomic_path(output_file_truncated + ".pkl") as tmp:
            with open(tmp, "wb") as f:
                pickle.dump(properties, f)
    # the segmentation comes last: when it exists, so do the .npz and .pkl (--continue_prediction relies
    # on that); its temporary name keeps the ending because writers choose the format by it
    output_file = output_file_truncated + dataset_json.file_ending
    with atomic_path(output_file, suffix=dataset_json.file_ending) as tmp:
        try:
            reader_writer.write_seg(segmentation, str(tmp), properties)
        except ImageIOError as e:  # name the file the user asked for, not its temporary name
            temporary = rf"{re.escape(str(tmp.parent))}/\.{re.escape(Path(output_file).name)}[^:\s]*"
            raise ImageIOError(re.sub(temporary, output_file, str(e))) from None
    logger.debug("wrote %s", output_file)
    return output_file
