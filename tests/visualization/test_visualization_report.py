"""The HTML report: every case listed, relative paths only, no external URL, legend, reference panel, title,
Dice/score/rank columns, escaping, and a real rendering in headless Chromium (skipped when `chromium` is not
on PATH)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from nnunetv2.cli.visualization import make_report_entry
from nnunetv2.visualization.report import make_report

CHROMIUM = shutil.which("chromium")
ODD = "odd & <name>"  # a case name that needs escaping in HTML and quoting in URLs
CASES = {"case_000": "case_000", "case_001": "case_001", "case_002": ODD}


class _Table(HTMLParser):
    """Collects the report's rows (id -> cell texts) and picture sources."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.sources: list[str] = []
        self.links: list[str] = []
        self.title = ""
        self._row = None
        self._cell = None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "id" in attrs:
            self._row = attrs["id"]
            self.rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self._cell = ""
        elif tag == "img":
            self.sources.append(attrs["src"])
        if tag in ("a", "link", "script", "img"):
            self.links += [attrs[k] for k in ("href", "src") if attrs.get(k)]
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self.rows[self._row].append(self._cell.strip())
            self._cell = None
        elif tag == "tr":
            self._row = None
        self._in_title = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._in_title:
            self.title += data


def _report_inputs(dataset: Path, root: Path) -> dict[str, Path]:
    """Images, labels, predictions (case_001 loses its label 1 in slices 6-9), float uncertainty maps, scores."""
    from nnunetv2.imageio.image_files import write_image
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    io = SimpleITKIO()
    folders = {name: root / name for name in ("images", "labels", "predictions", "uncertainty")}
    for folder in folders.values():
        folder.mkdir()
    for source, case in CASES.items():
        shutil.copy(dataset / "imagesTr" / f"{source}_0000.nii.gz", folders["images"] / f"{case}_0000.nii.gz")
        shutil.copy(dataset / "labelsTr" / f"{source}.nii.gz", folders["labels"] / f"{case}.nii.gz")
        seg, properties = io.read_seg(dataset / "labelsTr" / f"{source}.nii.gz")
        prediction = seg[0].copy()
        if source == "case_001":
            prediction[6:10][prediction[6:10] == 1] = 0
        io.write_seg(prediction, folders["predictions"] / f"{case}.nii.gz", properties)
        uncertainty = np.zeros(seg.shape[1:], dtype=np.float32)
        uncertainty[6:10, 8:20, 8:20] = 0.8
        write_image(uncertainty, folders["uncertainty"] / f"{case}_uncertainty.nii.gz", properties["spacing"])
    shutil.copy(dataset / "dataset.json", folders["predictions"] / "dataset.json")
    (folders["uncertainty"] / "scores.json").write_text(json.dumps({c: 0.25 for c in CASES.values()}))
    return folders


def _make(tmp_path: Path, dataset: Path, **kwargs) -> Path:
    from nnunetv2.annotation.suggest import suggest_annotations

    folders = _report_inputs(dataset, tmp_path)
    suggest_annotations(folders["uncertainty"], tmp_path / "worklist", folders["predictions"], budget=4, progress=False)
    return make_report(
        folders["images"],
        folders["predictions"],
        tmp_path / "report",
        reference_folder=folders["labels"],
        uncertainty_folder=folders["uncertainty"],
        worklist=tmp_path / "worklist",
        progress=False,
        **kwargs,
    )


def test_the_report_lists_every_case_with_its_pictures_and_figures(tmp_path: Path, synthetic_dataset_3d: Path):
    index = _make(tmp_path, synthetic_dataset_3d, title="Review <round 1> & notes")
    text = index.read_text()
    table = _Table()
    table.feed(text)
    assert set(table.rows) == {f"case-{c}" for c in CASES.values()}
    assert table.title == "Review <round 1> & notes" and "<round 1>" not in text  # escaped in the file
    assert "&lt;name&gt;" in text and "<name>" not in text
    assert table.sources and set(table.sources) <= set(table.links)
    for link in table.links:  # every picture and link resolves inside the report's folder, none leaves the disk
        assert not link.startswith(("/", "file:", "http:", "https:")) and "//" not in link
        assert (index.parent / unquote(link)).is_file()
    assert str(tmp_path) not in text and "http" not in text.replace("http-equiv", "")  # relative paths only
    # the legend: label names with colours, scribbles, worklist box, heat-map scale; the reference panel
    for words in ("1: blob", "2: tube", "Worklist", "Heat map", "uncertainty", "left: reference labels"):
        assert words in text
    assert "<script>" in text and 'querySelectorAll("th")' in text  # click-to-sort headings
    assert "voxel (x, y, z) = (" in text and ") mm</li>" in text  # worklist entries in viewer terms
    assert any(unquote(s) == f"pngs/{ODD}.png" for s in table.sources)
    # columns: case, Dice blob, Dice tube, mean Dice, uncertainty score, worklist rank, worklist regions, slices
    assert table.rows["case-case_000"][1:5] == ["1.000", "1.000", "1.000", "0.250"]
    dice_blob = float(table.rows["case-case_001"][1])
    assert 0.0 < dice_blob < 1.0
    ranks = sorted(int(r[5]) for r in table.rows.values() if r[5])
    assert ranks and ranks[0] == 1 and int(table.rows["case-case_000"][6]) >= 0
    assert "worklist #1" in text and "most foreground" in text


