"""nnUNetv2_scribble_loop: rounds of fine-tuning on confidence-weighted pseudo labels, each followed by a new
prediction of the pool and new pseudo labels from the same scribbles.

Round 0 predicts the pool with the preliminary model and grows the scribbles into pseudo labels. Round
r >= 1 fine-tunes the previous round's network (round 1: the preliminary one) with
nnUNetTrainerConfidenceWeighted on the dataset's labeled cases plus round r-1's pseudo labels, predicts
the pool and regenerates the pseudo labels from the same scribbles; a voxel's label then changes from
round r-1's only to a class the new network gives at least ``update_min_probability`` (0: every voxel
takes the new label, as in the published loop). With ``refresh_every`` N the pseudo labels are also renewed
within a round, every N epochs (the published method's in-run refresh): the network after e epochs predicts
the pool into ``round_r/refresh_after_epoch_e/`` and training goes on, with one learning-rate decay and
optimiser state across the round, on the renewed pseudo labels. Layout::

    LOOP/loop_state.json    settings and finished rounds, rewritten atomically after every round
    LOOP/round_0/           predictions/ (+ probabilities), pseudo_labels/ (+ confidence/), metrics.json
    LOOP/round_r/           model/ (a model folder: plans.json, dataset.json, fold_all/checkpoint_final.pth),
                            predictions/, pseudo_labels/, test_predictions/, metrics.json

A run resumes where an earlier one stopped: finished rounds are skipped, and so are the finished
steps of an unfinished round (training continues from its checkpoint_latest, prediction case by case).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nnunetv2.exceptions import NnUNetError, TrainingError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import Plans
from nnunetv2.scribble_loop.loop_state import ResolvedLoop, ScribbleLoopRequest
from nnunetv2.utilities.file_io import load_json, save_json

logger = logging.getLogger(__name__)

STATE_FILE = "loop_state.json"
REFRESH_PREFIX = "refresh_after_epoch_"  # round_r/refresh_after_epoch_E/: an in-run pseudo-label refresh
METRICS_FILE = "metrics.json"
# settings that only say how or how long to run, or what to measure; changing them keeps a loop folder usable
_RUNTIME_SETTINGS = (
    "num_rounds",
    "device",
    "num_data_workers",
    "show_progress",
    "pool_reference",
    "test_images",
    "test_reference",
    "save_distance_maps",
)
# settings added after loop folders existed: a state file without them was made with these values
_LATER_SETTING_DEFAULTS = {"freeze_encoder": False, "reinit_decoder_stages": 0, "refresh_every": None}


def run_scribble_loop(request: ScribbleLoopRequest) -> list[dict[str, Any]]:
    """Run (or resume) the loop's rounds 0..num_rounds; return every round's metrics."""
    from nnunetv2.scribble_loop.loop_metrics import round_metrics

    loop = _resolve(request)
    state = _load_or_create_state(loop)
    for round_index in range(request.num_rounds + 1):
        if round_index in state["completed_rounds"]:
            continue
        logger.info("scribble loop: round %d of %d", round_index, request.num_rounds)
        round_folder = loop.round_folder(round_index)
        if round_index == 0:
            model_folder, folds, checkpoint = loop.preliminary_model, [request.fold], request.checkpoint_name
        else:
            _train_round(loop, round_index)
            model_folder, folds, checkpoint = round_folder / "model", ["all"], "checkpoint_final.pth"
        _predict(loop, model_folder, folds, checkpoint, Path(request.pool_images), round_folder / "predictions", True)
        _make_pseudo_labels(loop, round_index)
        if request.test_images is not None:
            _predict(
                loop,
                model_folder,
                folds,
                checkpoint,
                Path(request.test_images),
                round_folder / "test_predictions",
                False,
            )
        save_json(round_metrics(loop, round_index), round_folder / METRICS_FILE)
        state["completed_rounds"] = sorted(set(state["completed_rounds"]) | {round_index})
        save_json(state, loop.folder / STATE_FILE)
    return [load_json(loop.round_folder(r) / METRICS_FILE) for r in range(request.num_rounds + 1)]


def _resolve(request: ScribbleLoopRequest) -> ResolvedLoop:
    """Check the request (one-line NnUNetError on misuse) and find the preliminary model and labeled data."""
    from nnunetv2 import paths
    from nnunetv2.dataset.cases import group_images_by_case
    from nnunetv2.formats.model_folder import fold_folder, model_folder
    from nnunetv2.scribble_loop.partial_fine_tuning import check_reinit_decoder_stages
    from nnunetv2.scribble_loop.pseudo_labels import check_update_min_probability, pseudo_label_parameters
    from nnunetv2.scribble_loop.training_data import check_pool_case_names
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name
    from nnunetv2.utilities.parameters import check_numbers

    counts = ("num_rounds", "epochs_per_round", "iterations_per_epoch", "val_iterations_per_epoch")
    rules = {name: "integer >= 1" for name in counts} | {"initial_lr": "> 0", "scribble_sample_probability": "[0, 1]"}
    check_numbers(rules, {name: getattr(request, name) for name in rules}, where="scribble loop")
    if (request.test_images is None) != (request.test_reference is None):
        raise NnUNetError("scribble loop: a test set needs both its images and its reference labels")
    for name in ("pool_images", "scribbles", "pool_reference", "test_images", "test_reference"):
        folder = getattr(request, name)
        if folder is not None and not Path(folder).is_dir():
            raise NnUNetError(f"{folder}: folder not found ({name.replace('_', ' ')})")
    dataset_name = convert_id_to_dataset_name(request.dataset_name_or_id)
    preliminary = model_folder(dataset_name, request.trainer_name, request.plans_identifier, request.configuration)
    checkpoint = fold_folder(preliminary, request.fold) / request.checkpoint_name
    if not checkpoint.is_file():
        raise TrainingError(
            f"{checkpoint}: the preliminary model's checkpoint is not there (train fold "
            f"{request.fold} first, or check -tr/-p/-c/-chk)"
        )
    plans_dict = load_json(preliminary / "plans.json")
    plans = Plans.from_dict(plans_dict, source=str(preliminary / "plans.json"))
    configuration = plans.configuration(request.configuration)
    labeled = paths.preprocessed_folder() / dataset_name / configuration.data_identifier
    if not labeled.is_dir():
        raise TrainingError(
            f"{labeled}: the labeled cases of {dataset_name} are not preprocessed for "
            f"'{request.configuration}' (run nnUNetv2_preprocess)"
        )
    dataset_json = DatasetJson.load(preliminary / "dataset.json")
    pool = group_images_by_case(request.pool_images, dataset_json.file_ending, dataset_json.num_channels)
    if not pool:
        raise NnUNetError(f"{request.pool_images}: no pool images ending in '{dataset_json.file_ending}'")
    check_pool_case_names(labeled, list(pool))
    pseudo_label_parameters(**request.pseudo_label_parameters)  # bad names and values fail before any work
    if request.update_min_probability is not None:
        check_update_min_probability(request.update_min_probability)
    check_reinit_decoder_stages(request.reinit_decoder_stages)
    if request.refresh_every is not None and not 1 <= request.refresh_every < request.epochs_per_round:
        raise NnUNetError(
            f"scribble loop: refresh_every must lie between 1 and epochs_per_round - 1 "
            f"({request.epochs_per_round - 1}), got {request.refresh_every}"
        )
    _check_reinit_against_plans(request.reinit_decoder_stages, configuration)
    return ResolvedLoop(
        request, Path(request.output_folder), preliminary, labeled, plans_dict, plans, configuration, dataset_json, pool
    )


def _check_reinit_against_plans(num_stages: int, configuration) -> None:
    """More decoder stages to re-initialise than the plans' U-Net has is an error before any work."""
    encoder_stages = configuration.architecture.arch_kwargs.get("n_stages")
    if isinstance(encoder_stages, int) and num_stages > encoder_stages - 1:
        raise TrainingError(
            f"reinit_decoder_stages is {num_stages}, but the network has only {encoder_stages - 1} decoder stages"
        )


