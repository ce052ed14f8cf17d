"""Test helper: nnU-Net folders with a tiny generated dataset, a barely trained preliminary model, a pool with
simulated correction scribbles and a test set, ready for nnUNetv2_scribble_loop.

Import as ``from tests.scribble_loop.loop_setup import ...`` (pyproject's pytest ``pythonpath`` puts the
repository root on sys.path).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nnunetv2.dataset.synthetic import generate_synthetic_dataset_in_raw
from nnunetv2.experiment_planning.pipeline import plan_and_preprocess
from nnunetv2.formats.model_folder import model_folder
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.inference.predictor import predict_from_model_folder
from nnunetv2.scribble_loop.correction_scribbles import simulate_correction_scribbles
from nnunetv2.training.run_training import TrainingRequest, build_trainer
from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name
from tests.helpers.tiny_models import ARCHITECTURE

NNUNET_FOLDERS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


def use_nnunet_folders(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Point the nnU-Net folder variables at ``root``'s folders and keep torch to one thread."""
    for var in NNUNET_FOLDERS:
        monkeypatch.setenv(var, str(root / var))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


@contextlib.contextmanager
def prepared_scribble_loop(
    root: Path, dataset_id: int, name: str, unannotated: int, **generator_kwargs: Any
) -> Iterator[list[str]]:
    """Within the context, ``root`` holds nnU-Net folders (the variables point there) with a preprocessed
    3-case dataset and a preliminary model (fold 'all', 1 epoch x 2 iterations, tiny U-Net), ``pool/`` (images,
    labels) of 3 cases with simulated correction scribbles in ``scribbles/`` for the first two (undrawn:
    ``unannotated``) and ``test/`` of 2 cases; yields the 5 case names (pool first)."""
    with pytest.MonkeyPatch.context() as mp:
        for var in NNUNET_FOLDERS:
            (root / var).mkdir()
        use_nnunet_folders(mp, root)
        raw = generate_synthetic_dataset_in_raw(
            dataset_id, name, num_cases=3, num_test_cases=5, shape=(10, 20, 20), **generator_kwargs
        )
        plan_and_preprocess([dataset_id], configurations=["3d_fullres"], show_progress=False)
        dataset_name = convert_id_to_dataset_name(dataset_id)
        plans_file = root / "nnUNet_preprocessed" / dataset_name / "nnUNetPlans.json"
        plans = json.loads(plans_file.read_text())
        configuration = plans["configurations"]["3d_fullres"]
        configuration["architecture"] = ARCHITECTURE  # fast on a CPU
        # the planned patch fits the planned topology only (seed 2 plans 7 slices with no pooling along z); the
        # tiny U-Net halves every axis, so each patch edge must be a multiple of its total stride
        total_stride = np.prod(ARCHITECTURE["arch_kwargs"]["strides"], axis=0)
        configuration["patch_size"] = [int(-(-n // s) * s) for n, s in zip(configuration["patch_size"], total_stride)]
        plans_file.write_text(json.dumps(plans))
        build_trainer(
            TrainingRequest(
                dataset_id,
                "3d_fullres",
                "all",
                num_epochs=1,
                num_iterations_per_epoch=2,
                num_val_iterations_per_epoch=1,
                seed=0,
                num_data_workers=0,
            )
        ).run_training()

        cases = sorted(p.name[: -len("_0000.nii.gz")] for p in (raw / "imagesTs").glob("*_0000.nii.gz"))
        for subset, names in (("pool", cases[:3]), ("test", cases[3:])):
            for case in names:
                for kind, file in (("images", f"{case}_0000.nii.gz"), ("labels", f"{case}.nii.gz")):
                    (root / subset / kind).mkdir(parents=True, exist_ok=True)
                    shutil.copy(raw / ("imagesTs" if kind == "images" else "labelsTs") / file, root / subset / kind)
        predict_from_model_folder(
            root / "pool" / "images",
            root / "preliminary",
            model_folder(dataset_name, "nnUNetTrainer", "nnUNetPlans", "3d_fullres"),
            folds=["all"],
            num_processes_preprocessing=1,
            num_processes_segmentation_export=1,
            show_progress=False,
        )
        io = SimpleITKIO()
        (root / "scribbles").mkdir()
        for case in cases[:2]:  # the third pool case gets no scribble file
            reference, properties = io.read_seg(root / "pool" / "labels" / f"{case}.nii.gz")
            prediction, _ = io.read_seg(root / "preliminary" / f"{case}.nii.gz")
            scribbles = simulate_correction_scribbles(
                reference[0].astype(np.int64),
                prediction[0].astype(np.int64),
                unannotated,
                budget=0.5,
                min_region_size=3,
                seed=0,
            )
            assert (scribbles != unannotated).any()
            io.write_seg(scribbles, root / "scribbles" / f"{case}.nii.gz", properties)
        yield cases
