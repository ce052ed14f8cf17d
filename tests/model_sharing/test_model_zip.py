import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nnunetv2.exceptions import NnUNetError
from nnunetv2.model_sharing.model_export import export_pretrained_model
from nnunetv2.model_sharing.model_import import install_model_from_zip_file

BIN = Path(sys.executable).parent
DATASET = "Dataset993_Share"
MODEL = f"{DATASET}/nnUNetTrainer__nnUNetPlans__3d_fullres"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def trained(nnunet_env) -> Path:
    """A model folder with two folds, cross-validation results, an ensemble and the dataset-level files."""
    results = nnunet_env["nnUNet_results"]
    contents = {
        f"{MODEL}/plans.json": "{}",
        f"{MODEL}/dataset.json": "{}",
        f"{MODEL}/dataset_fingerprint.json": "{}",
        f"{MODEL}/crossval_results_folds_0_1/summary.json": "{}",
        f"{MODEL}/crossval_results_folds_0_1/postprocessing.json": "{}",
        f"{MODEL}/crossval_results_folds_0_1/c0.nii.gz": "cv prediction",
        f"{DATASET}/nnUNetTrainer__nnUNetPlans__2d/plans.json": "{}",
        f"{DATASET}/nnUNetTrainer__nnUNetPlans__2d/dataset.json": "{}",
        f"{DATASET}/nnUNetTrainer__nnUNetPlans__2d/fold_0/checkpoint_final.pth": "2d weights 0",
        f"{DATASET}/nnUNetTrainer__nnUNetPlans__2d/fold_1/checkpoint_final.pth": "2d weights 1",
        f"{DATASET}/ensembles/ensemble___nnUNetTrainer__nnUNetPlans__3d_fullres___nnUNetTrainer__nnUNetPlans__2d"
        f"___0_1/postprocessing.json": "{}",
        f"{DATASET}/inference_information.json": "{}",
        f"{DATASET}/inference_instructions.txt": "run this",
    }
    for fold in (0, 1):
        contents.update(
            {
                f"{MODEL}/fold_{fold}/checkpoint_final.pth": f"weights {fold}",
                f"{MODEL}/fold_{fold}/checkpoint_best.pth": f"best {fold}",
                f"{MODEL}/fold_{fold}/debug.json": "{}",
                f"{MODEL}/fold_{fold}/progress.png": "png",
                f"{MODEL}/fold_{fold}/training_log.txt": "log",
                f"{MODEL}/fold_{fold}/validation/summary.json": "{}",
                f"{MODEL}/fold_{fold}/validation/c{fold}.nii.gz": "prediction",
                f"{MODEL}/fold_{fold}/validation/c{fold}.npz": "probabilities",
            }
        )
    for name, text in contents.items():
        (results / name).parent.mkdir(parents=True, exist_ok=True)
        (results / name).write_text(text)
    return results


def test_export_and_install_round_trip(trained, tmp_path, monkeypatch):
    archive = tmp_path / "model.zip"
    names = export_pretrained_model(
        993, archive, ["3d_fullres"], folds=[0, 1], save_checkpoints=["checkpoint_final.pth", "checkpoint_best.pth"]
    )
    expected = {
        f"{MODEL}/{n}"
        for n in (
            "plans.json",
            "dataset.json",
            "dataset_fingerprint.json",
            "crossval_results_folds_0_1/summary.json",
            "crossval_results_folds_0_1/postprocessing.json",
        )
    }
    for fold in (0, 1):
        expected |= {
            f"{MODEL}/fold_{fold}/{n}"
            for n in (
                "checkpoint_final.pth",
                "checkpoint_best.pth",
                "debug.json",
                "progress.png",
                "validation/summary.json",
            )
        }
    # the ensemble's other member (2d) is not exported, so neither is the ensemble
    expected |= {f"{DATASET}/inference_information.json", f"{DATASET}/inference_instructions.txt"}
    assert set(names) == expected
    with zipfile.ZipFile(archive) as z:
        assert set(z.namelist()) == expected

    fresh = tmp_path / "other_results"
    monkeypatch.setenv("nnUNet_results", str(fresh))
    written = install_model_from_zip_file(archive)
    assert len(written) == len(expected)
    original = _files(trained)
    assert _files(fresh) == {name: original[name] for name in expected}


