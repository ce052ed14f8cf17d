"""nnU-Net v2's ``nnunetv2.preprocessing.preprocessors.default_preprocessor``: our DefaultPreprocessor.

``run_case(image_files, seg_file, plans_manager, configuration_manager, dataset_json)`` and
``run_case_npy(data, seg, properties, plans_manager, configuration_manager, dataset_json)`` take
nnU-Net v2's arguments (PlansManager/ConfigurationManager, dicts, or our own objects).
"""

from nnunetv2.preprocessing.preprocessor import DefaultPreprocessor

__all__ = ["DefaultPreprocessor"]
