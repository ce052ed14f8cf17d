"""Find a trainer class by name (``-tr``): in nnunetv2.training.trainers, or ``package.module:ClassName``."""

from __future__ import annotations

import importlib
import pkgutil

from nnunetv2.exceptions import TrainingError

TRAINERS_PACKAGE = "nnunetv2.training.trainers"


def _check_trainer(candidate: object, name: str) -> type:
    from nnunetv2.training.trainers.nnunet_trainer import nnUNetTrainer

    if not (isinstance(candidate, type) and issubclass(candidate, nnUNetTrainer)):
        raise TrainingError(f"'{name}' is not a subclass of nnUNetTrainer")
    return candidate


def find_trainer_class(name: str) -> type:
    """Return the trainer class called ``name``; ``module:Class`` imports the user's own module."""
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise TrainingError(f"cannot import module '{module_name}' for trainer '{name}' ({e})") from None
        if not hasattr(module, class_name):
            raise TrainingError(f"module '{module_name}' has no class '{class_name}'")
        return _check_trainer(getattr(module, class_name), name)
    package = importlib.import_module(TRAINERS_PACKAGE)
    # modules are imported one by one until the name turns up; trainer modules must stay light
    # (never timm/torchvision) because any of them may be imported here
    for module_info in pkgutil.walk_packages(package.__path__, prefix=f"{TRAINERS_PACKAGE}."):
        module = importlib.import_module(module_info.name)
        if isinstance(getattr(module, name, None), type):
            return _check_trainer(getattr(module, name), name)
    raise TrainingError(
        f"trainer '{name}' not found in {TRAINERS_PACKAGE} (for a class of your own use -tr package.module:ClassName)"
    )
