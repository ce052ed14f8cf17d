"""Pick the best trained model or two-model ensemble by cross-validation Dice, and its postprocessing.

For each requested (trainer, plans, configuration) the folds' validation predictions are merged
and scored; every pair of models with validation probabilities (``--npz``) is ensembled and
scored too. The highest foreground mean Dice wins (ties go to the simpler candidate: single
models before ensembles, in request order). Postprocessing is decided on the winner, and
``inference_information.json`` plus ``inference_instructions.txt`` (the commands to run) are
written into ``nnUNet_results/DatasetXXX/``.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnunetv2 import paths
from nnunetv2.exceptions import EvaluationError, NnUNetError
from nnunetv2.model_selection.accumulate_cv_results import (
    DEFAULT_FOLDS,
    accumulate_cv_results,
    crossval_results_folder,
    folds_to_string,
    reference_folder_for_dataset,
)
from nnunetv2.utilities.file_io import save_json

logger = logging.getLogger(__name__)

DEFAULT_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")
INFORMATION_FILE = "inference_information.json"
INSTRUCTIONS_FILE = "inference_instructions.txt"
ENSEMBLES_FOLDER = "ensembles"
DEFAULT_NUM_PROCESSES_IN_COMMANDS = 8


@dataclass(frozen=True)
class TrainedModelSpec:
    """One trained model: nnU-Net v2's (trainer, plans identifier, configuration) triple."""

    trainer: str
    plans: str
    configuration: str

    @property
    def identifier(self) -> str:
        """The model folder name, ``{trainer}__{plans}__{configuration}``."""
        return f"{self.trainer}__{self.plans}__{self.configuration}"


def models_from_names(
    trainers: Sequence[str], configurations: Sequence[str], plans_identifiers: Sequence[str]
) -> list[TrainedModelSpec]:
    """Every combination of the given trainers, configurations and plans, in that nesting order."""
    return [TrainedModelSpec(t, p, c) for t in trainers for c in configurations for p in plans_identifiers]


def ensemble_name(first: TrainedModelSpec, second: TrainedModelSpec, folds: Sequence[int]) -> str:
    """``ensemble___{model1}___{model2}___{folds}``, nnU-Net v2's ensemble folder name."""
    return f"ensemble___{first.identifier}___{second.identifier}___{folds_to_string(folds)}"


def _configuration_in_plans(dataset_name: str, model: TrainedModelSpec) -> bool | None:
    """Whether the preprocessed plans define the model's configuration (None when the plans are unreadable)."""
    from nnunetv2.formats.plans import Plans

    plans_file = paths.preprocessed_folder() / dataset_name / f"{model.plans}.json"
    try:
        return model.configuration in Plans.load(plans_file).configurations
    except NnUNetError:
        return None


def available_models(dataset_name: str, models: Sequence[TrainedModelSpec]) -> list[TrainedModelSpec]:
    """The requested models that were trained; a configuration the plans lack is skipped, a missing
    folder of one they define is an error."""
    from nnunetv2.formats.model_folder import model_folder

    found = []
    for model in models:
        folder = model_folder(dataset_name, model.trainer, model.plans, model.configuration)
        if folder.is_dir():
            found.append(model)
            continue
        in_plans = _configuration_in_plans(dataset_name, model)
        if in_plans:
            raise EvaluationError(
                f"{folder}: not found; train {model.identifier} (all requested folds; with --npz "
                f"to allow ensembles) or leave configuration {model.configuration} out with -c"
            )
        logger.info(
            "skipping %s: %s",
            model.identifier,
            "configuration not in the plans" if in_plans is False else "no model folder",
        )
    if not found:
        raise EvaluationError(
            f"none of the requested models is trained for {dataset_name} (looked for "
            f"{', '.join(m.identifier for m in models)} in {paths.results_folder() / dataset_name})"
        )
    return found


