"""Run the worked example of documentation/annotation_and_review.md and draw its pictures.

Usage: python scripts/make_annotation_review_figures.py WORK_FOLDER

Builds a small pool (4 synthetic cases) with the simulated network of
scripts/benchmarks/bench_guided_annotation.py ("systematic" regime), writes it in the layout of
nnUNetv2_uncertainty's output, then runs nnUNetv2_suggest_annotations, nnUNetv2_simulate_correction_scribbles,
nnUNetv2_plot_overlay_pngs and nnUNetv2_make_report, and copies one overlay and a headless-Chromium
screenshot of the report (when `chromium` is on PATH) to documentation/images/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
from bench_guided_annotation import REGIMES, simulated_network  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
IMAGES = REPOSITORY / "documentation" / "images"
CHROMIUM = shutil.which("chromium")


def write_uncertainty_output(dataset: Path, output: Path) -> None:
    """Simulated ensemble -> segmentations, integer maps (x1000) and the score table, as nnUNetv2_uncertainty writes."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.uncertainty.measures import case_uncertainty_score, class_entropy
    from nnunetv2.uncertainty.score_report import write_score_report

    io = SimpleITKIO()
    (output / "uncertainty_maps").mkdir(parents=True)
    rows = []
    for index, label_file in enumerate(sorted((dataset / "labelsTr").glob("*.nii.gz"))):
        case = label_file.name[: -len(".nii.gz")]
        reference, properties = io.read_seg(label_file)
        ensemble = simulated_network(
            reference[0].astype(np.int64),
            np.asarray(properties["spacing"]),
            *REGIMES["systematic"],
            np.random.default_rng([0, index]),
        )
        segmentation = ensemble.mean(0).argmax(0).astype(np.uint8)
        uncertainty = class_entropy(ensemble)
        io.write_seg(segmentation, output / f"{case}.nii.gz", properties)
        io.write_seg(
            np.round(uncertainty * 1000).astype(np.uint16), output / "uncertainty_maps" / f"{case}.nii.gz", properties
        )
        rows.append({"case": case, "score": case_uncertainty_score(uncertainty, segmentation)})
    write_score_report(rows, {"measure": "class_entropy", "map_scale": 1000}, output)
    shutil.copy(dataset / "dataset.json", output / "dataset.json")


def screenshot(page: Path, target: Path) -> None:
    """A headless-Chromium screenshot of ``page``."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={target}",
                "--window-size=1800,1250",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )


def main(work: Path) -> None:
    from nnunetv2.cli.annotation import simulate_correction_scribbles_entry, suggest_annotations_entry
    from nnunetv2.cli.visualization import make_report_entry, plot_overlay_pngs_entry
    from nnunetv2.dataset.synthetic import generate_synthetic_dataset

    dataset = work / "Dataset951_Review"
    generate_synthetic_dataset(dataset, num_cases=4, shape=(32, 64, 64), seed=0, overwrite=True)
    write_uncertainty_output(dataset, work / "uncertainty")
    # 5 x 5 windows, the defaults before 3 x 3 (the documented example and its pictures were made with them:
    # on this simulated pool 3 x 3 windows rarely hold a correctable error piece to draw in)
    suggest_annotations_entry(
        [
            "-i",
            str(work / "uncertainty"),
            "-o",
            str(work / "worklist"),
            "--budget",
            "40",
            "--window_radius",
            "2",
            "--exclusion_radius",
            "10",
            "--quiet",
        ]
    )
    # the simulated person's strokes along the worklist, 15 voxels per case
    simulate_correction_scribbles_entry(
        [
            "-i",
            str(work / "uncertainty"),
            "-r",
            str(dataset / "labelsTr"),
            "-o",
            str(work / "scribbles"),
            "--budget",
            "60",
            "--placement",
            "guided",
            "-w",
            str(work / "worklist"),
        ]
    )
    layers = ["-u", str(work / "uncertainty"), "--scribbles", str(work / "scribbles"), "-w", str(work / "worklist")]
    plot_overlay_pngs_entry(
        [
            "-i",
            str(dataset / "imagesTr"),
            "-s",
            str(work / "uncertainty"),
            "-o",
            str(work / "overlays"),
            "--quiet",
            *layers,
        ]
    )
    make_report_entry(
        [
            "-i",
            str(dataset / "imagesTr"),
            "-s",
            str(work / "uncertainty"),
            "-ref",
            str(dataset / "labelsTr"),
            "-o",
            str(work / "report"),
            "-title",
            "Dataset951_Review: simulated checkpoint ensemble (systematic errors), review round 1",
            "--quiet",
            *layers,
        ]
    )
    first = next(line.split(",") for line in (work / "worklist" / "worklist.csv").read_text().splitlines()[1:])
    shutil.copyfile(work / "overlays" / f"{first[1]}_z{int(first[4]):04d}.png", IMAGES / "annotation_overlay.png")
    if CHROMIUM is not None:
        screenshot(work / "report" / "index.html", IMAGES / "annotation_report.png")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    main(Path(sys.argv[1]))
