"""After training: predict every validation case in full, export it in raw geometry, and score it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.dataset.preprocessed_case import load_preprocessed_case
from nnunetv2.dataset.previous_stage import (
    append_previous_stage_channels,
    next_stage_folder,
    open_previous_stage_segmentation,
    save_next_stage_segmentation,
)
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans
from nnunetv2.training.ddp import DistributedContext

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

VALIDATION_FOLDER_NAME = "validation"


def next_stage_names(configuration: ConfigurationPlans) -> list[str]:
    """Return the configurations that take this one's predictions as input (3d_lowres -> cascade)."""
    if configuration.next_stage is None:
        return []
    return [configuration.next_stage] if isinstance(configuration.next_stage, str) else list(configuration.next_stage)


def export_for_next_stages(
    logits: torch.Tensor,
    case_id: str,
    plans: Plans,
    configuration: ConfigurationPlans,
    label_manager: LabelManager,
    preprocessed_dataset_folder: Path,
    model_folder_path: Path,
) -> None:
    """Save the segmentation at each next stage's preprocessed shape as ``predicted_next_stage/<stage>/<case>.b2nd``.

    As in nnU-Net v2 the folder is shared by the folds of the model (each case is validated in one
    fold); the cascade reads it as extra input channels.
    """
    from nnunetv2.dataset.preprocessed_case import open_preprocessed_case
    from nnunetv2.preprocessing.resampling import resampling_function_by_name

    probabilities = None
    for stage in next_stage_names(configuration):
        stage_configuration = plans.configuration(stage)
        stage_data_folder = preprocessed_dataset_folder / stage_configuration.data_identifier
        if not (stage_data_folder / f"{case_id}.b2nd").is_file():
            logger.warning(
                "%s: case '%s' is not preprocessed for %s; no input for that stage saved",
                stage_data_folder,
                case_id,
                stage,
            )
            continue
        target_shape = list(open_preprocessed_case(stage_data_folder, case_id)[0].shape[1:])
        if probabilities is None:
            probabilities = label_manager.apply_inference_nonlinearity(logits).float().cpu().numpy()
        resample = resampling_function_by_name(configuration.resampling_fn_probabilities)
        resampled = resample(
            probabilities,
            target_shape,
            configuration.spacing,
            stage_configuration.spacing,
            **configuration.resampling_fn_probabilities_kwargs,
        )
        save_next_stage_segmentation(
            label_manager.probabilities_to_segmentation(resampled), next_stage_folder(model_folder_path, stage), case_id
        )


def predict_validation_cases(
    network,
    case_ids: Sequence[str],
    data_folder: Path,
    output_folder: Path,
    plans: Plans,
    configuration: ConfigurationPlans,
    dataset_json: DatasetJson,
    mirror_axes: Sequence[int] | None,
    device,
    save_probabilities: bool = False,
    context: DistributedContext = DistributedContext(),
    model_folder_path: Path | None = None,
    previous_stage_folder: Path | None = None,
) -> None:
    """Sliding-window predict this rank's share of ``case_ids`` and export each into ``output_folder``.

    With ``model_folder_path`` and a configuration that has a next stage (3d_lowres), the
    cascade's input is saved too. A cascade stage gets ``previous_stage_folder``: the previous
    stage's segmentations become extra one-hot input channels, as in training.
    """
    import torch

    from nnunetv2.inference.export import export_prediction_from_logits
    from nnunetv2.inference.sliding_window import sliding_window_predict
    from nnunetv2.utilities.progress import progress_bar

    label_manager = LabelManager.from_dataset_json(dataset_json)
    output_folder.mkdir(parents=True, exist_ok=True)
    my_cases = list(case_ids)[context.rank :: context.world_size]
    for case_id in progress_bar(my_cases, desc="validation", unit="case", disable=not context.is_main):
        data, _, properties = load_preprocessed_case(data_folder, case_id)
        properties.pop("class_locations", None)  # sampling aid only; no use in the exported .pkl
        if previous_stage_folder is not None:
            data = append_previous_stage_channels(
                data,
                open_previous_stage_segmentation(previous_stage_folder, case_id)[:],
                label_manager.foreground_labels,
            )
        logits = sliding_window_predict(
            network,
            torch.from_numpy(data),
            configuration.patch_size,
            label_manager.num_segmentation_heads,
            step_size=0.5,
            mirror_axes=mirror_axes,
            use_gaussian=True,
            device=device,
        )
        export_prediction_from_logits(
            logits,
            properties,
            configuration,
            plans,
            dataset_json,
            str(output_folder / case_id),
            save_probabilities=save_probabilities,
        )
        if model_folder_path is not None:
            export_for_next_stages(
                logits, case_id, plans, configuration, label_manager, data_folder.parent, model_folder_path
            )
    context.barrier()


def evaluate_validation_folder(
    output_folder: Path, gt_folder: Path, plans: Plans, dataset_json: DatasetJson
) -> dict[str, Any]:
    """Score the exported predictions against ``gt_segmentations``; writes ``summary.json`` and returns it."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
    from nnunetv2.imageio.registry import reader_writer_class_from_name

    label_manager = LabelManager.from_dataset_json(dataset_json)
    # chill: gt_segmentations holds every case, the validation folder only this fold's
    summary = compute_metrics_on_folder(
        str(gt_folder),
        str(output_folder),
        str(output_folder / "summary.json"),
        reader_writer_class_from_name(plans.image_reader_writer),
        dataset_json.file_ending,
        label_manager.foreground_labels_or_regions,
        ignore_label=label_manager.ignore_label,
        num_processes=1,
        chill=True,
    )
    # the trainer's log reports the figure (once); here it is only recorded
    logger.debug("validation mean Dice (foreground): %.4f", summary["foreground_mean"]["Dice"])
    return summary
