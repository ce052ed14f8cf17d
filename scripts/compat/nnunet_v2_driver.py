"""Run an nnU-Net v2 command inside nnU-Net v2's own venv, with a narrower trainer search.

    <ref venv>/bin/python nnunet_v2_driver.py train 501 3d_fullres 0 -tr nnUNetTrainer_1epoch -device cpu
    <ref venv>/bin/python nnunet_v2_driver.py [--float32-accumulation] predict_from_modelfolder -i ... -o ... -m ...

nnU-Net v2 finds a trainer class by importing every module under its trainer package until one
defines the name. Some of those modules (the Primus trainers) import timm and so torchvision,
which fails to load beside a CPU-only torch build ("operator torchvision::nms does not exist"),
so any trainer other than the base ``nnUNetTrainer`` cannot be found, for training or for
prediction. This driver looks in the two modules the compatibility check needs first and
otherwise falls back to nnU-Net v2's own search; nothing else of nnU-Net v2 is changed.

``--float32-accumulation`` (a diagnostic) makes nnU-Net v2's sliding window sum the tiles' logits
in float32 instead of float16, by pointing ``torch.half`` at float32 in this process only.
"""

from __future__ import annotations

import importlib
import sys

TRAINER_MODULES = (
    "nnunetv2.training.nnUNetTrainer.nnUNetTrainer",
    "nnunetv2.training.nnUNetTrainer.variants.training_length.nnUNetTrainer_Xepochs",
)


def main() -> None:
    """Dispatch ``train`` / ``predict_from_modelfolder`` / ``predict`` to nnU-Net v2's entry points."""
    if len(sys.argv) > 1 and sys.argv[1] == "--float32-accumulation":
        import torch

        sys.argv.pop(1)
        # the accumulators are allocated with dtype=torch.half when a case is predicted
        torch.half = torch.float32
    import nnunetv2.inference.predict_from_raw_data as prediction
    import nnunetv2.run.run_training as training
    import nnunetv2.utilities.find_objects as find_objects

    full_search = find_objects.recursive_find_trainer_class_by_name

    def find_trainer(name: str):
        for module in TRAINER_MODULES:
            found = getattr(importlib.import_module(module), name, None)
            if found is not None:
                return found
        return full_search(name)

    # both modules bound the function at import time, so patch their names
    training.recursive_find_trainer_class_by_name = find_trainer
    prediction.recursive_find_trainer_class_by_name = find_trainer
    entry_points = {
        "train": training.run_training_entry,
        "predict_from_modelfolder": prediction.predict_entry_point_modelfolder,
        "predict": prediction.predict_entry_point,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in entry_points:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(entry_points)}}} ARGS...")
    command = sys.argv.pop(1)
    sys.argv[0] = f"nnUNetv2_{command}"
    entry_points[command]()


if __name__ == "__main__":
    main()
