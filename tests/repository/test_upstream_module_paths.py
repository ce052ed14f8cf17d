"""Every nnU-Net v2 module path in documentation/compatibility.md imports, with every name it lists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "documentation" / "compatibility.md"
SECTION = "## nnU-Net v2's Python module paths"


def _table_rows() -> list[tuple[str, list[str]]]:
    text = PAGE.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`nnunetv2"):
            rows.append((cells[0].strip("`"), re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", cells[1])))
    return rows


ROWS = _table_rows()


def test_the_table_lists_the_paths_the_issue_asks_for():
    modules = {module for module, _ in ROWS}
    assert len(ROWS) >= 25
    for required in (
        "nnunetv2.paths",
        "nnunetv2.inference.predict_from_raw_data",
        "nnunetv2.dataset_conversion.generate_dataset_json",
        "nnunetv2.utilities.plans_handling.plans_handler",
        "nnunetv2.run.run_training",
        "nnunetv2.preprocessing.preprocessors.default_preprocessor",
    ):
        assert required in modules


@pytest.mark.parametrize(("module", "names"), ROWS, ids=[m for m, _ in ROWS])
def test_each_listed_path_imports_with_its_names(module, names):
    imported = importlib.import_module(module)
    assert names, f"{module}: the table lists no names"
    missing = [name for name in names if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"


def test_the_predictor_has_every_public_method_of_nnunet_v2():
    import inspect

    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    expected = {
        "initialize_from_trained_model_folder": ["model_training_output_dir", "use_folds", "checkpoint_name"],
        "manual_initialization": [
            "network",
            "plans_manager",
            "configuration_manager",
            "parameters",
            "dataset_json",
            "trainer_name",
            "inference_allowed_mirroring_axes",
        ],
        "predict_from_files": [
            "list_of_lists_or_source_folder",
            "output_folder_or_list_of_truncated_output_files",
            "save_probabilities",
            "overwrite",
            "num_processes_preprocessing",
            "num_processes_segmentation_export",
            "folder_with_segs_from_prev_stage",
            "num_parts",
            "part_id",
        ],
        "predict_from_data_iterator": ["data_iterator", "save_probabilities", "num_processes_segmentation_export"],
        "predict_from_list_of_npy_arrays": [
            "image_or_list_of_images",
            "segs_from_prev_stage_or_list_of_segs_from_prev_stage",
            "properties_or_list_of_properties",
            "truncated_ofname",
            "num_processes",
            "save_probabilities",
            "num_processes_segmentation_export",
        ],
        "predict_single_npy_array": [
            "input_image",
            "image_properties",
            "segmentation_previous_stage",
            "output_file_truncated",
            "save_or_return_probabilities",
        ],
        "predict_logits_from_preprocessed_data": ["data"],
        "predict_sliding_window_return_logits": ["input_image"],
        "predict_from_files_sequential": [
            "list_of_lists_or_source_folder",
            "output_folder_or_list_of_truncated_output_files",
            "save_probabilities",
            "overwrite",
            "folder_with_segs_from_prev_stage",
        ],
    }
    for method, parameters in expected.items():
        signature = list(inspect.signature(getattr(nnUNetPredictor, method)).parameters)
        assert signature[1 : len(parameters) + 1] == parameters, method
    constructor = list(inspect.signature(nnUNetPredictor).parameters)
    assert constructor[:8] == [
        "tile_step_size",
        "use_gaussian",
        "use_mirroring",
        "perform_everything_on_device",
        "device",
        "verbose",
        "verbose_preprocessing",
        "allow_tqdm",
    ]