def _comparable_settings(request: ScribbleLoopRequest) -> dict[str, Any]:
    settings = {k: v for k, v in asdict(request).items() if k not in _RUNTIME_SETTINGS}
    settings["dataset_name_or_id"] = str(settings["dataset_name_or_id"])
    settings["fold"] = str(settings["fold"])
    for name in ("pool_images", "scribbles", "output_folder"):
        settings[name] = str(Path(settings[name]).resolve())
    return settings


def _load_or_create_state(loop: ResolvedLoop) -> dict[str, Any]:
    """The loop folder's state; a folder started with other settings (or holding other files) is refused."""
    settings = _comparable_settings(loop.request)
    path = loop.folder / STATE_FILE
    if path.is_file():
        state = load_json(path)
        stored = state.get("settings", {})
        changed = sorted(k for k in settings if stored.get(k, _LATER_SETTING_DEFAULTS.get(k)) != settings[k])
        if changed:
            raise NnUNetError(
                f"{path}: this loop was started with {changed[0]}={stored.get(changed[0])!r}, now "
                f"{settings[changed[0]]!r}; use another output folder to run it with new settings"
            )
        logger.info(
            "resuming the scribble loop in %s (finished rounds: %s)", loop.folder, state["completed_rounds"] or "none"
        )
        return state
    if loop.folder.is_dir() and any(loop.folder.iterdir()):
        raise NnUNetError(
            f"{loop.folder}: the output folder is not empty and holds no {STATE_FILE}; choose an empty or new folder"
        )
    state = {"settings": settings, "completed_rounds": []}
    save_json(state, path)
    return state


