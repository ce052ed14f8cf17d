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
import os
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnunetv2.exceptions import InferenceError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.formats.plans import ConfigurationPlans, Plans
from nnunetv2.inference.prediction_inputs import PredictionCase, list_prediction_cases
from nnunetv2.inference.prediction_workers import ExportJob, PreprocessJob, export_case, preprocess_case, worker_pool

if TYPE_CHECKING:
    import torch

    from nnunetv2.inference.trained_model import TrainedModel

logger = logging.getLogger(__name__)


def _check_output_folder(inputs: Any, outputs: Any) -> None:
    """Refuse an output folder that is the input folder (predictions would mix with the images) or a file."""
    if not isinstance(outputs, (str, os.PathLike)):
        return
    output = Path(outputs)
    if output.exists() and not output.is_dir():
        raise InferenceError(f"{output}: the output folder (-o) is an existing file, not a folder")
    if isinstance(inputs, (str, os.PathLike)) and output.resolve() == Path(inputs).resolve():
        raise InferenceError(f"{output}: the output folder (-o) is the input folder (-i); choose another one")


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
        cpu_bf16: bool | None = None,
    ):
        import torch

        from nnunetv2.utilities.device import resolve_device
        from nnunetv2.utilities.parameters import check_numbers
        from nnunetv2.utilities.precision import resolve_cpu_bf16

        # checked here, before a run writes anything (the call record, model files)
        check_numbers(
            {"tile_step_size (-step_size)": "(0, 1]", "the softmax temperature (-temperature)": "> 0"},
            {"tile_step_size (-step_size)": tile_step_size, "the softmax temperature (-temperature)": temperature},
            error=InferenceError,
        )
        self.tile_step_size = tile_step_size
        # False: a case's logits accumulate in CPU memory even when the network runs on a GPU
        self.perform_everything_on_device = perform_everything_on_device
        self.verbose_preprocessing = verbose_preprocessing
        # logits are divided by it before the softmax/sigmoid: > 1 softens the probabilities, labels stay
        self.temperature = float(temperature)
        # bfloat16 network on the CPU (None: where the CPU has it natively): ~2x faster, labels equal float32's at
        # 99.95% of the voxels of a trained model (documentation/benchmarks.md), as float16 autocast on CUDA
        self.cpu_bf16 = resolve_cpu_bf16(cpu_bf16)
        self.use_gaussian = use_gaussian
        self.use_mirroring = use_mirroring
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.verbose = verbose
        self.allow_tqdm = allow_tqdm
        self.model: TrainedModel | None = None

    def initialize_from_trained_model_folder(
        self,
        model_training_output_dir: str | os.PathLike,
        use_folds: Sequence[int | str] | None = None,
        checkpoint_name: str = "checkpoint_final.pth",
    ) -> None:
        """Load plans, dataset.json and the checkpoints of ``use_folds`` (None: every fold found)."""
        from nnunetv2.inference.trained_model import load_trained_model
        from nnunetv2.utilities.compile import compile_network

        self.model = load_trained_model(model_training_output_dir, use_folds, checkpoint_name)
        self.model.network.to(self.device)
        compile_network(self.model.network, self.device, "prediction")

    def manual_initialization(
        self,
        network: torch.nn.Module,
        plans_manager: Plans | dict,
        configuration_manager: ConfigurationPlans | dict,
        parameters: list[dict[str, torch.Tensor]] | None,
        dataset_json: DatasetJson | dict,
        trainer_name: str,
        inference_allowed_mirroring_axes: Sequence[int] | None,
    ) -> None:
        """Use a network already built (nnU-Net v2's method of this name, e.g. for a trainer's validation).

        ``parameters`` are the state dicts to average over (one per fold); None keeps the network's
        current weights. Plans, configuration and dataset.json may be our objects, plain dicts, or
        nnU-Net v2's ``PlansManager`` / ``ConfigurationManager`` views.
        """
        from nnunetv2.dataset.label_manager import LabelManager
        from nnunetv2.formats.checkpoint_io import unwrap_state_dict
        from nnunetv2.formats.plans import as_configuration_plans, as_plans
        from nnunetv2.inference.trained_model import TrainedModel

        plans = as_plans(plans_manager)
        configuration = as_configuration_plans(configuration_manager)
        dataset_json = dataset_json if isinstance(dataset_json, DatasetJson) else DatasetJson.from_dict(dataset_json)
        network = getattr(network, "module", network)  # DistributedDataParallel
        weights = [unwrap_state_dict(p) for p in parameters] if parameters else []
        self.model = TrainedModel(
            model_folder=Path("."),
            plans=plans,
            configuration=configuration,
            dataset_json=dataset_json,
            label_manager=LabelManager.from_dataset_json(dataset_json),
            network=network,
            fold_weights=weights,
            folds=list(range(len(weights))),
            trainer_name=trainer_name,
            allowed_mirroring_axes=(
                tuple(int(a) for a in inference_allowed_mirroring_axes)
                if inference_allowed_mirroring_axes is not None
                else None
            ),
        )
        if weights:
            network.load_state_dict(weights[0])
        network.to(self.device)

    @staticmethod
    def auto_detect_available_folds(model_training_output_dir: str | os.PathLike, checkpoint_name: str) -> list[int]:
        """The numbered folds holding ``checkpoint_name`` (``fold_all`` excluded), as nnU-Net v2."""
        from nnunetv2.inference.trained_model import available_folds

        return available_folds(model_training_output_dir, checkpoint_name)

    # nnU-Net v2's attribute names, read from the loaded model
    @property
    def network(self) -> torch.nn.Module | None:
        """The network (weights of the first fold, or of the fold predicted last)."""
        return self.model.network if self.model is not None else None

    @property
    def list_of_parameters(self) -> list[dict[str, torch.Tensor]] | None:
        """One state dict per fold."""
        return self.model.fold_weights if self.model is not None else None

    @property
    def trainer_name(self) -> str | None:
        """The trainer named in the first fold's checkpoint."""
        return self.model.trainer_name if self.model is not None else None

    @property
    def allowed_mirroring_axes(self) -> tuple[int, ...] | None:
        """Axes the checkpoint allows mirroring at test time."""
        return self.model.allowed_mirroring_axes if self.model is not None else None

    @property
    def label_manager(self):
        """The model's LabelManager."""
        return self.model.label_manager if self.model is not None else None

    @property
    def dataset_json(self) -> dict | None:
        """The model's dataset.json as a dict (as nnU-Net v2 keeps it)."""
        return self.model.dataset_json.to_dict() if self.model is not None else None

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

        model = self._require_model()
        data = torch.as_tensor(data)
        if data.shape[0] != model.num_input_channels:
            raise InferenceError(
                f"the preprocessed case has {data.shape[0]} channels, the network expects {model.num_input_channels}"
            )
        logits = None
        fold_weights: list[dict[str, torch.Tensor] | None] = list(model.fold_weights) or [None]
        for weights in fold_weights:
            if weights is not None and len(fold_weights) > 1:
                model.network.load_state_dict(weights)
            prediction = self.predict_sliding_window_return_logits(data)
            logits = prediction if logits is None else logits.add_(prediction)
        assert logits is not None, "the loop runs at least once"
        return logits.div_(max(1, len(model.fold_weights)) * self.temperature)

    def predict_sliding_window_return_logits(self, input_image: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Sliding-window logits ``(C, ...)`` of one preprocessed image with the network's current weights.

        nnU-Net v2's method of this name: no averaging over folds (that is
        ``predict_logits_from_preprocessed_data``), no temperature; float32 on the CPU.
        """
        from nnunetv2.inference.sliding_window import sliding_window_predict

        model = self._require_model()
        return sliding_window_predict(
            model.network,
            input_image,
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

    def preprocessed_cases(
        self, cases: list[PredictionCase], num_processes: int = 3
    ) -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
        """Yield ``(case_id, preprocessed data, properties)`` of ``cases`` in order (workers prepare ahead)."""
        self._require_model()
        jobs = self._preprocess_jobs(cases)
        return self._preprocessed(jobs, num_processes)

    def _preprocess_jobs(self, cases: list[PredictionCase]) -> list[PreprocessJob]:
        model = self._require_model()
        return [
            PreprocessJob(c, model.plans, model.configuration, model.dataset_json, self.verbose_preprocessing)
            for c in cases
        ]

    def _preprocess_array(
        self, image: np.ndarray, previous_stage: np.ndarray | None, image_properties: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Preprocess one image in memory; the previous stage's segmentation is stacked on as one-hot channels."""
        from nnunetv2.dataset.previous_stage import append_previous_stage_channels
        from nnunetv2.preprocessing.preprocessor import preprocessor_class_from_name

        model = self._require_model()
        preprocessor = preprocessor_class_from_name(model.configuration.preprocessor_name)(
            verbose=self.verbose_preprocessing
        )
        data, seg, properties = preprocessor.run_case_npy(
            image, previous_stage, dict(image_properties), model.plans, model.configuration, model.dataset_json
        )
        properties.pop("class_locations", None)
        return append_previous_stage_channels(data, seg, model.label_manager.foreground_labels), properties

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
        from nnunetv2.inference.export import (
            convert_logits_to_segmentation_with_correct_shape,
            export_prediction_from_logits,
        )

        model = self._require_model()
        data, properties = self._preprocess_array(input_image, segmentation_previous_stage, image_properties)
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
        output_folder_or_list_of_truncated_output_files: str | os.PathLike | list[str] | None,
        save_probabilities: bool = False,
        overwrite: bool = True,
        num_processes_preprocessing: int = 3,
        num_processes_segmentation_export: int = 3,
        folder_with_segs_from_prev_stage: str | os.PathLike | None = None,
        num_parts: int = 1,
        part_id: int = 0,
    ) -> list:
        """Predict every input case (this part of ``num_parts``).

        Returns the segmentation files written, or, when the output is None, each case's
        segmentation (a ``(segmentation, probabilities)`` pair with ``save_probabilities``).
        """
        from nnunetv2.utilities.parameters import check_numbers

        model = self._require_model()
        check_numbers(
            {
                "num_processes_preprocessing (-npp)": "integer >= 0",
                "num_processes_segmentation_export (-nps)": "integer >= 0",
            },
            {
                "num_processes_preprocessing (-npp)": num_processes_preprocessing,
                "num_processes_segmentation_export (-nps)": num_processes_segmentation_export,
            },
            error=InferenceError,
        )
        _check_output_folder(list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files)
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
        jobs = self._preprocess_jobs(cases)

        def items() -> Iterator[tuple[str, Any, dict[str, Any], str | None]]:
            with contextlib.closing(self._preprocessed(jobs, num_processes_preprocessing)) as ready:
                for job, (case_id, data, properties) in zip(jobs, ready):
                    yield case_id, data, properties, job.case.output_file_truncated

        return self._predict_items(items(), save_probabilities, num_processes_segmentation_export, len(jobs))

    def predict_from_files_sequential(
        self,
        list_of_lists_or_source_folder: str | os.PathLike | list[list[str]],
        output_folder_or_list_of_truncated_output_files: str | os.PathLike | list[str] | None,
        save_probabilities: bool = False,
        overwrite: bool = True,
        folder_with_segs_from_prev_stage: str | os.PathLike | None = None,
    ) -> list:
        """``predict_from_files`` without worker processes (nnU-Net v2's ``-npp 0 -nps 0``)."""
        return self.predict_from_files(
            list_of_lists_or_source_folder,
            output_folder_or_list_of_truncated_output_files,
            save_probabilities,
            overwrite,
            0,
            0,
            folder_with_segs_from_prev_stage,
        )

    def predict_from_data_iterator(
        self,
        data_iterator,
        save_probabilities: bool = False,
        num_processes_segmentation_export: int = 3,
    ) -> list:
        """Predict preprocessed cases from an iterator, as nnU-Net v2's method of this name.

        Each item is a dict with ``'data'`` (the preprocessed ``(c, ...)`` array or tensor, previous
        stage already stacked on; or the path of a ``.npy`` file, deleted after loading),
        ``'data_properties'`` (the preprocessor's properties) and ``'ofile'`` (truncated output
        name, or None to get the segmentation back). Returns, per item, the file written or the
        segmentation (``(segmentation, probabilities)`` with ``save_probabilities``).
        """

        def items() -> Iterator[tuple[str, Any, dict[str, Any], str | None]]:
            for i, item in enumerate(data_iterator):
                data = item["data"]
                if isinstance(data, (str, os.PathLike)):
                    path = data
                    data = np.load(path)
                    os.remove(path)
                ofile = item.get("ofile")
                name = os.path.basename(str(ofile)) if ofile is not None else f"item {i}"
                yield name, data, item["data_properties"], (str(ofile) if ofile is not None else None)

        total = len(data_iterator) if hasattr(data_iterator, "__len__") else None
        return self._predict_items(items(), save_probabilities, num_processes_segmentation_export, total)

    def get_data_iterator_from_raw_npy_data(
        self,
        image_or_list_of_images: np.ndarray | list[np.ndarray],
        segs_from_prev_stage_or_list_of_segs_from_prev_stage: np.ndarray | list[np.ndarray | None] | None,
        properties_or_list_of_properties: dict | list[dict],
        truncated_ofname: str | list[str | None] | None,
        num_processes: int = 3,
    ) -> Iterator[dict[str, Any]]:
        """Yield ``predict_from_data_iterator`` items for images already in memory (preprocessed here, in order)."""
        images = image_or_list_of_images if isinstance(image_or_list_of_images, list) else [image_or_list_of_images]
        segs = segs_from_prev_stage_or_list_of_segs_from_prev_stage
        segs = [segs] if isinstance(segs, np.ndarray) else (segs if segs is not None else [None] * len(images))
        props = properties_or_list_of_properties
        props = [props] if isinstance(props, dict) else list(props)
        names: list[str | None]
        if isinstance(truncated_ofname, (str, os.PathLike)):
            names = [str(truncated_ofname)]
        elif truncated_ofname is None:
            names = [None] * len(images)
        else:
            names = list(truncated_ofname)
        if not len(images) == len(segs) == len(props) == len(names):
            raise InferenceError(
                f"got {len(images)} images, {len(segs)} previous-stage segmentations, {len(props)} "
                f"properties and {len(names)} output names: give one of each per image"
            )
        return self._npy_items(images, segs, props, names)

    def _npy_items(self, images, segs, props, names) -> Iterator[dict[str, Any]]:
        for image, seg, properties, name in zip(images, segs, props, names):
            data, properties = self._preprocess_array(image, seg, properties)
            yield {"data": data, "data_properties": properties, "ofile": name}

    def predict_from_list_of_npy_arrays(
        self,
        image_or_list_of_images: np.ndarray | list[np.ndarray],
        segs_from_prev_stage_or_list_of_segs_from_prev_stage: np.ndarray | list[np.ndarray | None] | None,
        properties_or_list_of_properties: dict | list[dict],
        truncated_ofname: str | list[str | None] | None,
        num_processes: int = 3,
        save_probabilities: bool = False,
        num_processes_segmentation_export: int = 3,
    ) -> list:
        """Predict images already in memory (``(c, z, y, x)`` each, with their reader's properties).

        Writes to ``truncated_ofname`` when given; otherwise returns the segmentations (and
        probabilities with ``save_probabilities``), in the inputs' geometry.
        """
        iterator = self.get_data_iterator_from_raw_npy_data(
            image_or_list_of_images,
            segs_from_prev_stage_or_list_of_segs_from_prev_stage,
            properties_or_list_of_properties,
            truncated_ofname,
            num_processes,
        )
        return self.predict_from_data_iterator(iterator, save_probabilities, num_processes_segmentation_export)

    def _predict_items(
        self,
        items: Iterator[tuple[str, Any, dict[str, Any], str | None]],
        save_probabilities: bool,
        num_processes_segmentation_export: int,
        total: int | None,
    ) -> list:
        """Predict ``(name, data, properties, ofile)`` items; export (or convert) in workers when it pays off."""
        from nnunetv2.utilities.progress import progress_bar

        model = self._require_model()
        results: list = []
        progress = progress_bar(total=total, desc="predicting", unit="case", disable=not self.allow_tqdm)
        export_pool = worker_pool(num_processes_segmentation_export, total if total is not None else 2)
        pending_exports: deque[Future] = deque()
        try:
            for name, data, properties, ofile in items:
                (logger.info if self.verbose else logger.debug)("predicting %s", name)
                logits = self.predict_logits_from_preprocessed_data(data).numpy()
                export = ExportJob(
                    name,
                    logits,
                    properties,
                    model.configuration,
                    model.plans,
                    model.dataset_json,
                    ofile,
                    save_probabilities,
                )
                if export_pool is None:
                    results.append(export_case(export))
                    progress.update()
                    continue
                future = export_pool.submit(export_case, export)
                # a case counts when its file is written, as soon as that happens (not when collected)
                future.add_done_callback(lambda _: progress.update())
                pending_exports.append(future)
                # bound the logits waiting in memory for an export worker
                while len(pending_exports) > num_processes_segmentation_export:
                    results.append(pending_exports.popleft().result())
            while pending_exports:
                results.append(pending_exports.popleft().result())
        finally:
            progress.close()
            if export_pool is not None:
                # finish the exports already running, so their cases are complete, then stop
                export_pool.shutdown(wait=True, cancel_futures=False)
        return results

    def _preprocessed(
        self, jobs: list[PreprocessJob], num_processes: int
    ) -> Generator[tuple[str, np.ndarray, dict[str, Any]], None, None]:
        """Yield preprocessed cases in order; with workers, a few cases are prepared ahead."""
        pool = worker_pool(num_processes, len(jobs))
        if pool is None:
            yield from (preprocess_case(job) for job in jobs)
            return
        try:
            ahead: deque[Future] = deque()
            queue = iter(jobs)
            for job in queue:
                ahead.append(pool.submit(preprocess_case, job))
                if len(ahead) >= 2 * num_processes:
                    break
            while ahead:
                result = ahead.popleft().result()
                next_job = next(queue, None)
                if next_job is not None:
                    ahead.append(pool.submit(preprocess_case, next_job))
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
        folders = {Path(c.output_file_truncated).parent for c in cases if c.output_file_truncated is not None}
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
    cpu_bf16: bool | None = None,
    perform_everything_on_device: bool = True,
) -> list[str]:
    """Predict every case of ``input_folder`` into ``output_folder`` (nnUNetv2_predict_from_modelfolder)."""
    predictor = nnUNetPredictor(
        tile_step_size=step_size,
        use_mirroring=use_mirroring,
        perform_everything_on_device=perform_everything_on_device,
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