def _score(summary: dict[str, Any]) -> float:
    dice = summary["foreground_mean"]["Dice"]
    return -math.inf if dice is None or math.isnan(dice) else float(dice)


def find_best_configuration(
    dataset_name_or_id: str | int,
    models: Sequence[TrainedModelSpec | dict[str, str]],
    allow_ensembling: bool = True,
    num_processes: int = 1,
    overwrite: bool = True,
    folds: Sequence[int] = DEFAULT_FOLDS,
) -> dict[str, Any]:
    """Compare the models (and their pairwise ensembles), decide postprocessing for the best one, write
    inference_information.json and inference_instructions.txt; returns the information written plus
    ``information_file`` and ``instructions_file`` (their paths)."""
    from nnunetv2.ensembling.ensemble import ensemble_crossvalidations, has_crossval_probabilities
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder_with_plans
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.postprocessing.determine import determine_postprocessing
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    dataset_name = convert_id_to_dataset_name(dataset_name_or_id)
    folds = [int(f) for f in folds]
    # nnU-Net v2 passes models as {"trainer", "plans", "configuration"} dicts; accept those too
    specs = [
        m if isinstance(m, TrainedModelSpec) else TrainedModelSpec(m["trainer"], m["plans"], m["configuration"])
        for m in models
    ]
    trained = available_models(dataset_name, list(dict.fromkeys(specs)))
    reference = reference_folder_for_dataset(dataset_name)
    folders = {m: model_folder(dataset_name, m.trainer, m.plans, m.configuration) for m in trained}

    candidates: dict[str, tuple[list[TrainedModelSpec], Path, float]] = {}
    for model, folder in folders.items():
        merged = crossval_results_folder(folder, folds)
        summary = accumulate_cv_results(folder, merged, folds, num_processes, overwrite, reference)
        candidates[model.identifier] = ([model], merged, _score(summary))

    if allow_ensembling and len(trained) > 1:
        with_probabilities = [m for m in trained if has_crossval_probabilities(folders[m], folds)]
        for model in trained:
            if model not in with_probabilities:
                logger.warning(
                    "%s has no validation probabilities (.npz) for every case of folds %s; it is not "
                    "ensembled (train or validate with --npz to allow that)",
                    model.identifier,
                    folds_to_string(folds),
                )
        for first, second in itertools.combinations(with_probabilities, 2):
            name = ensemble_name(first, second, folds)
            output = paths.results_folder() / dataset_name / ENSEMBLES_FOLDER / name
            ensemble_crossvalidations([folders[first], folders[second]], output, folds, num_processes, overwrite)
            summary = compute_metrics_on_folder_with_plans(
                reference,
                output,
                output / "dataset.json",
                output / "plans.json",
                output / "summary.json",
                num_processes,
                chill=True,
            )
            candidates[name] = ([first, second], output, _score(summary))

    for name, (_, _, score) in candidates.items():
        logger.info("%s: %.5f", name, score)
    best_name = max(candidates, key=lambda n: candidates[n][2])  # max keeps the first of equal scores
    best_models, best_folder, best_score = candidates[best_name]
    logger.info("best: %s (foreground mean Dice %.5f); determining its postprocessing", best_name, best_score)
    postprocessing = determine_postprocessing(best_folder, reference, num_processes=num_processes)

    information = {
        "folds": folds,
        "dataset_name_or_id": dataset_name,
        "considered_models": [
            {"plans": m.plans, "configuration": m.configuration, "trainer": m.trainer} for m in trained
        ],
        "ensembling_allowed": allow_ensembling,
        # a candidate without any scorable case has no score (JSON has no -inf)
        "all_results": {name: score if math.isfinite(score) else None for name, (_, _, score) in candidates.items()},
        "best_model_or_ensemble": {
            "result_on_crossval_pre_pp": postprocessing.dice_before,
            "result_on_crossval_post_pp": postprocessing.dice_after,
            "postprocessing_file": str(postprocessing.postprocessing_file),
            "some_plans_file": str(best_folder / "plans.json"),
            "selected_model_or_models": [
                {"configuration": m.configuration, "trainer": m.trainer, "plans_identifier": m.plans}
                for m in best_models
            ],
        },
    }
    dataset_results = paths.results_folder() / dataset_name
    save_json(information, dataset_results / INFORMATION_FILE)
    text = write_inference_instructions(information, dataset_results / INSTRUCTIONS_FILE)
    logger.info("\n%s", text)
    return {
        **information,
        "information_file": str(dataset_results / INFORMATION_FILE),
        "instructions_file": str(dataset_results / INSTRUCTIONS_FILE),
    }