def _train_round(loop: ResolvedLoop, round_index: int) -> None:
    """Fine-tune the previous round's network on the labeled cases and round r-1's pseudo labels (once)."""
    from nnunetv2.formats.model_folder import fold_folder

    fold = fold_folder(loop.round_folder(round_index) / "model", "all")
    if not (fold / "checkpoint_final.pth").is_file():
        _fine_tune_with_refreshes(loop, round_index, fold)
    # derived data: cheap to rebuild, large to keep
    shutil.rmtree(loop.round_folder(round_index) / "training_data", ignore_errors=True)
    for refresh in loop.round_folder(round_index).glob(f"{REFRESH_PREFIX}*"):
        shutil.rmtree(refresh / "training_data", ignore_errors=True)


def _refresh_folder(loop: ResolvedLoop, round_index: int, epoch: int) -> Path:
    return loop.round_folder(round_index) / f"{REFRESH_PREFIX}{epoch}"


def latest_pseudo_labels(loop: ResolvedLoop, round_index: int, at_epoch: int | None = None) -> Path:
    """The pseudo labels round ``round_index`` trains on after ``at_epoch`` epochs (None: the last ones): its latest
    in-run refresh (``refresh_every``), else round r-1's."""
    request = loop.request
    if request.refresh_every is not None:
        at = request.epochs_per_round if at_epoch is None else at_epoch
        done = [e for e in range(request.refresh_every, request.epochs_per_round, request.refresh_every) if e <= at]
        if done:
            return _refresh_folder(loop, round_index, done[-1]) / "pseudo_labels"
    return loop.round_folder(round_index - 1) / "pseudo_labels"


