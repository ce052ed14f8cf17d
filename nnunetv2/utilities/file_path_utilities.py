"""nnU-Net v2's ``nnunetv2.utilities.file_path_utilities``, on our model-folder layout (``nnunetv2.formats``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from nnunetv2.formats.model_folder import model_folder
from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name  # noqa: F401 (as upstream)


def convert_trainer_plans_config_to_identifier(trainer_name: str, plans_identifier: str, configuration: str) -> str:
    """``Trainer__Plans__configuration``."""
    return f"{trainer_name}__{plans_identifier}__{configuration}"


def convert_identifier_to_trainer_plans_config(identifier: str) -> list[str]:
    """The inverse of ``convert_trainer_plans_config_to_identifier`` (basename of a model folder)."""
    return os.path.basename(identifier).split("__")


def get_output_folder(
    dataset_name_or_id: str | int,
    trainer_name: str = "nnUNetTrainer",
    plans_identifier: str = "nnUNetPlans",
    configuration: str = "3d_fullres",
    fold: int | str | None = None,
) -> str:
    """The model folder under nnUNet_results (``.../fold_X`` when ``fold`` is given)."""
    folder = model_folder(convert_id_to_dataset_name(dataset_name_or_id), trainer_name, plans_identifier, configuration)
    return str(folder if fold is None else folder / f"fold_{fold}")


def parse_dataset_trainer_plans_configuration_from_path(path: str) -> tuple:
    """``(dataset, trainer, plans, configuration)`` of a path inside a model folder."""
    parts = os.path.normpath(path).split(os.sep)
    for i, part in enumerate(parts):
        if part.startswith("Dataset") and i + 1 < len(parts) and parts[i + 1].count("__") == 2:
            return (part, *parts[i + 1].split("__"))
    raise RuntimeError(f"{path}: not inside DatasetXXX_Name/Trainer__Plans__configuration")


def get_ensemble_name(model1_folder: str, model2_folder: str, folds: Sequence[int]) -> str:
    """``ensemble___A___B___0_1_2_3_4``, nnU-Net v2's ensemble folder name."""
    identifier = "ensemble___" + os.path.basename(model1_folder) + "___" + os.path.basename(model2_folder)
    return identifier + "___" + folds_tuple_to_string(folds)


def folds_tuple_to_string(folds: Sequence[int]) -> str:
    """``(0, 1, 2)`` -> ``'0_1_2'``."""
    return "_".join(str(f) for f in folds)


def folds_string_to_tuple(folds_string: str) -> list[int | str]:
    """``'0_1_2'`` -> ``[0, 1, 2]``."""
    return [f if f == "all" else int(f) for f in folds_string.split("_")]