def _predict_command(
    dataset: str,
    model: dict[str, str],
    folds: Sequence[int],
    output_folder: str,
    save_probabilities: bool,
    previous_stage_folder: str | None = None,
) -> str:
    command = (
        f"nnUNetv2_predict -d {dataset} -i INPUT_FOLDER -o {output_folder} -f {' '.join(map(str, folds))} "
        f"-tr {model['trainer']} -c {model['configuration']} -p {model['plans_identifier']}"
    )
    if previous_stage_folder is not None:
        command += f" -prev_stage_predictions {previous_stage_folder}"
    return command + (" --save_probabilities" if save_probabilities else "")


def _previous_stage(dataset: str, model: dict[str, str]) -> str | None:
    """The configuration a cascade stage builds on, read from the model folder's plans (None if not a cascade)."""
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.formats.plans import Plans

    folder = model_folder(dataset, model["trainer"], model["plans_identifier"], model["configuration"])
    try:
        return Plans.load(folder / "plans.json").configuration(model["configuration"]).previous_stage
    except NnUNetError:
        return None


def inference_instructions(information: dict[str, Any]) -> str:
    """Return the shell commands that predict, ensemble and postprocess as the chosen model or ensemble."""
    dataset, folds = information["dataset_name_or_id"], information["folds"]
    best = information["best_model_or_ensemble"]
    selected = best["selected_model_or_models"]
    is_ensemble = len(selected) > 1
    lines = ["Run inference like this:", ""]
    if is_ensemble:
        lines += ["An ensemble won. Predict with each member (keeping the probabilities):", ""]
    outputs = []
    for index, model in enumerate(selected, start=1):
        output = f"OUTPUT_FOLDER_MODEL_{index}" if is_ensemble else "OUTPUT_FOLDER"
        outputs.append(output)
        previous = _previous_stage(dataset, model)
        if previous is not None:
            previous_output = f"{output}_PREV_STAGE"
            lines.append(_predict_command(dataset, {**model, "configuration": previous}, folds, previous_output, False))
            lines.append(_predict_command(dataset, model, folds, output, is_ensemble, previous_output))
        else:
            lines.append(_predict_command(dataset, model, folds, output, is_ensemble))
    if is_ensemble:
        lines += [
            "",
            "Then ensemble them:",
            "",
            f"nnUNetv2_ensemble -i {' '.join(outputs)} -o OUTPUT_FOLDER -np {DEFAULT_NUM_PROCESSES_IN_COMMANDS}",
        ]
    lines += [
        "",
        "Once inference is done, postprocess:",
        "",
        f"nnUNetv2_apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file "
        f"{best['postprocessing_file']} -np {DEFAULT_NUM_PROCESSES_IN_COMMANDS} -plans_json "
        f"{best['some_plans_file']}",
        "",
    ]
    return "\n".join(lines)


def write_inference_instructions(information: dict[str, Any], instructions_file: str | Path) -> str:
    """Write (atomically) and return the inference instructions for ``information``."""
    from nnunetv2.utilities.file_io import atomic_path

    text = inference_instructions(information)
    with atomic_path(instructions_file) as tmp:
        tmp.write_text(text)
    return text