def test_export_options(trained, tmp_path):
    archive = tmp_path / "all.zip"
    names = export_pretrained_model(DATASET, archive, folds=[0, 1], export_crossval_predictions=True)
    ensemble = (
        f"{DATASET}/ensembles/ensemble___nnUNetTrainer__nnUNetPlans__3d_fullres___nnUNetTrainer__"
        f"nnUNetPlans__2d___0_1/postprocessing.json"
    )
    # every trained configuration by default, so the ensemble of both goes along
    assert f"{DATASET}/nnUNetTrainer__nnUNetPlans__2d/fold_1/checkpoint_final.pth" in names and ensemble in names
    # cross-validation predictions, but never the bulky probabilities
    assert f"{MODEL}/fold_0/validation/c0.nii.gz" in names and f"{MODEL}/fold_0/validation/c0.npz" not in names
    assert f"{MODEL}/crossval_results_folds_0_1/c0.nii.gz" in names
    assert not any(n.endswith(("training_log.txt", "checkpoint_best.pth")) for n in names)


def test_checkpoint_ensemble_goes_along_only_when_asked(trained, tmp_path):
    fold = trained / MODEL / "fold_0"
    index = {
        "checkpoints": [
            {"file": "checkpoint_cycle1_epoch7.pth", "cycle": 1, "epoch": 7},
            {"file": "checkpoint_final.pth", "cycle": 1, "epoch": 10},
        ]
    }
    (fold / "checkpoint_ensemble.json").write_text(json.dumps(index))
    (fold / "checkpoint_cycle1_epoch7.pth").write_text("cycle weights")
    plain = export_pretrained_model(DATASET, tmp_path / "plain.zip", ["3d_fullres"], folds=[0, 1])
    assert not any("checkpoint_ensemble" in n or "cycle" in n for n in plain)
    names = export_pretrained_model(
        DATASET, tmp_path / "ensemble.zip", ["3d_fullres"], folds=[0, 1], checkpoint_ensemble=True
    )
    fold_0 = [n for n in names if n.startswith(f"{MODEL}/fold_0/")]
    assert sorted(fold_0) == sorted(
        f"{MODEL}/fold_0/{n}"
        for n in (
            "checkpoint_final.pth",
            "checkpoint_ensemble.json",
            "checkpoint_cycle1_epoch7.pth",
            "debug.json",
            "progress.png",
            "validation/summary.json",
        )
    )
    assert not any("checkpoint_ensemble" in n for n in names if "/fold_1/" in n)  # fold 1 has no ensemble
    (fold / "checkpoint_cycle1_epoch7.pth").unlink()
    with pytest.raises(
        NnUNetError,
        match=r"checkpoint_cycle1_epoch7.pth: listed in .*checkpoint_ensemble.json "
        r"but not found",
    ):
        export_pretrained_model(DATASET, tmp_path / "broken.zip", ["3d_fullres"], folds=[0], checkpoint_ensemble=True)
    assert not (tmp_path / "broken.zip").exists()


def test_export_errors(trained, tmp_path):
    with pytest.raises(NnUNetError, match=r"3d_lowres: not found; train configuration 3d_lowres or use --not_strict"):
        export_pretrained_model(DATASET, tmp_path / "m.zip", ["3d_fullres", "3d_lowres"], folds=[0, 1])
    with pytest.raises(NnUNetError, match=r"fold_2/checkpoint_final.pth: not found \(use --not_strict"):
        export_pretrained_model(DATASET, tmp_path / "m.zip", ["3d_fullres"], folds=[0, 1, 2])
    assert not (tmp_path / "m.zip").exists()
    names = export_pretrained_model(
        DATASET, tmp_path / "m.zip", ["3d_fullres", "3d_lowres"], folds=[0, 1, 2], strict=False
    )
    assert not any("fold_2" in n or "3d_lowres" in n for n in names)
    with pytest.raises(NnUNetError, match=r"3d_fullres: none of the folds 3, 4 has checkpoint_final.pth"):
        export_pretrained_model(DATASET, tmp_path / "m.zip", ["3d_fullres"], folds=[3, 4], strict=False)
    with pytest.raises(NnUNetError, match="no model trained with nnUNetTrainerX and nnUNetPlans"):
        export_pretrained_model(DATASET, tmp_path / "m.zip", trainer="nnUNetTrainerX")


