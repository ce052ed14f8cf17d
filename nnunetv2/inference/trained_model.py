"""Load a trained model folder (nnU-Net v2 layout): plans, dataset.json, network and each fold's weights."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nnunetv2.dataset.label_manager import LabelManager
from nnunetv2.exceptions import InferenceError, NnUNetError, reason_of
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Fold = int | str


@dataclass
class TrainedModel:
    """Everything prediction needs from a model folder."""

    model_folder: Path
    plans: Plans
    configuration: ConfigurationPlans
    dataset_json: DatasetJson
    label_manager: LabelManager
    network: torch.nn.Module
    fold_weights: list[dict[str, torch.Tensor]]
    folds: list[Fold]
    trainer_name: str
    allowed_mirroring_axes: tuple[int, ...] | None

    @property
    def num_input_channels(self) -> int:
        """Image channels, plus one per foreground label for a cascade's previous-stage segmentation."""
        return num_input_channels(self.configuration, self.dataset_json, self.label_manager)


def num_input_channels(
    configuration: ConfigurationPlans, dataset_json: DatasetJson, label_manager: LabelManager
) -> int:
    """Network inputs: the image channels, plus one per foreground label in a cascade stage."""
    extra = len(label_manager.foreground_labels) if configuration.previous_stage else 0
    return dataset_json.num_channels + extra


def available_folds(model_folder: str | os.PathLike, checkpoint_name: str = "checkpoint_final.pth") -> list[int]:
    """Return the numbered folds of a model folder that hold ``checkpoint_name`` (``fold_all`` excluded)."""
    folds = []
    for child in Path(model_folder).glob("fold_*"):
        suffix = child.name[len("fold_") :]
        if suffix.isdigit() and (child / checkpoint_name).is_file():
            folds.append(int(suffix))
    return sorted(folds)


def _fold_checkpoint_paths(
    model_folder: Path, use_folds: Sequence[Fold] | None, checkpoint_name: str
) -> list[tuple[Fold, Path]]:
    if use_folds is None:
        folds: list[Fold] = list(available_folds(model_folder, checkpoint_name))
        if not folds:
            raise InferenceError(f"{model_folder}: no fold_N folder holds {checkpoint_name}")
        logger.info("using the folds found in %s: %s", model_folder, ", ".join(map(str, folds)))
    else:
        from nnunetv2.formats.folds import parse_fold

        folds = [parse_fold(f) for f in use_folds]
    paths = []
    for fold in folds:
        path = model_folder / f"fold_{fold}" / checkpoint_name
        if not path.is_file():
            found = available_folds(model_folder, checkpoint_name)
            where = (
                f"folds with {checkpoint_name}: {', '.join(map(str, found))}"
                if found
                else f"no fold has {checkpoint_name}"
            )
            raise InferenceError(f"{path}: checkpoint of fold {fold} not found ({where})")
        paths.append((fold, path))
    return paths


def load_trained_model(
    model_folder: str | os.PathLike,
    use_folds: Sequence[Fold] | None = None,
    checkpoint_name: str = "checkpoint_final.pth",
) -> TrainedModel:
    """Read a model folder: its plans and dataset.json, and the weights of ``use_folds`` (None: all found)."""
    from nnunetv2.architectures.network_builder import build_network
    from nnunetv2.formats.checkpoint_io import load_checkpoint, unwrap_state_dict

    model_folder = Path(model_folder)
    if not model_folder.is_dir():
        raise InferenceError(f"{model_folder}: model folder not found")
    for name in ("plans.json", "dataset.json"):
        if not (model_folder / name).is_file():
            raise InferenceError(f"{model_folder / name}: not found; is this a trained model folder?")
    plans = Plans.load(model_folder / "plans.json")
    dataset_json = DatasetJson.load(model_folder / "dataset.json")
    label_manager = LabelManager(
        dataset_json.labels, dataset_json.regions_class_order, source=str(model_folder / "dataset.json")
    )

    fold_weights, folds = [], []
    trainer_name, configuration_name, mirror_axes = "nnUNetTrainer", None, None
    for fold, path in _fold_checkpoint_paths(model_folder, use_folds, checkpoint_name):
        try:
            checkpoint = load_checkpoint(path)
        except NnUNetError as e:
            raise InferenceError(str(e)) from None
        try:
            this_configuration = checkpoint["init_args"]["configuration"]
        except (KeyError, TypeError):
            raise InferenceError(f"{path}: checkpoint lacks init_args['configuration']") from None
        if configuration_name is None:
            trainer_name = checkpoint.get("trainer_name", "nnUNetTrainer")
            configuration_name = this_configuration
            axes = checkpoint.get("inference_allowed_mirroring_axes")
            mirror_axes = tuple(int(a) for a in axes) if axes is not None else None
        elif this_configuration != configuration_name:
            raise InferenceError(
                f"{path}: trained for configuration '{this_configuration}', fold {folds[0]} for '{configuration_name}'"
            )
        fold_weights.append(unwrap_state_dict(checkpoint["network_weights"]))
        folds.append(fold)

    if configuration_name is None:
        raise InferenceError(f"{model_folder}: no checkpoint '{checkpoint_name}' in any fold")
    configuration = plans.configuration(configuration_name)
    configuration.check_patch_fits_network()  # plans.json's patch_size may have been edited to change the tile
    network = build_network(
        configuration.architecture,
        num_input_channels(configuration, dataset_json, label_manager),
        label_manager.num_segmentation_heads,
        deep_supervision=False,
    )
    try:
        network.load_state_dict(fold_weights[0])
    except RuntimeError as e:
        raise InferenceError(
            f"{model_folder}: the weights of fold {folds[0]} do not fit the network of the plans ({reason_of(e)})"
        ) from None
    network.eval()
    return TrainedModel(
        model_folder,
        plans,
        configuration,
        dataset_json,
        label_manager,
        network,
        fold_weights,
        folds,
        trainer_name,
        mirror_axes,
    )