def _fine_tune_with_refreshes(loop: ResolvedLoop, round_index: int, fold: Path) -> None:
    """Fine-tune the round; with ``refresh_every`` the pseudo labels are renewed every N epochs within the run
    (one learning-rate decay and optimiser state across the whole round, as in the published method)."""
    from nnunetv2.formats.checkpoint_io import load_checkpoint

    request = loop.request
    every = request.refresh_every
    if every is None:
        _fine_tune(loop, round_index, fold)
        return
    latest = fold / "checkpoint_latest.pth"
    epoch = int(load_checkpoint(latest)["current_epoch"]) if latest.is_file() else 0
    while epoch < request.epochs_per_round:
        if epoch > 0 and epoch % every == 0:  # the network after `epoch` epochs predicts the pool, labels renewed
            refresh = _refresh_folder(loop, round_index, epoch)
            pool = Path(request.pool_images)
            _predict(loop, fold.parent, ["all"], "checkpoint_latest.pth", pool, refresh / "predictions", True)
            _make_pseudo_labels(loop, round_index, refresh, latest_pseudo_labels(loop, round_index, epoch - 1))
        stop = min((epoch // every + 1) * every, request.epochs_per_round)
        _fine_tune(loop, round_index, fold, stop, latest_pseudo_labels(loop, round_index, epoch))
        if stop < request.epochs_per_round:
            (fold / "checkpoint_final.pth").unlink(missing_ok=True)  # the round is not finished
        epoch = stop


def _fine_tune(
    loop: ResolvedLoop,
    round_index: int,
    fold: Path,
    stop_after: int | None = None,
    pseudo_labels: Path | None = None,
) -> None:
    """Train the round's model into ``fold``, from its checkpoint_latest or else from the previous round's weights.

    ``stop_after``: stop after this many epochs of the round (the learning rate still decays over the whole
    round); ``pseudo_labels``: train on these instead of round r-1's.
    """
    from nnunetv2.formats.model_folder import fold_folder
    from nnunetv2.scribble_loop.partial_fine_tuning import apply_partial_fine_tuning
    from nnunetv2.training.checkpointing import load_pretrained_weights
    from nnunetv2.training.run_training import prepare_run_environment
    from nnunetv2.training.trainer_options import TrainerOptions
    from nnunetv2.training.trainers.nnUNetTrainerConfidenceWeighted import nnUNetTrainerConfidenceWeighted
    from nnunetv2.utilities.device import resolve_device

    request = loop.request
    if round_index == 1:
        start_weights = fold_folder(loop.preliminary_model, request.fold) / request.checkpoint_name
    else:
        start_weights = fold_folder(loop.round_folder(round_index - 1) / "model", "all") / "checkpoint_final.pth"
    data_folder = _training_data(loop, round_index, pseudo_labels)
    # one request: the checkpoints' init_args then reproduce the round's training
    options = TrainerOptions(
        num_epochs=request.epochs_per_round,  # the lr decays over the whole round, however it is cut
        stop_after_epoch=stop_after,
        num_iterations_per_epoch=request.iterations_per_epoch,
        num_val_iterations_per_epoch=request.val_iterations_per_epoch,
        initial_lr=request.initial_lr,
        save_every=request.save_every,
        seed=None if request.seed is None else request.seed + round_index,
        num_data_workers=request.num_data_workers,
        preprocessed_dataset_folder=str(data_folder),
        output_folder_base=str(fold.parent),
        settings={"scribble_sample_probability": request.scribble_sample_probability},
    )
    # ``options`` is taken by the trainers' metaclass (TrainerMeta), which mypy does not see
    trainer = nnUNetTrainerConfidenceWeighted(  # type: ignore[call-arg]
        loop.plans_dict, request.configuration, "all", loop.dataset_json.to_dict(), resolve_device(request.device),
        options=options,
    )  # fmt: skip
    resuming = (fold / "checkpoint_latest.pth").is_file()
    if resuming:
        trainer.load_checkpoint(fold / "checkpoint_latest.pth")
        logger.info("round %d: continuing training at epoch %d", round_index, trainer.current_epoch)
    else:
        trainer.initialize()
        load_pretrained_weights(trainer.unwrapped_network(), start_weights)
    # a resumed round keeps its re-initialised weights (they are in the checkpoint); freezing is redone
    apply_partial_fine_tuning(
        trainer.unwrapped_network(), request.freeze_encoder, request.reinit_decoder_stages, reinitialise=not resuming
    )
    prepare_run_environment(trainer, options.seed)
    trainer.run_training()


def _training_data(loop: ResolvedLoop, round_index: int, pseudo_labels: Path | None = None) -> Path:
    """The round's preprocessed training folder, built once (into a temporary folder renamed when complete);
    ``pseudo_labels`` of an in-run refresh get their own, next to them."""
    from nnunetv2.scribble_loop.pseudo_label_folder import CONFIDENCE_FOLDER, CONFIDENCE_SUFFIX, SUMMARY_FILE
    from nnunetv2.scribble_loop.training_data import PseudoLabeledCase, build_round_training_data

    previous_round = loop.round_folder(round_index - 1) / "pseudo_labels"
    pseudo_labels = previous_round if pseudo_labels is None else pseudo_labels
    round_folder = loop.round_folder(round_index) if pseudo_labels == previous_round else pseudo_labels.parent
    target = round_folder / "training_data"
    if target.is_dir():
        return target
    for leftover in round_folder.glob(".training_data.*"):
        shutil.rmtree(leftover)
    summary = load_json(pseudo_labels / SUMMARY_FILE)["cases"]
    ending = loop.dataset_json.file_ending
    pool = []
    for case_id, files in loop.pool_cases.items():
        scribble_file = Path(loop.request.scribbles) / f"{case_id}{ending}"
        pool.append(
            PseudoLabeledCase(
                case_id,
                tuple(files),
                pseudo_labels / f"{case_id}{ending}",
                pseudo_labels / CONFIDENCE_FOLDER / f"{case_id}{CONFIDENCE_SUFFIX}",
                scribble_file if scribble_file.is_file() else None,
                summary[case_id]["unannotated_value"],
            )
        )
    round_folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=round_folder, prefix=".training_data."))
    try:
        build_round_training_data(
            staging,
            loop.plans,
            loop.configuration,
            loop.dataset_json,
            loop.labeled_data_folder,
            pool,
            loop.request.show_progress,
        )
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def _predict(
    loop: ResolvedLoop,
    model_folder: Path,
    folds: list,
    checkpoint_name: str,
    images: Path,
    output: Path,
    save_probabilities: bool,
) -> None:
    """Predict a folder with a model; cases finished by an interrupted run are kept."""
    from nnunetv2.inference.predictor import predict_from_model_folder

    predict_from_model_folder(
        images,
        output,
        model_folder,
        folds=folds,
        checkpoint_name=checkpoint_name,
        device=loop.request.device,
        save_probabilities=save_probabilities,
        overwrite=False,
        num_processes_preprocessing=1,
        num_processes_segmentation_export=1,
        show_progress=loop.request.show_progress,
    )


