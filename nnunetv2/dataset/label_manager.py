"""Labels, regions and the ignore label of a dataset, and the conversions between them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnunetv2.exceptions import DatasetError

if TYPE_CHECKING:
    import torch

IGNORE_LABEL_NAME = "ignore"


class LabelManager:
    """Knows which integers are classes, which form regions, and which one means 'not annotated'.

    Network outputs: one channel per label (softmax) or one per foreground region (sigmoid);
    the ignore label never gets a channel and is never predicted.
    """

    def __init__(
        self,
        label_dict: Mapping[str, int | Sequence[int]],
        regions_class_order: Sequence[int] | None = None,
        source: str = "dataset.json",
    ):
        self.label_dict: dict[str, int | tuple[int, ...]] = {
            k: (tuple(v) if isinstance(v, Sequence) else int(v)) for k, v in label_dict.items()
        }
        self.regions_class_order = list(regions_class_order) if regions_class_order is not None else None
        self.has_regions = any(isinstance(v, tuple) and len(v) > 1 for v in self.label_dict.values())
        self.ignore_label = self._find_ignore_label(source)
        self.has_ignore_label = self.ignore_label is not None
        self._validate(source)

    def _find_ignore_label(self, source: str) -> int | None:
        value = self.label_dict.get(IGNORE_LABEL_NAME)
        if value is None:
            return None
        if isinstance(value, tuple):
            if len(value) != 1:
                raise DatasetError(f"{source}: the 'ignore' label must be a single integer, not a region")
            value = value[0]
        return int(value)

    def _validate(self, source: str) -> None:
        values = self._all_values()
        if 0 not in values:
            raise DatasetError(f"{source}: labels must contain background with value 0")
        if self.has_ignore_label and self.ignore_label != max(values):
            raise DatasetError(
                f"{source}: the 'ignore' label ({self.ignore_label}) must carry the highest label value ({max(values)})"
            )
        if self.has_ignore_label:
            named_as_max = [
                k for k, v in self.label_dict.items() if k != IGNORE_LABEL_NAME and self.ignore_label in _as_tuple(v)
            ]
            if named_as_max:
                raise DatasetError(
                    f"{source}: label value {self.ignore_label} is used by '{named_as_max[0]}' and by 'ignore'"
                )
        if self.has_regions:
            if self.regions_class_order is None:
                raise DatasetError(f"{source}: region labels (lists of integers) need 'regions_class_order'")
            if len(self.regions_class_order) != len(self.foreground_regions):
                raise DatasetError(
                    f"{source}: 'regions_class_order' has {len(self.regions_class_order)} "
                    f"entries but there are {len(self.foreground_regions)} regions"
                )
        else:
            expected = list(range(len(self.all_labels)))
            if self.all_labels != expected:
                raise DatasetError(f"{source}: label values must be consecutive from 0 (found {self.all_labels})")

    def _all_values(self) -> list[int]:
        values: set[int] = set()
        for v in self.label_dict.values():
            values.update(_as_tuple(v))
        return sorted(values)

    @property
    def all_labels(self) -> list[int]:
        """Sorted label values that occur in segmentations, without the ignore label."""
        return [v for v in self._all_values() if v != self.ignore_label]

    @property
    def declared_values(self) -> list[int]:
        """Every value a label file of this dataset may hold: the labels and the ignore label."""
        return self.all_labels + ([self.ignore_label] if self.ignore_label is not None else [])

    @property
    def foreground_labels(self) -> list[int]:
        """All labels but background and ignore."""
        return [v for v in self.all_labels if v != 0]

    @property
    def foreground_regions(self) -> list[int | tuple[int, ...]]:
        """Regions as written in dataset.json: a tuple for a list of labels, an int for a single label.

        Keeping nnU-Net v2's distinction keeps its summary.json keys ("2" vs "(2,)").
        """
        regions = []
        for name, v in self.label_dict.items():
            if name == IGNORE_LABEL_NAME or set(_as_tuple(v)) == {0}:
                continue
            regions.append(v)
        return regions

    @property
    def foreground_labels_or_regions(self) -> list[int] | list[int | tuple[int, ...]]:
        """What evaluation scores: regions when the dataset has them, else foreground labels."""
        return self.foreground_regions if self.has_regions else self.foreground_labels

    @property
    def region_order(self) -> list[int]:
        """``regions_class_order`` of a region-based dataset (checked at construction)."""
        if self.regions_class_order is None:
            raise DatasetError("the dataset has no 'regions_class_order'")
        return self.regions_class_order

    @property
    def num_segmentation_heads(self) -> int:
        """Number of network output channels."""
        return len(self.foreground_regions) if self.has_regions else len(self.all_labels)

    def annotated_mask(self, seg: np.ndarray) -> np.ndarray | None:
        """Boolean mask of annotated voxels, or None when there is no ignore label."""
        if not self.has_ignore_label:
            return None
        return seg != self.ignore_label

    def apply_inference_nonlinearity(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits (C, ...) -> probabilities: sigmoid for regions, softmax over classes otherwise."""
        import torch

        return torch.sigmoid(logits) if self.has_regions else torch.softmax(logits.float(), 0)

    def probabilities_to_segmentation(self, probabilities: np.ndarray | torch.Tensor) -> np.ndarray:
        """Probabilities (C, ...) -> label map: argmax, or regions painted in regions_class_order."""
        import torch

        if isinstance(probabilities, torch.Tensor):
            probabilities = probabilities.detach().cpu().numpy()
        if not self.has_regions:
            return probabilities.argmax(0).astype(np.uint8 if self.num_segmentation_heads < 256 else np.uint16)
        order = self.region_order
        seg = np.zeros(probabilities.shape[1:], dtype=np.uint16 if max(order) > 255 else np.uint8)
        for channel, label in enumerate(order):
            seg[probabilities[channel] > 0.5] = label
        return seg

    def segmentation_to_region_targets(self, seg: np.ndarray) -> np.ndarray:
        """Label map (...) -> binary region maps (R, ...) as uint8, one per foreground region."""
        out = np.zeros((len(self.foreground_regions),) + seg.shape, dtype=np.uint8)
        for i, region in enumerate(self.foreground_regions):
            out[i] = np.isin(seg, region)
        return out

    # nnU-Net v2's names (read by trainer hooks and scripts written for nnU-Net v2)
    def apply_inference_nonlin(self, logits: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Softmax over classes, or sigmoid per region (nnU-Net v2's name)."""
        import torch

        return self.apply_inference_nonlinearity(torch.as_tensor(logits).float())

    def convert_probabilities_to_segmentation(self, predicted_probabilities: np.ndarray | torch.Tensor) -> np.ndarray:
        """Labels of ``(C, ...)`` probabilities (nnU-Net v2's name of ``probabilities_to_segmentation``)."""
        return self.probabilities_to_segmentation(predicted_probabilities)

    def convert_logits_to_segmentation(self, predicted_logits: np.ndarray | torch.Tensor) -> np.ndarray:
        """Labels of ``(C, ...)`` logits."""
        return self.probabilities_to_segmentation(self.apply_inference_nonlin(predicted_logits))

    @property
    def all_regions(self) -> list[int | tuple[int, ...]] | None:
        """The regions (background excluded), as nnU-Net v2 lists them; None without regions."""
        return self.foreground_regions if self.has_regions else None

    @classmethod
    def from_dataset_json(cls, dataset_json) -> LabelManager:
        """Build from a DatasetJson."""
        return cls(dataset_json.labels, dataset_json.regions_class_order)


def _as_tuple(v: int | Sequence[int]) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, Sequence) else (int(v),)


def label_names(labels: Mapping[str, Any], foreground: list) -> list[str]:
    """Return the name (dataset.json ``labels``: name -> value) of each foreground label or region, in
    ``foreground``'s order; the value itself when unnamed."""
    by_value = {}
    for name, value in labels.items():
        key = tuple(value) if isinstance(value, (list, tuple)) else int(value)
        by_value[key] = name
    names = []
    for item in foreground:
        key = tuple(item) if isinstance(item, (list, tuple)) else int(item)
        names.append(by_value.get(key, str(item)))
    return names
