"""The graded real-anatomy set of the uncertainty benchmark: brain MRI slices under scanner-like shifts.

Training cases are axial slices of the MNI ICBM152 T1 template (``brain_template``), each with its own mild
scanner degradation (``degraded``: bias field +-25%, slight blur, noise). Test cases are other axial slices,
three with only that mild degradation ("clean") and the rest with one shift on top at graded strengths:

- ``noise``: extra Gaussian noise of sigma 100 x level (grey and white matter differ by about 45),
- ``contrast``: the tissue signal squeezed towards the brain mean by 0.9 x level (noise unchanged),
- ``bias``: a smooth multiplicative field of exp(+-(0.3 + 0.5 x level)), beyond the training range,
- ``blur``: a Gaussian blur of sigma 1 + 3 x level pixels.

Slices come from the middle of the brain (at least 40% of the largest slice's brain area), so the
shift, not the slice position, makes a case hard.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from brain_template import LABELS, degraded, template_from_wheel
from scipy import ndimage

SHIFTS = ("noise", "contrast", "bias", "blur")
LEVELS = (0.25, 0.5, 0.75, 1.0)
NUM_CLEAN = 3


def shifted(image: np.ndarray, brain: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Return the clean slice ``image`` with one shift of ``kind`` at ``level`` (before the usual degradation)."""
    if kind == "noise":
        return image + rng.normal(0, 100 * level, image.shape).astype(np.float32)
    if kind == "contrast":
        # squeeze the tissue signal only; degraded() adds its noise afterwards, so contrast-to-noise drops
        mean = image[brain].mean()
        return np.where(brain, mean + (image - mean) * (1 - 0.9 * level), image).astype(np.float32)
    if kind == "bias":
        coarse = rng.uniform(-1, 1, size=(3, 3))
        field = ndimage.zoom(coarse, [n / 3 for n in image.shape], order=3, mode="nearest")[: image.shape[0]]
        return (image * np.exp((0.3 + 0.5 * level) * field[:, : image.shape[1]])).astype(np.float32)
    if kind == "blur":
        return ndimage.gaussian_filter(image, 1 + 3 * level).astype(np.float32)
    raise ValueError(f"unknown shift '{kind}'")


def slice_positions(label: np.ndarray, num_training: int, num_test: int) -> tuple[np.ndarray, np.ndarray]:
    """Axial positions of the training and test slices, interleaved over the brain (no slice in both sets)."""
    area = (label > 0).sum((1, 2))
    brain_z = np.flatnonzero(area >= 0.4 * area.max())
    positions = np.linspace(brain_z[0], brain_z[-1], num_training + num_test).round().astype(int)
    test_every = (num_training + num_test) / num_test
    test_index = np.unique((np.arange(num_test) * test_every + test_every / 2).astype(int))
    is_test = np.zeros(len(positions), bool)
    is_test[test_index] = True
    return positions[~is_test], positions[is_test]


def make_brain_dataset(raw_folder: Path, wheel: Path, num_training: int, seed: int = 0) -> dict[str, str]:
    """Write the raw 2D dataset (imagesTr/labelsTr, imagesTs/labelsTs); return each test case's shift."""
    import SimpleITK as sitk

    t1, label = template_from_wheel(wheel)
    plan = ["clean"] * NUM_CLEAN + [f"{kind}@{level}" for kind in SHIFTS for level in LEVELS]
    train_z, test_z = slice_positions(label, num_training, len(plan))
    rng = np.random.default_rng(seed)
    # the test order is shuffled against z so no shift sits only at the top or the bottom of the brain
    plan = [plan[i] for i in rng.permutation(len(plan))]

    def write(array: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = sitk.GetImageFromArray(array[None])
        image.SetSpacing((1.0, 1.0, 1.0))
        sitk.WriteImage(image, str(path), True)

    for index, z in enumerate(train_z):
        write(degraded(t1[z], rng), raw_folder / "imagesTr" / f"brain_{index:03d}_0000.nii.gz")
        write(label[z], raw_folder / "labelsTr" / f"brain_{index:03d}.nii.gz")
    difficulty = {}
    for index, (z, what) in enumerate(zip(test_z, plan), start=len(train_z)):
        case = f"brain_{index:03d}"
        difficulty[case] = what
        image = t1[z]
        if what != "clean":
            kind, level = what.split("@")
            image = shifted(image, label[z] > 0, kind, float(level), rng)
        write(degraded(image, rng), raw_folder / "imagesTs" / f"{case}_0000.nii.gz")
        write(label[z], raw_folder / "labelsTs" / f"{case}.nii.gz")
    dataset_json = {
        "channel_names": {"0": "T1"},
        "labels": LABELS,
        "numTraining": len(train_z),
        "file_ending": ".nii.gz",
    }
    (raw_folder / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    (raw_folder / "test_shifts.json").write_text(json.dumps(difficulty, indent=1))
    return difficulty
