"""Reuse one dataset's plans for another (nnUNetv2_move_plans_between_datasets), for pretraining.

Pretrain on dataset S, fine-tune on dataset T: both must be planned with the *same* plans so the
network fits the weights. This copies ``nnUNet_preprocessed/S/<source plans>.json`` to
``nnUNet_preprocessed/T/<target plans>.json`` with T's dataset name, T's image reader-writer and,
when the plans identifier changes, data identifiers renamed after it (so T's preprocessed data
does not overwrite data of T's own plans). nnU-Net v2's module path, function and arguments;
walk-through in documentation/planning_and_preprocessing.md.
"""

from __future__ import annotations

from nnunetv2 import paths
from nnunetv2.exceptions import PlansError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans
from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name


def move_plans_between_datasets(
    source_dataset_name_or_id: int | str,
    target_dataset_name_or_id: int | str,
    source_plans_identifier: str,
    target_plans_identifier: str | None = None,
):
    """Write the source plans as ``nnUNet_preprocessed/<target>/<target_plans_identifier>.json``; return that path."""
    from nnunetv2.dataset.cases import list_training_cases
    from nnunetv2.imageio.registry import reader_writer_for_dataset

    source_name = convert_id_to_dataset_name(source_dataset_name_or_id)
    target_name = convert_id_to_dataset_name(target_dataset_name_or_id)
    target_identifier = target_plans_identifier or source_plans_identifier
    source_file = paths.preprocessed_folder() / source_name / f"{source_plans_identifier}.json"
    if not source_file.is_file():
        raise PlansError(f"{source_file}: source plans not found (plan dataset {source_name} first)")
    plans = Plans.load(source_file).to_dict()
    plans["dataset_name"] = target_name
    if target_identifier != source_plans_identifier:
        for configuration in plans["configurations"].values():
            old = configuration.get("data_identifier")
            if old is None:
                continue
            if old.startswith(source_plans_identifier):
                configuration["data_identifier"] = target_identifier + old[len(source_plans_identifier) :]
            else:
                configuration["data_identifier"] = f"{target_identifier}_{old}"
    target_raw = paths.raw_folder() / target_name
    if not (target_raw / "dataset.json").is_file():
        raise PlansError(f"{target_raw / 'dataset.json'}: raw dataset of the target not found")
    dataset_json = DatasetJson.load(target_raw / "dataset.json")
    cases = list_training_cases(target_raw, dataset_json)
    example = next(iter(cases.values()))["images"][0] if cases else None
    plans["image_reader_writer"] = reader_writer_for_dataset(dataset_json, str(example) if example else None).__name__
    plans["plans_name"] = target_identifier
    target_folder = paths.preprocessed_folder() / target_name
    target_folder.mkdir(parents=True, exist_ok=True)
    target_file = target_folder / f"{target_identifier}.json"
    Plans.from_dict(plans, source=str(target_file)).save(target_file)
    return target_file