def test_report_command_and_missing_reference(tmp_path: Path, synthetic_dataset_3d: Path, capsys):
    folders = _report_inputs(synthetic_dataset_3d, tmp_path)
    (folders["labels"] / "case_000.nii.gz").unlink()  # no reference: the Dice cells stay empty
    make_report_entry(
        [
            "-i",
            str(folders["images"]),
            "-s",
            str(folders["predictions"]),
            "-o",
            str(tmp_path / "report"),
            "-ref",
            str(folders["labels"]),
            "--quiet",
        ]
    )
    assert "index.html (open file://" in capsys.readouterr().out
    assert "dataset not recorded" not in (tmp_path / "report" / "index.html").read_text()
    table = _Table()
    table.feed((tmp_path / "report" / "index.html").read_text())
    assert table.rows["case-case_000"][1:4] == ["", "", ""] and table.rows["case-case_001"][1] != ""
    with pytest.raises(SystemExit) as exit_info:
        make_report_entry(
            ["-i", str(folders["images"]), "-s", str(tmp_path / "nowhere"), "-o", str(tmp_path / "r2"), "--quiet"]
        )
    assert exit_info.value.code == 1 and "nowhere: segmentations folder not found" in capsys.readouterr().err


def test_the_default_title_names_dataset_and_model(tmp_path: Path, synthetic_dataset_3d: Path):
    from nnunetv2.visualization.report import describe_segmentations

    folders = _report_inputs(synthetic_dataset_3d, tmp_path)
    assert describe_segmentations(folders["predictions"]) == (  # the name in dataset.json, no model record
        "Dataset901_Synthetic3D: segmentations by a model not recorded (predictions)"
    )
    (folders["predictions"] / "predict_from_raw_data_args.json").write_text(
        json.dumps(
            {"model_folder": "/x/Dataset901_Synthetic3D/nnUNetTrainer__nnUNetPlans__3d_fullres", "folds": [0, 1]}
        )
    )
    (folders["predictions"] / "plans.json").write_text(json.dumps({"dataset_name": "Dataset901_Synthetic3D"}))
    title = describe_segmentations(folders["predictions"])
    assert title == (
        "Dataset901_Synthetic3D: segmentations by nnUNetTrainer__nnUNetPlans__3d_fullres, folds 0, 1 (predictions)"
    )


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (`chromium`) is not on PATH")
def test_the_report_renders_in_headless_chromium(tmp_path: Path, synthetic_dataset_3d: Path):
    from PIL import Image

    index = _make(tmp_path, synthetic_dataset_3d)
    screenshot = tmp_path / "screenshot.png"
    with tempfile.TemporaryDirectory() as profile:
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={profile}",
        ]
        subprocess.run(
            [CHROMIUM, *flags, f"--screenshot={screenshot}", "--window-size=1800,1300", index.resolve().as_uri()],
            capture_output=True,
            timeout=180,
            check=True,
        )
        dom = subprocess.run(
            [CHROMIUM, *flags, "--dump-dom", index.resolve().as_uri()],
            capture_output=True,
            timeout=180,
            check=True,
            text=True,
        ).stdout
    for case in CASES.values():
        assert f'id="case-{case.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}"' in dom
    from nnunetv2.visualization.slice_figure import BACKGROUND

    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (1300, 1800)
    # the figures' dark background, heat colours and cyan worklist boxes come from the pictures: a broken image
    # shows its alt text instead, and the page itself has none of the background and only a few swatch pixels
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert np.count_nonzero(np.all(pixels == BACKGROUND, axis=2)) > 100_000
    assert np.count_nonzero((red - blue > 80) & (green - blue > 20)) > 2000
    assert np.count_nonzero((red < 60) & (green > 200) & (blue > 200)) > 500
