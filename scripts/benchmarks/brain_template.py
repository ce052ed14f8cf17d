"""Real anatomy for the benchmarks: the MNI ICBM152 2009 T1 template and its tissue labels, degraded per case.

The template (nonlinear, symmetric) and its grey- and white-matter probability maps are read from the
nilearn wheel with zipfile; nilearn is neither installed nor imported. Labels: 0 background (CSF, skull,
outside), 1 grey matter, 2 white matter, the most probable tissue per voxel.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from scipy import ndimage

TEMPLATE = "nilearn/datasets/data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
LABELS = {"background": 0, "grey matter": 1, "white matter": 2}


def download_wheel(folder: Path) -> Path:
    """Fetch the nilearn wheel (no dependencies) into ``folder`` unless one is there; return its path."""
    found = sorted(folder.glob("nilearn-*.whl"))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "nilearn", "--no-deps", "-q", "-d", str(folder)]
        subprocess.run(command, check=True)
        found = sorted(folder.glob("nilearn-*.whl"))
    return found[-1]


def template_from_wheel(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (T1 image float32, tissue label uint8), both (z, y, x) at 1 mm, cropped to the head."""
    import nibabel as nib

    arrays = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in ("t1", "gm", "wm"):
            image = nib.Nifti1Image.from_bytes(gzip.decompress(archive.read(TEMPLATE.format(name))))
            arrays[name] = np.asarray(image.dataobj, dtype=np.float32).transpose(2, 1, 0)  # (x, y, z) -> (z, y, x)
    rest = np.clip(255.0 - arrays["gm"] - arrays["wm"], 0, None)
    label = np.argmax(np.stack([rest, arrays["gm"], arrays["wm"]]), 0).astype(np.uint8)
    box = ndimage.find_objects((label > 0).astype(np.uint8))[0]
    box = tuple(slice(max(0, s.start - 4), s.stop + 4) for s in box)
    return arrays["t1"][box], label[box]


def degraded(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return ``image`` with a scanner's flaws: a smooth bias field (+-25%), blur and Gaussian noise."""
    coarse = rng.uniform(-1, 1, size=tuple(min(4, n) for n in image.shape))
    field = ndimage.zoom(coarse, [n / c for n, c in zip(image.shape, coarse.shape)], order=3, mode="nearest")
    out = image * np.exp(rng.uniform(0.1, 0.25) * field[tuple(slice(0, n) for n in image.shape)])
    out = ndimage.gaussian_filter(out, rng.uniform(0.3, 0.8))
    return (out + rng.normal(0, rng.uniform(0.04, 0.08) * 200, out.shape)).astype(np.float32)