def _zip_with(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for info, data in members:
            z.writestr(info, data)
    return path


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "bad_member, reason",
    [
        ("../evil.txt", "would be written outside the target folder ('..' in its path)"),
        (f"{DATASET}/../../evil.txt", "would be written outside the target folder ('..' in its path)"),
        (f"{DATASET}\\..\\..\\evil.txt", "would be written outside the target folder ('..' in its path)"),
        ("/tmp/evil.txt", "has an absolute path"),
        ("C:\\evil.txt", "has an absolute path"),
        (_symlink(f"{DATASET}/link", "/etc"), "is a symbolic link"),
        ("notes/readme.txt", "is not inside a DatasetXXX_Name folder"),
    ],
)
def test_unsafe_archives_are_refused_and_nothing_is_written(tmp_path, bad_member, reason):
    target = tmp_path / "results"
    target.mkdir()
    archive = _zip_with(tmp_path / "bad.zip", [(f"{MODEL}/plans.json", b"{}"), (bad_member, b"x")])
    name = bad_member.filename if isinstance(bad_member, zipfile.ZipInfo) else bad_member
    with pytest.raises(NnUNetError) as error:
        install_model_from_zip_file(archive, target)
    assert (
        str(error.value)
        == f"{archive}: member '{name}' {reason}"
        + ("; this is not an nnU-Net model archive" if "Dataset" in reason else "")
        + "; nothing was installed"
    )
    assert list(target.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_damaged_missing_and_non_zip_archives(tmp_path):
    target = tmp_path / "results"
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{MODEL}/a.json", b"{}")
        z.writestr(f"{MODEL}/fold_0/checkpoint_final.pth", b"WEIGHTS" * 10)
    data = archive.read_bytes()
    archive.write_bytes(data.replace(b"WEIGHTSWEIGHTS", b"WEIGHTSXEIGHTS", 1))
    with pytest.raises(NnUNetError, match=r"member '.*checkpoint_final.pth' is damaged \(CRC mismatch\); nothing"):
        install_model_from_zip_file(archive, target)
    assert not target.exists() or list(target.iterdir()) == []
    with pytest.raises(NnUNetError, match="missing.zip: file not found"):
        install_model_from_zip_file(tmp_path / "missing.zip", target)
    (tmp_path / "text.zip").write_text("hello")
    with pytest.raises(NnUNetError, match="text.zip: not a zip file"):
        install_model_from_zip_file(tmp_path / "text.zip", target)
    with pytest.raises(NnUNetError, match="empty.zip: the archive is empty"):
        install_model_from_zip_file(_zip_with(tmp_path / "empty.zip", []), target)


def test_commands(trained, tmp_path):
    archive = tmp_path / "cli.zip"
    run = subprocess.run(
        [BIN / "nnUNetv2_export_model_to_zip", "-d", "993", "-o", archive, "-c", "3d_fullres", "-f", "0", "1"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert zipfile.ZipFile(archive).getinfo(f"{MODEL}/fold_1/checkpoint_final.pth")
    run = subprocess.run([BIN / "nnUNetv2_install_pretrained_model_from_zip", archive], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    bad = _zip_with(tmp_path / "slip.zip", [("../../escape.txt", b"x")])
    run = subprocess.run([BIN / "nnUNetv2_install_pretrained_model_from_zip", bad], capture_output=True, text=True)
    assert run.returncode == 1
    assert (
        run.stderr == f"error: {bad}: member '../../escape.txt' would be written outside the target folder "
        f"('..' in its path); nothing was installed\n"
    )
