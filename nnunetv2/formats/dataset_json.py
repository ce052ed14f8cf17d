"""Typed, lossless view of a raw dataset's ``dataset.json``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnunetv2.exceptions import DatasetError
from nnunetv2.utilities.file_io import load_json, save_json

_KNOWN_KEYS = (
    "channel_names",
    "modality",
    "labels",
    "numTraining",
    "file_ending",
    "regions_class_order",
    "overwrite_image_reader_writer",
    "dataset",
)


@dataclass
class DatasetJson:
    """The fields of dataset.json that the code reads; unknown keys survive a load/save in ``extra``."""

    channel_names: dict[str, str]
    labels: dict[str, int | list[int]]
    num_training: int
    file_ending: str
    regions_class_order: list[int] | None = None
    overwrite_image_reader_writer: str | None = None
    dataset: dict[str, dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "dataset.json") -> DatasetJson:
        """Build from a parsed dataset.json, raising DatasetError on missing or malformed keys."""
        if not isinstance(d, dict):
            raise DatasetError(f"{source}: expected a JSON object")
        # nnU-Net v1 called channel_names 'modality'; v2 accepts both
        channels = d.get("channel_names", d.get("modality"))
        for key, value in (
            ("channel_names", channels),
            ("labels", d.get("labels")),
            ("numTraining", d.get("numTraining")),
            ("file_ending", d.get("file_ending")),
        ):
            if value is None:
                raise DatasetError(f"{source}: required key '{key}' is missing")
        if not isinstance(channels, dict) or not channels:
            raise DatasetError(f"{source}: 'channel_names' must map channel index to a name")
        labels = d["labels"]
        if not isinstance(labels, dict) or not labels:
            raise DatasetError(f"{source}: 'labels' must map label names to integers")
        for name, value in labels.items():
            ok = isinstance(value, int) or (
                isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value)
            )
            if not ok or isinstance(value, bool):
                raise DatasetError(f"{source}: label '{name}' must be an integer or a list of integers")
        if not isinstance(d["numTraining"], int) or d["numTraining"] < 0:
            raise DatasetError(f"{source}: 'numTraining' must be a non-negative integer")
        ending = d["file_ending"]
        if not isinstance(ending, str) or not ending.startswith("."):
            raise DatasetError(f"{source}: 'file_ending' must start with a dot, e.g. '.nii.gz'")
        return cls(
            channel_names={str(k): str(v) for k, v in channels.items()},
            labels={k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in labels.items()},
            num_training=d["numTraining"],
            file_ending=ending,
            regions_class_order=d.get("regions_class_order"),
            overwrite_image_reader_writer=d.get("overwrite_image_reader_writer"),
            dataset=d.get("dataset"),
            extra={k: v for k, v in d.items() if k not in _KNOWN_KEYS},
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> DatasetJson:
        """Read a dataset.json file."""
        return cls.from_dict(load_json(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object, with nnU-Net v2's key names."""
        d: dict[str, Any] = {
            "channel_names": dict(self.channel_names),
            "labels": dict(self.labels),
            "numTraining": self.num_training,
            "file_ending": self.file_ending,
        }
        if self.regions_class_order is not None:
            d["regions_class_order"] = list(self.regions_class_order)
        if self.overwrite_image_reader_writer is not None:
            d["overwrite_image_reader_writer"] = self.overwrite_image_reader_writer
        if self.dataset is not None:
            d["dataset"] = self.dataset
        d.update(self.extra)
        return d

    def save(self, path: str | os.PathLike) -> None:
        """Write dataset.json atomically."""
        save_json(self.to_dict(), Path(path))

    @property
    def num_channels(self) -> int:
        """Number of input channels."""
        return len(self.channel_names)


def generate_dataset_json(
    output_folder: str | os.PathLike,
    channel_names: dict,
    labels: dict,
    num_training_cases: int,
    file_ending: str,
    citation: list[str] | str | None = None,
    regions_class_order: Sequence[int] | None = None,
    dataset_name: str | None = None,
    reference: str | None = None,
    release: str | None = None,
    description: str | None = None,
    overwrite_image_reader_writer: str | None = None,
    license: str = "not given",
    converted_by: str = "not given",
    **kwargs: Any,
) -> None:
    """Write ``output_folder/dataset.json`` (nnU-Net v2's function of this name, same arguments).

    Channel keys become strings and label values integers (tuples of them for regions); the
    result is checked as any dataset.json we read, so a mistake shows here, not at planning.
    """
    d: dict[str, Any] = {
        "channel_names": {str(k): v for k, v in channel_names.items()},
        "labels": {k: ([int(i) for i in v] if isinstance(v, (list, tuple)) else int(v)) for k, v in labels.items()},
        "numTraining": num_training_cases,
        "file_ending": file_ending,
        "licence": license,
        "converted_by": converted_by,
    }
    optional = {
        "name": dataset_name,
        "reference": reference,
        "release": release,
        "citation": citation,
        "description": description,
        "overwrite_image_reader_writer": overwrite_image_reader_writer,
        "regions_class_order": list(regions_class_order) if regions_class_order is not None else None,
    }
    d.update({k: v for k, v in optional.items() if v is not None})
    d.update(kwargs)
    output = Path(output_folder) / "dataset.json"
    DatasetJson.from_dict(d, source=str(output))  # validate
    save_json(d, output)
