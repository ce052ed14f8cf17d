"""Draw documentation/images/sparse_modes.png: one label map under each sparse-annotation mode."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from nnunetv2.sparse.simulate import simulate_patches, simulate_scribbles, simulate_slices  # noqa: E402

IGNORE = 3


def example_labels() -> np.ndarray:
    """A 3D label map with a large ellipsoid (1) holding a small one (2)."""
    z, y, x = np.mgrid[:48, :96, :96]
    labels = np.zeros((48, 96, 96), dtype=np.int16)
    labels[((z - 24) / 20) ** 2 + ((y - 48) / 34) ** 2 + ((x - 48) / 28) ** 2 < 1] = 1
    labels[((z - 24) / 8) ** 2 + ((y - 40) / 8) ** 2 + ((x - 60) / 6) ** 2 < 1] = 2
    return labels


def main(output: Path) -> None:
    labels = example_labels()
    maps = {
        "dense labels": labels,
        "scribble (thickness 3)": simulate_scribbles(labels, IGNORE, seed=0),
        "slices (10% along axes 0, 2)": simulate_slices(labels, IGNORE, 0.1, axes=(0, 2), seed=0),
        "patches (3 cubes of 24)": simulate_patches(labels, IGNORE, 3, 24, seed=3),
    }
    colours = ListedColormap(["#3b4cc0", "#f2c14e", "#d1495b", "#ffffff"])
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.5))
    for column, (title, m) in enumerate(maps.items()):
        annotated = 100 * (m != IGNORE).mean()
        axes[0, column].imshow(m[24], cmap=colours, vmin=0, vmax=3, interpolation="nearest")
        axes[0, column].set_title(f"{title}\n{annotated:.1f}% of voxels annotated", fontsize=10)
        axes[1, column].imshow(m[:, 48], cmap=colours, vmin=0, vmax=3, interpolation="nearest", aspect=1)
    axes[0, 0].set_ylabel("axial slice (axis 0 = 24)")
    axes[1, 0].set_ylabel("cut along axis 1 (= 48)")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.5, 0.02, "blue background, yellow class 1, red class 2, white = ignore (not annotated)", ha="center")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(output, dpi=80)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("documentation/images/sparse_modes.png"))
