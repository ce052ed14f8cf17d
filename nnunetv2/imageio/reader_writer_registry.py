"""nnU-Net v2's ``nnunetv2.imageio.reader_writer_registry``: an alias of ``nnunetv2.imageio.registry``."""

from __future__ import annotations

from nnunetv2.exceptions import ImageIOError
from nnunetv2.formats.dataset_json import DatasetJson
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from nnunetv2.imageio.registry import (
    READER_WRITERS,
    reader_writer_class_from_name,
    reader_writer_for_dataset,
    reader_writer_for_ending,
)

__all__ = [
    "LIST_OF_IO_CLASSES",
    "determine_reader_writer_from_dataset_json",
    "determine_reader_writer_from_file_ending",
    "recursive_find_reader_writer_by_name",
]

LIST_OF_IO_CLASSES = [reader_writer_class_from_name(name) for name in READER_WRITERS]


def determine_reader_writer_from_dataset_json(
    dataset_json_content: dict,
    example_file: str | None = None,
    allow_nonmatching_filename: bool = False,
    verbose: bool = True,
) -> type[BaseReaderWriter]:
    """The reader-writer of a dataset.json dict (``overwrite_image_reader_writer`` wins)."""
    return reader_writer_for_dataset(DatasetJson.from_dict(dataset_json_content), example_file)


def determine_reader_writer_from_file_ending(
    file_ending: str,
    example_file: str | None = None,
    allow_nonmatching_filename: bool = False,
    verbose: bool = True,
) -> type[BaseReaderWriter]:
    """The first reader-writer that supports ``file_ending``."""
    try:
        return reader_writer_for_ending(file_ending, example_file)
    except ImageIOError as e:
        raise RuntimeError(str(e)) from None


def recursive_find_reader_writer_by_name(rw_class_name: str) -> type[BaseReaderWriter]:
    """The reader-writer class of this name."""
    try:
        return reader_writer_class_from_name(rw_class_name)
    except ImageIOError as e:
        raise RuntimeError(str(e)) from None
