"""A dataset conversion script written for nnU-Net v2 (generate_dataset_json, nnunetv2.paths) runs unchanged,
and its dataset plans and preprocesses with nnU-Net v2's planning flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent

# in the style of nnU-Net v2's dataset_conversion/DatasetXXX_*.py scripts: nothing here knows this project
CONVERSION_SCRIPT = """
import os
import shutil
import sys

from batchgenerators.utilities.file_and_folder_operations import join, maybe_mkdir_p, subfiles

from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json
from nnunetv2.paths import nnUNet_raw

if __name__ == '__main__':
    source = sys.argv[1]
    dataset_name = 'Dataset123_Toy'
    imagestr = join(nnUNet_raw, dataset_name, 'imagesTr')
    labelstr = join(nnUNet_raw, dataset_name, 'labelsTr')
    maybe_mkdir_p(imagestr)
    maybe_mkdir_p(labelstr)
    cases = subfiles(join(source, 'scans'), suffix='.nii.gz', join=False)
    for c in cases:
        case_id = c[:-len('.nii.gz')]
        shutil.copy(join(source, 'scans', c), join(imagestr, case_id + '_0000.nii.gz'))
        shutil.copy(join(source, 'masks', c), join(labelstr, case_id + '.nii.gz'))
    generate_dataset_json(join(nnUNet_raw, dataset_name), {0: 'T1'}, {'background': 0, 'blob': 1, 'tube': 2},
                          len(cases), '.nii.gz', dataset_name=dataset_name, reference='made up', release='1.0')
"""


def test_an_nnunet_v2_conversion_script_runs_unchanged_and_its_dataset_plans(
    synthetic_dataset_3d, nnunet_env, tmp_path
):
    source = tmp_path / "downloaded"
    (source / "scans").mkdir(parents=True)
    (source / "masks").mkdir()
    for image in sorted((synthetic_dataset_3d / "imagesTr").glob("*_0000.nii.gz"))[:4]:
        case = image.name[: -len("_0000.nii.gz")]
        (source / "scans" / f"{case}.nii.gz").write_bytes(image.read_bytes())
        (source / "masks" / f"{case}.nii.gz").write_bytes(
            (synthetic_dataset_3d / "labelsTr" / f"{case}.nii.gz").read_bytes()
        )
    script = tmp_path / "Dataset123_Toy.py"
    script.write_text(CONVERSION_SCRIPT)
    env = {**os.environ, **{k: str(v) for k, v in nnunet_env.items()}, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(source)], check=True, env=env)

    raw = nnunet_env["nnUNet_raw"] / "Dataset123_Toy"
    dataset_json = json.loads((raw / "dataset.json").read_text())
    assert dataset_json["channel_names"] == {"0": "T1"} and dataset_json["labels"]["tube"] == 2
    assert dataset_json["numTraining"] == 4 and dataset_json["name"] == "Dataset123_Toy"
    assert len(list((raw / "imagesTr").iterdir())) == 4

    command = [str(BIN / "nnUNetv2_plan_and_preprocess"), "-d", "123", "-c", "3d_fullres", "-np", "1", "-npfp", "1"]
    command += ["--verify_dataset_integrity", "-fpe", "DatasetFingerprintExtractor", "--no_pbar", "--verbose"]
    command += ["-overwrite_target_spacing", "4", "2", "2", "-overwrite_plans_name", "nnUNetPlans_coarse"]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    preprocessed = nnunet_env["nnUNet_preprocessed"] / "Dataset123_Toy"
    plans = json.loads((preprocessed / "nnUNetPlans_coarse.json").read_text())
    assert plans["configurations"]["3d_fullres"]["spacing"] == [4.0, 2.0, 2.0]
    assert len(list((preprocessed / "nnUNetPlans_coarse_3d_fullres").glob("*.b2nd"))) >= 4
    assert "\r" not in result.stderr  # --no_pbar: no progress bars redrawn


def test_an_unknown_fingerprint_extractor_is_refused(nnunet_env):
    env = {**os.environ, **{k: str(v) for k, v in nnunet_env.items()}}
    result = subprocess.run(
        [str(BIN / "nnUNetv2_extract_fingerprint"), "-d", "1", "-fpe", "MyExtractor"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: -fpe MyExtractor: unknown fingerprint extractor (only DatasetFingerprintExtractor exists)"
    )
