"""The whole planning stage for several datasets: verify, fingerprint, plan, preprocess."""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)


def plan_and_preprocess(
    dataset_ids: Sequence[str | int],
    configurations: Sequence[str] = ("2d", "3d_fullres", "3d_lowres"),
    num_processes: Sequence[int] | int | None = None,
    num_processes_fingerprint: int | None = None,
    verify_dataset_integrity: bool = False,
    clean: bool = False,
    planner_name: str = "ExperimentPlanner",
    gpu_memory_target_in_gb: float | None = None,
    overwrite_plans_name: str | None = None,
    preprocessor_name: str = "DefaultPreprocessor",
    run_preprocessing: bool = True,
    show_progress: bool = True,
    overwrite_target_spacing: Sequence[float] | None = None,
    verbose: bool = False,
) -> None:
    """Run fingerprint extraction, planning and (unless disabled) preprocessing for each dataset."""
    from nnunetv2.experiment_planning.fingerprint import extract_fingerprint_for_dataset
    from nnunetv2.experiment_planning.planner import plan_experiment_for_dataset
    from nnunetv2.preprocessing.preprocessor import preprocess_dataset
    from nnunetv2.utilities.parameters import check_number

    # every number first: a refused run writes nothing
    counts = [num_processes] if num_processes is None or isinstance(num_processes, int) else list(num_processes)
    for count in counts:
        check_number("-np", count, "integer >= 1", optional=True)
    check_number("-npfp", num_processes_fingerprint, "integer >= 1", optional=True)
    check_number("-gpu_memory_target", gpu_memory_target_in_gb, "> 0", optional=True)
    for dataset in dataset_ids:
        extract_fingerprint_for_dataset(
            dataset,
            num_processes=num_processes_fingerprint,
            check_integrity=verify_dataset_integrity,
            clean=clean,
            show_progress=show_progress,
        )
        plans_file = plan_experiment_for_dataset(
            dataset,
            planner_name=planner_name,
            gpu_memory_target_in_gb=gpu_memory_target_in_gb,
            overwrite_plans_name=overwrite_plans_name,
            preprocessor_name=preprocessor_name,
            overwrite_target_spacing=overwrite_target_spacing,
        )
        logger.info("plans written to %s", plans_file)
        if run_preprocessing:
            preprocess_dataset(
                dataset,
                plans_identifier=plans_file.stem,
                configurations=configurations,
                num_processes=num_processes,
                show_progress=show_progress,
                verbose=verbose,
            )