def _make_pseudo_labels(
    loop: ResolvedLoop, round_index: int, round_folder: Path | None = None, previous: Path | None = None
) -> None:
    """Grow the scribbles into pseudo labels with the round's probabilities (skipped when already complete).

    ``round_folder``/``previous``: an in-run refresh's folder and the pseudo labels it renews.
    """
    from nnunetv2.scribble_loop.pseudo_label_folder import SUMMARY_FILE, make_pseudo_labels_for_folder

    round_folder = loop.round_folder(round_index) if round_folder is None else round_folder
    output = round_folder / "pseudo_labels"
    if (output / SUMMARY_FILE).is_file():  # written last
        return
    request = loop.request
    # later rounds renew a voxel's label only where the new network supports it (update_min_probability)
    if previous is None and round_index > 0:
        previous = latest_pseudo_labels(loop, round_index)
    make_pseudo_labels_for_folder(
        request.pool_images,
        round_folder / "predictions",
        request.scribbles,
        output,
        dataset=loop.preliminary_model,
        unannotated_value=request.unannotated_value,
        device=request.device,
        progress=request.show_progress,
        previous_pseudo_labels=previous,
        update_min_probability=None if previous is None else request.update_min_probability,
        save_distance_maps=request.save_distance_maps,
        **request.pseudo_label_parameters,
    )
