"""Predict a folder of images with every checkpoint of a checkpoint ensemble (nnUNetv2_predict_checkpoints).

Each case is preprocessed once into a temporary folder; then each checkpoint is loaded once and
run on every case, and its probabilities are exported to the image's raw geometry. Output layout::

    OUT/checkpoint_predictions.json           members, cases and settings of the run
    OUT/plans.json, OUT/dataset.json
    OUT/checkpoints/fold_{k}/{checkpoint}/    one folder per member (plans.json, dataset.json too)
        CASE.npz   key 'probabilities': (C, *raw shape) float16 softmax of that checkpoint
        CASE.pkl   the properties needed to write files in the image's geometry

float16 halves disk and reading time; its resolution (<= 5e-4 near 1) is far below the spread
between checkpoints. Each member folder is an ordinary prediction folder (nnUNetv2_ensemble reads it).
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnunetv2.exceptions import InferenceError
from nnunetv2.formats.checkpoint_index import ensemble_checkpoint_files, folds_with_checkpoint_index
from nnunetv2.utilities.file_io import atomic_path, save_json, save_npz_compressed

logger = logging.getLogger(__name__)

RUN_INDEX_FILE = "checkpoint_predictions.json"
MEMBERS_FOLDER = "checkpoints"


@dataclass(frozen=True)
class EnsembleMember:
    """One checkpoint of one fold, and the folder its probabilities go to (relative to the output folder)."""

    fold: int | str
    checkpoint: str  # file name inside fold_{fold}

    @property
    def name(self) -> str:
        """The checkpoint's file name without ``.pth``."""
        return self.checkpoint[: -len(".pth")] if self.checkpoint.endswith(".pth") else self.checkpoint

    @property
    def relative_folder(self) -> str:
        """``checkpoints/fold_{k}/{name}``."""
        return f"{MEMBERS_FOLDER}/fold_{self.fold}/{self.name}"


def ensemble_members(
    model_folder: str | os.PathLike,
    folds: Sequence[int | str] | None = None,
    checkpoint_names: Sequence[str] | None = None,
) -> list[EnsembleMember]:
    """Return the checkpoints to predict with: each fold's index, or ``checkpoint_names`` in every fold.

    ``folds`` None means every fold with a checkpoint index (or, with ``checkpoint_names``, every
    fold holding the first of them).
    """
    from nnunetv2.formats.folds import parse_fold
    from nnunetv2.inference.trained_model import available_folds

    model_folder = Path(model_folder)
    if not model_folder.is_dir():
        raise InferenceError(f"{model_folder}: model folder not found")
    if folds is None:
        folds = (
            available_folds(model_folder, checkpoint_names[0])
            if checkpoint_names
            else folds_with_checkpoint_index(model_folder)
        )
        if not folds:
            what = checkpoint_names[0] if checkpoint_names else "a checkpoint_ensemble.json"
            raise InferenceError(
                f"{model_folder}: no fold_N folder holds {what}; train with -tr "
                f"nnUNetTrainerCyclicLR or name checkpoints with -chk"
            )
    members = []
    for fold in (parse_fold(f) for f in folds):
        fold_folder = model_folder / f"fold_{fold}"
        names = list(checkpoint_names) if checkpoint_names else ensemble_checkpoint_files(fold_folder)
        for name in names:
            if not (fold_folder / name).is_file():
                raise InferenceError(f"{fold_folder / name}: checkpoint of fold {fold} not found")
            members.append(EnsembleMember(fold, name))
    if len(set(members)) != len(members):
        raise InferenceError(f"{model_folder}: a checkpoint is listed twice; each may appear once per fold")
    return members


def _save_member_case(folder: Path, case_id: str, probabilities: np.ndarray, properties: dict[str, Any]) -> None:
    """Write CASE.pkl, then CASE.npz: the .npz exists only once the case is complete."""
    with atomic_path(folder / f"{case_id}.pkl") as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(properties, f)
    save_npz_compressed(folder / f"{case_id}.npz", probabilities=probabilities.astype(np.float16))


