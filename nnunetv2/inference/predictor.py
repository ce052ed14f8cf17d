"""nnUNetPredictor: predict raw images with a trained model folder, as nnUNetv2_predict does.

Per case: read and preprocess (optionally in worker processes, ahead of the network), sliding-
window prediction with every selected fold (logits averaged over folds, as nnU-Net v2 does),
then export to the input's geometry (optionally in worker processes). Every output file appears
only once complete, so an error or interruption leaves the cases written so far intact and
``overwrite=False`` (``--continue_prediction``) resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnunetv2.exceptions import InferenceError, NnUNetError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans
from nnunetv2.inference.prediction_inputs import PredictionCase, list_prediction_cases

if TYPE_CHECKING:
    import torch

    from nnunetv2.inference.trained_model import TrainedModel

logger = logging.getLogger(__name__)


@dataclass
class _PreprocessJob:
    case: PredictionCase
    plans: Plans
    configuration: ConfigurationPlans
    dataset_json: DatasetJson
    verbose: bool = False


@dataclass
class _ExportJob:
    case_id: str
    logits: np.ndarray
    properties: dict[str, Any]
    configuration: ConfigurationPlans
    plans: Plans
    dataset_json: DatasetJson
    output_file_truncated: str
    save_probabilities: bool


def _preprocess(job: _PreprocessJob) -> tuple[str, np.ndarray, dict[str, Any]]:
    """Read and preprocess one case; errors name the case."""
    from nnunetv2.dataset.label_manager import LabelManager
    from nnunetv2.dataset.previous_stage import append_previous_stage_channels
    from nnunetv2.preprocessing.preprocessor import preprocessor_class_from_name

    if job.verbose and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")  # a spawned worker: show its messages
    try:
        preprocessor = preprocessor_class_from_name(job.configuration.preprocessor_name)(verbose=job.verbose)
        data, seg, properties = preprocessor.run_case(
            job.case.image_files, job.case.previous_stage_file, job.plans, job.configuration, job.dataset_json
        )
    except NnUNetError as e:
        raise type(e)(f"case '{job.case.case_id}': {e}") from None
    properties.pop("class_locations", None)
    foreground = LabelManager.from_dataset_json(job.dataset_json).foreground_labels
    return job.case.case_id, append_previous_stage_channels(data, seg, foreground), properties


def _export(job: _ExportJob) -> str:
    from nnunetv2.inference.export import export_prediction_from_logits

    try:
        return export_prediction_from_logits(
            job.logits,
            job.properties,
            job.configuration,
            job.plans,
            job.dataset_json,
            job.output_file_truncated,
            job.save_probabilities,
        )
    except NnUNetError as e:
        raise type(e)(f"case '{job.case_id}': {e}") from None


def _pool(num_processes: int, num_jobs: int) -> ProcessPoolExecutor | None:
    """A spawn pool when it pays off (several processes and more than one job), else None (run inline)."""
    if num_processes <= 1 or num_jobs <= 1:
        return None
    # spawn: forked workers can deadlock on thread pools torch/numpy started in the parent
    return ProcessPoolExecutor(min(num_processes, num_jobs), mp_context=multiprocessing.get_context("spawn"))


class nnUNetPredictor:
    """Sliding-window predictor over the folds of a trained model (nnU-Net v2's interface)."""

    # the first eight parameters are nnU-Net v2's, in its order, so its scripts run unchanged
    def __init__(
        self,
        tile_step_size: float = 0.5,
        use_gaussian: bool = True,
        use_mirroring: bool = True,
        perform_everything_on_device: bool = True,
        device: torch.device | str | None = None,
        verbose: bool = False,
        verbose_preprocessing: bool = False,
        allow_tqdm: bool = True,
        temperature: float = 1.0,
        cpu_bf16: bool = False,
    ):
        import torch

        from nnunetv2.utilities.device import resolve_device

        if not temperature > 0:
            raise InferenceError(f"the softmax temperature must be positive, got {temperature}")
        self.tile_step_size = tile_step_size
        # False: a case's logits accumulate in CPU memory even when the network runs on a GPU
        self.perform_everything_on_device = perform_everything_on_device
        self.verbose_preprocessing = verbose_preprocessing
        # logits are divided by it before the softmax/sigmoid: > 1 softens the probabilities, labels stay
        self.temperature = float(temperature)
        # bfloat16 network on the CPU: ~2x faster where the CPU has it natively, not bit-identical to float32
        self.cpu_bf16 = cpu_bf16
        self.use_gaussian = use_gaussian
        self.use_mirroring = use_mirroring
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.verbose = verbose
        self.allow_tqdm = allow_tqdm
        self.model: TrainedModel | None = None

    def initialize_from_trained_model_folder(
        self,
        model_folder: str | os.PathLike,
        use_folds: Sequence[int | str] | None = None,
        checkpoint_name: str = "checkpoint_final.pth",
    ) -> None:
        """Load plans, dataset.json and the checkpoints of ``use_folds`` (None: every fold found)."""
        from nnunetv2.inference.trained_model import load_trained_model

        self.model = load_trained_model(model_folder, use_folds, checkpoint_name)
        self.model.network.to(self.device)

    def _require_model(self) -> TrainedModel:
        if self.model is None:
            raise InferenceError("the predictor has no model: call initialize_from_trained_model_folder first")
        return self.model

    @property
    def mirror_axes(self) -> tuple[int, ...] | None:
        """Axes mirrored at test time: those allowed in training, unless mirroring is off."""
        return self._require_model().allowed_mirroring_axes if self.use_mirroring else None

    def predict_logits_from_preprocessed_data(self, data: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Return the fold-averaged logits (float32, CPU), divided by the temperature, of a preprocessed case."""
        import torch

        from nnunetv2.inference.sliding_window import sliding_window_predict

        model = self._require_model()
        data = torch.as_tensor(data)
        if data.shape[0] != model.num_input_channels:
            raise InferenceError(
                f"the preprocessed case has {data.shape[0]} channels, the network expects {model.num_input_channels}"
            )
        logits = None
        for weights in model.fold_weights:
            if len(model.fold_weights) > 1:
                model.network.load_state_dict(weights)
            prediction = sliding_window_predict(
                model.network,
                data,
                model.configuration.patch_size,
                model.label_manager.num_segmentation_heads,
                step_size=self.tile_step_size,
                mirror_axes=self.mirror_axes,
                use_gaussian=self.use_gaussian,
                device=self.device,
                show_progress=self.allow_tqdm and self.verbose,
                results_on_device=self.perform_everything_on_device,
                cpu_bf16=self.cpu_bf16,
            )
            logits = prediction if logits is None else logits.add_(prediction)
        assert logits is not None, "a trained model has at least one fold"
        return logits.div_(len(model.fold_weights) * self.temperature)

    def preprocessed_cases(
        self, cases: list[PredictionCase], num_processes: int = 3
    ) -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
        """Yield ``(case_id, preprocessed data, properties)`` of ``cases`` in order (workers prepare ahead)."""
        self._require_model()
        jobs = self._preprocess_jobs(cases)
        return self._preprocessed(jobs, num_processes)

    def _preprocess_jobs(self, cases: list[PredictionCase]) -> list[_PreprocessJob]:
        model = self._require_model()
        return [
            _PreprocessJob(c, model.plans, model.configuration, model.dataset_json, self.verbose_preprocessing)
            for c in cases
        ]

    def predict_single_npy_array(
        self,
        input_image: np.ndarray,
        image_properties: dict[str, Any],
        segmentation_previous_stage: np.ndarray | None = None,
        output_file_truncated: str | None = None,
        save_or_return_probabilities: bool = False,
    ):
        """Predict one image already in memory (``(c, z, y, x)`` plus its reader's properties).

        Writes to ``output_file_truncated`` when given; otherwise returns the segmentation (and the
        probabilities if asked), both in the input's geometry.
        """
        from nnunetv2.dataset.previous_stage import append_previous_stage_channels
        from nnunetv2.inference.export import (
            convert_logits_to_segmentation_with_correct_shape,
            export_prediction_from_logits,
        )
        from nnunetv2.preprocessing.preprocessor import preprocessor_class_from_name

        model = self._require_model()
        preprocessor = preprocessor_class_from_name(model.configuration.preprocessor_name)(
            verbose=self.verbose_preprocessing
        )
        data, seg, properties = preprocessor.run_case_npy(
            input_image,
            segmentation_previous_stage,
            dict(image_properties),
            model.plans,
            model.configuration,
            model.dataset_json,
        )
        properties.pop("class_locations", None)
        data = append_previous_stage_channels(data, seg, model.label_manager.foreground_labels)
        logits = self.predict_logits_from_preprocessed_data(data)
        if output_file_truncated is not None:
            export_prediction_from_logits(
                logits,
                properties,
                model.configuration,
                model.plans,
                model.dataset_json,
                output_file_truncated,
                save_or_return_probabilities,
            )
            return None
        return convert_logits_to_segmentation_with_correct_shape(
            logits,
            properties,
            model.configuration,
            model.plans,
            model.dataset_json,
            return_probabilities=save_or_return_probabilities,
        )

    def predict_from_files(
        self,
        list_of_lists_or_source_folder: str | os.PathLike | list[list[str]],
        output_folder_or_list_of_truncated_output_files: str | os.PathLike | list[str],
        save_probabilities: bool = False,
        overwrite: bool = True,
        num_processes_preprocessing: int = 3,
        num_processes_segmentation_export: int = 3,
        folder_with_segs_from_prev_stage: str | os.PathLike | None = None,
        num_parts: int = 1,
        part_id: int = 0,
    ) -> list[str]:
        """Predict every input case (this part of ``num_parts``); return the segmentation files written."""
        from nnunetv2.utilities.progress import progress_bar

        model = self._require_model()
        cases = list_prediction_cases(
            list_of_lists_or_source_folder,
            output_folder_or_list_of_truncated_output_files,
            model.dataset_json,
            model.configuration,
            folder_with_segs_from_prev_stage,
            num_parts,
            part_id,
        )
        if not overwrite:
            done = [c for c in cases if c.is_done(model.dataset_json.file_ending, save_probabilities)]
            if done:
                logger.info("%d of %d cases are already predicted; skipping them", len(done), len(cases))
            cases = [c for c in cases if c not in done]
        self._write_model_files(cases)
        if isinstance(output_folder_or_list_of_truncated_output_files, (str, os.PathLike)):
            self._write_call_record(
                Path(output_folder_or_list_of_truncated_output_files),
                {
                    "list_of_lists_or_source_folder": list_of_lists_or_source_folder,
                    "output_folder_or_list_of_truncated_output_files": output_folder_or_list_of_truncated_output_files,
                    "save_probabilities": save_probabilities,
                    "overwrite": overwrite,
                    "num_processes_preprocessing": num_processes_preprocessing,
                    "num_processes_segmentation_export": num_processes_segmentation_export,
                    "folder_with_segs_from_prev_stage": folder_with_segs_from_prev_stage,
                    "num_parts": num_parts,
                    "part_id": part_id,
                },
            )
        written: list[str] = []
        jobs = self._preprocess_jobs(cases)
        progress = progress_bar(total=len(jobs), desc="predicting", unit="case", disable=not self.allow_tqdm)
        export_pool = _pool(num_processes_segmentation_export, len(jobs))
        pending_exports: deque[Future] = deque()
        try:
            with contextlib.closing(self._preprocessed(jobs, num_processes_preprocessing)) as ready:
                for job, (case_id, data, properties) in zip(jobs, ready):
                    (logger.info if self.verbose else logger.debug)("predicting %s", case_id)
                    logits = self.predict_logits_from_preprocessed_data(data).numpy()
                    export = _ExportJob(
                        case_id,
                        logits,
                        properties,
                        model.configuration,
                        model.plans,
                        model.dataset_json,
                        job.case.output_file_truncated,
                        save_probabilities,
                    )
                    if export_pool is None:
                        written.append(_export(export))
                        progress.update()
                        continue
                    future = export_pool.submit(_export, export)
                    # a case counts when its file is written, as soon as that happens (not when collected)
                    future.add_done_callback(lambda _: progress.update())
                    pending_exports.append(future)
                    # bound the logits waiting in memory for an export worker
                    while len(pending_exports) > num_processes_segmentation_export:
                        written.append(pending_exports.popleft().result())
            while pending_exports:
                written.append(pending_exports.popleft().result())
        finally:
            progress.close()
            if export_pool is not None:
                # finish the exports already running, so their cases are complete, then stop
                export_pool.shutdown(wait=True, cancel_futures=False)
        return written

    def _preprocessed(
        self, jobs: list[_PreprocessJob], num_processes: int
    ) -> Generator[tuple[str, np.ndarray, dict[str, Any]], None, None]:
        """Yield preprocessed cases in order; with workers, a few cases are prepared ahead."""
        pool = _pool(num_processes, len(jobs))
        if pool is None:
            yield from (_preprocess(job) for job in jobs)
            return
        try:
            ahead: deque[Future] = deque()
            queue = iter(jobs)
            for job in queue:
                ahead.append(pool.submit(_preprocess, job))
                if len(ahead) >= 2 * num_processes:
                    break
            while ahead:
                result = ahead.popleft().result()
                next_job = next(queue, None)
                if next_job is not None:
                    ahead.append(pool.submit(_preprocess, next_job))
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _write_call_record(self, output_folder: Path, arguments: dict[str, Any]) -> None:
        """Write predict_from_raw_data_args.json: nnU-Net v2's record of the call, plus model and predictor settings."""
        from nnunetv2.utilities.file_io import save_json

        model = self._require_model()
        record = dict(arguments)  # save_json writes paths as strings
        record.update(
            model_folder=str(model.model_folder),
            folds=list(model.folds),
            trainer_name=model.trainer_name,
            tile_step_size=self.tile_step_size,
            use_gaussian=self.use_gaussian,
            use_mirroring=self.use_mirroring,
            device=str(self.device),
            temperature=self.temperature,
            cpu_bf16=self.cpu_bf16,
        )
        output_folder.mkdir(parents=True, exist_ok=True)
        save_json(record, output_folder / "predict_from_raw_data_args.json")

    def _write_model_files(self, cases: list[PredictionCase]) -> None:
        """Put dataset.json and plans.json next to the predictions, as nnU-Net v2 does."""
        model = self._require_model()
        folders = {Path(c.output_file_truncated).parent for c in cases}
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            model.dataset_json.save(folder / "dataset.json")
            model.plans.save(folder / "plans.json")


def predict_from_model_folder(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    model_folder: str | os.PathLike,
    folds: Sequence[int | str] | None = (0, 1, 2, 3, 4),
    checkpoint_name: str = "checkpoint_final.pth",
    step_size: float = 0.5,
    use_mirroring: bool = True,
    device: str | None = None,
    verbose: bool = False,
    save_probabilities: bool = False,
    overwrite: bool = True,
    num_processes_preprocessing: int = 3,
    num_processes_segmentation_export: int = 3,
    folder_with_segs_from_prev_stage: str | os.PathLike | None = None,
    num_parts: int = 1,
    part_id: int = 0,
    show_progress: bool = True,
    temperature: float = 1.0,
    cpu_bf16: bool = False,
) -> list[str]:
    """Predict every case of ``input_folder`` into ``output_folder`` (nnUNetv2_predict_from_modelfolder)."""
    predictor = nnUNetPredictor(
        tile_step_size=step_size,
        use_mirroring=use_mirroring,
        device=device,
        verbose=verbose,
        allow_tqdm=show_progress,
        temperature=temperature,
        cpu_bf16=cpu_bf16,
    )
    predictor.initialize_from_trained_model_folder(model_folder, folds, checkpoint_name)
    return predictor.predict_from_files(
        input_folder,
        output_folder,
        save_probabilities,
        overwrite,
        num_processes_preprocessing,
        num_processes_segmentation_export,
        folder_with_segs_from_prev_stage,
        num_parts,
        part_id,
    )


def predict_from_dataset_id(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    dataset_id_or_name: str | int,
    configuration: str,
    trainer_name: str = "nnUNetTrainer",
    plans_identifier: str = "nnUNetPlans",
    **kwargs: Any,
) -> list[str]:
    """Predict with ``nnUNet_results/DatasetXXX/{trainer}__{plans}__{configuration}`` (nnUNetv2_predict)."""
    from nnunetv2.formats.model_folder import model_folder
    from nnunetv2.utilities.dataset_name import convert_id_to_dataset_name

    folder = model_folder(convert_id_to_dataset_name(dataset_id_or_name), trainer_name, plans_identifier, configuration)
    return predict_from_model_folder(input_folder, output_folder, folder, **kwargs)
