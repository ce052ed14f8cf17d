"""Planning entry points: find a planner class by name and plan a dataset in nnUNet_preprocessed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nnunetv2.exceptions import PlansError
from nnunetv2.experiment_planning.default_experiment_planner import ExperimentPlanner
from nnunetv2.utilities.file_io import load_json


def planner_class_from_name(name: str) -> type[ExperimentPlanner]:
    """Return the planner class called ``name`` in nnunetv2.experiment_planning, or from a 'module:Class' path."""
    import importlib
    import pkgutil

    import nnunetv2.experiment_planning as package

    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), class_name, None)
        except ImportError as e:
            raise PlansError(f"planner '{name}': cannot import module '{module_name}' ({e})") from None
        if not (isinstance(found, type) and issubclass(found, ExperimentPlanner)):
            raise PlansError(
                f"planner '{name}': '{class_name}' is not an ExperimentPlanner subclass in module '{module_name}'"
            )
        return found
    known: dict[str, type[ExperimentPlanner]] = {}
    for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(module_info.name)
        for attribute, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, ExperimentPlanner):
                known[attribute] = value
    if name not in known:
        raise PlansError(
            f"unknown planner '{name}' (known: {', '.join(sorted(known))}; or give your own as module:Class)"
        )
    return known[name]


def plan_experiment_for_dataset(
    dataset_id_or_name: str | int,
    planner_name: str = "ExperimentPlanner",
    gpu_memory_target_in_gb: float | None = None,
    overwrite_plans_name: str | None = None,
    preprocessor_name: str = "DefaultPreprocessor",
    overwrite_target_spacing: Sequence[float] | None = None,
) -> Path:
    """Plan a dataset from its fingerprint; return the path of the written plans file."""
    from nnunetv2 import paths
    from nnunetv2.experiment_planning.fingerprint import copy_dataset_json

    planner = planner_class_from_name(planner_name).from_dataset(
        dataset_id_or_name,
        gpu_memory_target_in_gb=gpu_memory_target_in_gb,
        plans_name=overwrite_plans_name,
        preprocessor_name=preprocessor_name,
        overwrite_target_spacing=overwrite_target_spacing,
    )
    plans = planner.plan_experiment()
    raw_folder = paths.raw_folder() / planner.dataset_name
    output_folder = paths.preprocessed_folder() / planner.dataset_name
    copy_dataset_json(raw_folder, output_folder)
    _copy_splits_from_raw(raw_folder, output_folder)
    return planner.save_plans(plans, output_folder)


def _copy_splits_from_raw(raw_folder: Path, output_folder: Path) -> None:
    """Use a splits_final.json shipped with the raw dataset (as nnU-Net v2 does); refuse a conflicting one."""
    from nnunetv2.utilities.file_io import save_json

    source = raw_folder / "splits_final.json"
    if not source.is_file():
        return
    target = output_folder / "splits_final.json"
    splits = load_json(source)
    if not target.is_file():
        save_json(splits, target)
        return
    existing = load_json(target)
    for fold, split in enumerate(splits):
        same = fold < len(existing) and all(set(split[k]) == set(existing[fold][k]) for k in ("train", "val"))
        if not same:
            raise PlansError(f"{target}: fold {fold} differs from {source}; delete one of them")