def predict_checkpoint_ensemble(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    model_folder: str | os.PathLike,
    folds: Sequence[int | str] | None = None,
    checkpoint_names: Sequence[str] | None = None,
    step_size: float = 0.5,
    use_mirroring: bool = True,
    temperature: float = 1.0,
    device: str | None = None,
    overwrite: bool = True,
    num_processes_preprocessing: int = 3,
    folder_with_segs_from_prev_stage: str | os.PathLike | None = None,
    show_progress: bool = True,
    flat_member_folders: bool = False,
) -> Path:
    """Predict every case of ``input_folder`` with every ensemble member; return the run's index file.

    Without ``overwrite`` a (member, case) whose .npz exists is kept (``--continue_prediction``).
    ``flat_member_folders`` (one fold only) puts each member in ``OUT/{checkpoint}/``, UnnUNet's layout.
    """
    from nnunetv2.inference.export import convert_logits_to_segmentation_with_correct_shape
    from nnunetv2.inference.prediction_inputs import list_prediction_cases
    from nnunetv2.inference.predictor import nnUNetPredictor
    from nnunetv2.uncertainty.guidance import ensemble_warnings
    from nnunetv2.utilities.progress import progress_bar

    output_folder = Path(output_folder)
    members = ensemble_members(model_folder, folds, checkpoint_names)
    member_folder = {m: m.name if flat_member_folders else m.relative_folder for m in members}
    if flat_member_folders and len({m.fold for m in members}) > 1:
        raise InferenceError("one folder per checkpoint (UnnUNet's layout) needs a single fold")
    # before the expensive part: a poor ensemble is better known now than after the prediction
    warnings = ensemble_warnings(model_folder, [{"fold": m.fold, "checkpoint": m.checkpoint} for m in members])
    predictor = nnUNetPredictor(
        tile_step_size=step_size, use_mirroring=use_mirroring, device=device, allow_tqdm=False, temperature=temperature
    )
    predictor.initialize_from_trained_model_folder(model_folder, [members[0].fold], members[0].checkpoint)
    model = predictor.model
    assert model is not None, "initialize_from_trained_model_folder sets the model"
    if model.label_manager.has_regions:
        raise InferenceError(
            f"{model_folder}: the model predicts regions (sigmoid outputs); checkpoint-ensemble "
            f"uncertainty needs softmax class probabilities"
        )
    configuration_name = model.configuration.name
    cases = list_prediction_cases(
        input_folder, output_folder, model.dataset_json, model.configuration, folder_with_segs_from_prev_stage
    )
    if not cases:
        raise InferenceError(f"{input_folder}: no cases to predict")

    for folder in [output_folder] + [output_folder / member_folder[m] for m in members]:
        folder.mkdir(parents=True, exist_ok=True)
        model.dataset_json.save(folder / "dataset.json")
        model.plans.save(folder / "plans.json")
    todo = {
        m: [
            c.case_id
            for c in cases
            if overwrite or not (output_folder / member_folder[m] / f"{c.case_id}.npz").is_file()
        ]
        for m in members
    }
    needed = {case_id for ids in todo.values() for case_id in ids}
    seconds: dict[str, float] = {}

    # the preprocessed cases wait on disk (not in memory) while the checkpoints take turns
    with tempfile.TemporaryDirectory(dir=output_folder, prefix=".preprocessed_") as scratch:
        start = time.perf_counter()
        properties: dict[str, dict[str, Any]] = {}
        to_preprocess = [c for c in cases if c.case_id in needed]
        for case_id, data, case_properties in predictor.preprocessed_cases(to_preprocess, num_processes_preprocessing):
            np.save(Path(scratch) / f"{case_id}.npy", data)
            properties[case_id] = case_properties
        seconds["preprocessing"] = time.perf_counter() - start

        # one step is one case predicted by one checkpoint; the postfix names the checkpoint at work
        progress = progress_bar(
            total=sum(map(len, todo.values())),
            desc="checkpoint x case predictions",
            unit="prediction",
            disable=not show_progress,
        )
        try:
            for number, member in enumerate(members):
                if not todo[member]:
                    continue
                start = time.perf_counter()
                progress.set_postfix_str(f"fold {member.fold} {member.name}")
                if number > 0:  # the first member is loaded already
                    predictor.initialize_from_trained_model_folder(model_folder, [member.fold], member.checkpoint)
                    model = predictor.model
                    assert model is not None, "initialize_from_trained_model_folder sets the model"
                if model.configuration.name != configuration_name:
                    raise InferenceError(
                        f"{Path(model_folder) / f'fold_{member.fold}' / member.checkpoint}: trained "
                        f"for configuration '{model.configuration.name}', not "
                        f"'{configuration_name}'"
                    )
                for case_id in todo[member]:
                    logits = predictor.predict_logits_from_preprocessed_data(np.load(Path(scratch) / f"{case_id}.npy"))
                    _, probabilities = convert_logits_to_segmentation_with_correct_shape(
                        logits,
                        properties[case_id],
                        model.configuration,
                        model.plans,
                        model.dataset_json,
                        return_probabilities=True,
                    )
                    _save_member_case(
                        output_folder / member_folder[member], case_id, probabilities, properties[case_id]
                    )
                    progress.update()
                seconds[member_folder[member]] = time.perf_counter() - start
        finally:
            progress.close()

    run_index = {
        "model_folder": str(Path(model_folder).resolve()),
        "configuration": configuration_name,
        "trainer_name": model.trainer_name,
        "temperature": temperature,
        "step_size": step_size,
        "use_mirroring": use_mirroring,
        "cases": [c.case_id for c in cases],
        "members": [{"fold": m.fold, "checkpoint": m.checkpoint, "folder": member_folder[m]} for m in members],
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "warnings": warnings,
    }
    save_json(run_index, output_folder / RUN_INDEX_FILE)
    logger.info("predicted %d case(s) with %d checkpoint(s) into %s", len(cases), len(members), output_folder)
    return output_folder / RUN_INDEX_FILE


def predict_checkpoint_ensemble_from_dataset_id(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    dataset_id_or_name: str | int,
    configuration: str,
    trainer_name: str = "nnUNetTrainerCyclicLR",
    plans_identifier: str = "nnUNetPlans",
    **kwargs: Any,
) -> Path:
    """``predict_checkpoint_ensemble`` with ``nnUNet_results/DatasetXXX/{trainer}__{plans}__{configuration}``."""
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    folder = model_folder(convert_id_to_dataset_name(dataset_id_or_name), trainer_name, plans_identifier, configuration)
    return predict_checkpoint_ensemble(input_folder, output_folder, folder, **kwargs)
