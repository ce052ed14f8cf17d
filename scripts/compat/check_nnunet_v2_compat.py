"""Check that nnU-Net v2 and this package predict the same with each other's trained model folders.

    .venv/bin/python scripts/compat/check_nnunet_v2_compat.py --reference-bin REFERENCE_VENV/bin \
        [--work-dir DIR] [--write-fixture tests/inference/data_nnunet_v2_compat]

``--reference-bin`` is the bin/ folder of a separate venv holding nnU-Net v2 (e.g. 2.8.1); this
package runs from the interpreter that runs the script. Steps (a trained model already in
``--work-dir`` is reused):

1. Generate small synthetic datasets with our generator: training sets and separate test images
   with another shape and spacing (so prediction resamples on the way in and out).
2. nnU-Net v2 plans, preprocesses and trains (``nnUNetTrainer_1epoch``, CPU) a 3d_fullres and a
   2d model of a 3D MR dataset with two channels. A second fold is made from fold 0 by adding
   noise to its weights, to compare the averaging over folds.
3. We plan, preprocess and train (one epoch, 50 iterations) a 3d_fullres model of a CT dataset
   with regions whose coarse axis is the last (the plans transpose it) and a 2d model of PNG images.
4. Both tools predict every test image with every model (``--save_probabilities``, CPU); labels
   are compared voxel by voxel, probabilities by their largest difference, and the output
   geometry (spacing, origin, direction) must be equal. A diagnostic run repeats nnU-Net v2's
   prediction with its tile accumulator in float32 instead of float16, which is what remains
   between the two.

Exit status 1 when an agreement threshold is missed. ``--write-fixture`` also trains a tiny
nnU-Net v2 model and stores it with one input case and nnU-Net v2's prediction of it, for
tests/inference/test_nnunet_v2_compat.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DRIVER = Path(__file__).resolve().parent / "nnunet_v2_driver.py"
MIN_IDENTICAL_PERCENT = 99.9
MAX_PROBABILITY_DIFFERENCE = 1e-2  # nnU-Net v2 accumulates tile logits in float16
MAX_PROBABILITY_DIFFERENCE_FP32 = 1e-4  # ... and with that accumulator in float32

# id -> (name, generator arguments)
DATASETS = {
    501: ("Compat3D", ["--num_cases", "6", "--shape", "24", "40", "40", "--spacing", "3", "1", "1", "--channels", "2"]),
    502: (
        "Compat3DTest",
        [
            "--num_cases",
            "3",
            "--shape",
            "20",
            "72",
            "64",
            "--spacing",
            "4",
            "0.8",
            "0.9",
            "--channels",
            "2",
            "--seed",
            "7",
        ],
    ),
    503: (
        "CompatRegionsCT",
        [
            "--num_cases",
            "6",
            "--shape",
            "40",
            "44",
            "20",
            "--spacing",
            "1.0",
            "0.9",
            "2.5",
            "--intensity",
            "ct",
            "--regions",
        ],
    ),
    504: (
        "CompatRegionsCTTest",
        [
            "--num_cases",
            "3",
            "--shape",
            "56",
            "60",
            "24",
            "--spacing",
            "0.8",
            "0.8",
            "3.0",
            "--intensity",
            "ct",
            "--regions",
            "--seed",
            "5",
        ],
    ),
    505: ("Compat2D", ["--num_cases", "6", "--shape", "64", "64", "--file_ending", ".png"]),
    506: ("Compat2DTest", ["--num_cases", "3", "--shape", "96", "128", "--file_ending", ".png", "--seed", "9"]),
    507: (
        "CompatFixtureInput",
        [
            "--num_cases",
            "1",
            "--shape",
            "20",
            "64",
            "56",
            "--spacing",
            "4",
            "0.8",
            "0.9",
            "--channels",
            "2",
            "--seed",
            "11",
        ],
    ),
}


@dataclass
class Check:
    """One model predicted by both tools on the same images."""

    title: str
    model: Path
    images: Path
    flags: list[str] = field(default_factory=list)
    folds: tuple[str, ...] = ("0",)
    float32_reference: bool = False


class Runner:
    """Runs both tools' commands with the three nnU-Net folders of the work directory."""

    def __init__(self, work: Path, reference_bin: Path):
        self.work = work
        self.reference_python = str(reference_bin / "python")
        self.reference_bin = reference_bin
        self.ours_bin = Path(sys.executable).parent
        self.env = dict(os.environ, nnUNet_n_proc_DA="2")
        for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            (work / name).mkdir(parents=True, exist_ok=True)
            self.env[name] = str(work / name)

    def run(self, command: list[str], title: str) -> None:
        print(f"- {title}", flush=True)
        log = self.work / "logs" / (title.replace(" ", "_").replace("/", "_") + ".log")
        log.parent.mkdir(exist_ok=True)
        with open(log, "w") as f:
            done = subprocess.run(command, env=self.env, stdout=f, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{log.read_text()[-3000:]}")

    def ours(self, command: str, *args: str, title: str) -> None:
        self.run([str(self.ours_bin / command), *args], title)

    def reference(self, command: str, *args: str, title: str, float32_accumulation: bool = False) -> None:
        """nnU-Net v2's train / predict go through the driver (trainer search), the rest are its commands."""
        if command in ("train", "predict_from_modelfolder"):
            extra = ["--float32-accumulation"] if float32_accumulation else []
            self.run([self.reference_python, str(DRIVER), *extra, command, *args], title)
        else:
            self.run([str(self.reference_bin / command), *args], title)

    def dataset(self, dataset_id: int) -> Path:
        return self.work / "nnUNet_raw" / f"Dataset{dataset_id}_{DATASETS[dataset_id][0]}"

    def model(self, dataset_id: int, trainer: str, configuration: str, plans: str = "nnUNetPlans") -> Path:
        return (
            self.work
            / "nnUNet_results"
            / f"Dataset{dataset_id}_{DATASETS[dataset_id][0]}"
            / f"{trainer}__{plans}__{configuration}"
        )


def prepare_datasets(runner: Runner) -> None:
    for dataset_id, (name, arguments) in DATASETS.items():
        if not runner.dataset(dataset_id).is_dir():
            runner.ours(
                "nnUNetv2_generate_synthetic_dataset",
                "-d",
                str(dataset_id),
                "-n",
                name,
                *arguments,
                title=f"generate Dataset{dataset_id}",
            )


def train_reference_models(runner: Runner) -> None:
    """nnU-Net v2 plans, preprocesses and trains Dataset501 (3d_fullres and 2d); adds a noisy fold 1."""
    if not (runner.work / "nnUNet_preprocessed" / "Dataset501_Compat3D" / "nnUNetPlans_2d").is_dir():
        runner.reference(
            "nnUNetv2_plan_and_preprocess",
            "-d",
            "501",
            "-c",
            "2d",
            "3d_fullres",
            "-np",
            "2",
            title="nnU-Net v2 plan_and_preprocess 501",
        )
    for configuration in ("3d_fullres", "2d"):
        model = runner.model(501, "nnUNetTrainer_1epoch", configuration)
        if not (model / "fold_0" / "checkpoint_final.pth").is_file():
            runner.reference(
                "train",
                "501",
                configuration,
                "0",
                "-tr",
                "nnUNetTrainer_1epoch",
                "-device",
                "cpu",
                title=f"nnU-Net v2 train 501 {configuration}",
            )
    _add_noisy_fold(runner.model(501, "nnUNetTrainer_1epoch", "3d_fullres"))


def _add_noisy_fold(model: Path) -> None:
    """Write fold_1 = fold 0 with Gaussian noise on every floating-point weight (a stand-in second fold)."""
    import torch

    from nnunetv2.formats.checkpoint_io import load_checkpoint

    target = model / "fold_1" / "checkpoint_final.pth"
    if target.is_file():
        return
    checkpoint = load_checkpoint(model / "fold_0" / "checkpoint_final.pth")
    generator = torch.Generator().manual_seed(1)
    for _name, tensor in checkpoint["network_weights"].items():
        if tensor.is_floating_point():
            scale = 0.1 * float(tensor.std()) if tensor.numel() > 1 else 0.0
            tensor.add_(torch.randn(tensor.shape, generator=generator) * scale)
    checkpoint["init_args"]["fold"] = 1
    target.parent.mkdir(exist_ok=True)
    torch.save(checkpoint, target)


def train_our_models(runner: Runner) -> None:
    """We plan, preprocess and train Dataset503 (3d_fullres, regions, CT) and Dataset505 (2d, PNG)."""
    for dataset_id, configuration in ((503, "3d_fullres"), (505, "2d")):
        if not (runner.work / "nnUNet_preprocessed" / runner.dataset(dataset_id).name / "nnUNetPlans.json").is_file():
            runner.ours(
                "nnUNetv2_plan_and_preprocess",
                "-d",
                str(dataset_id),
                "-c",
                configuration,
                "-np",
                "2",
                "--quiet",
                title=f"ours plan_and_preprocess {dataset_id}",
            )
        if not (runner.model(dataset_id, "nnUNetTrainer", configuration) / "fold_0" / "checkpoint_final.pth").is_file():
            runner.ours(
                "nnUNetv2_train",
                str(dataset_id),
                configuration,
                "0",
                "-device",
                "cpu",
                "-num_epochs",
                "1",
                "-num_iterations_per_epoch",
                "50",
                "-num_val_iterations_per_epoch",
                "5",
                title=f"ours train {dataset_id} {configuration}",
            )


def _read_segmentation(path: Path) -> tuple[np.ndarray, dict]:
    from nnunetv2.imageio.registry import file_ending_of, reader_writer_for_ending

    seg, properties = reader_writer_for_ending(file_ending_of(str(path)))().read_seg(path)
    return seg, properties


def compare_folders(reference: Path, ours: Path, file_ending: str) -> dict:
    """Per-case agreement of two prediction folders: identical labels, probability difference, geometry."""
    identical, total, max_difference, geometry_equal = 0, 0, 0.0, True
    cases = sorted(p.name[: -len(file_ending)] for p in reference.glob(f"*{file_ending}"))
    if not cases or sorted(p.name[: -len(file_ending)] for p in ours.glob(f"*{file_ending}")) != cases:
        sys.exit(f"{reference} and {ours} do not hold the same cases")
    for case in cases:
        seg_reference, properties_reference = _read_segmentation(reference / f"{case}{file_ending}")
        seg_ours, properties_ours = _read_segmentation(ours / f"{case}{file_ending}")
        if seg_reference.shape != seg_ours.shape:
            sys.exit(f"{case}: shapes differ, {seg_reference.shape} vs {seg_ours.shape}")
        identical += int(np.count_nonzero(seg_reference == seg_ours))
        total += seg_reference.size
        geometry_equal &= np.allclose(properties_reference["spacing"], properties_ours["spacing"])
        for key in ("origin", "direction"):
            if "sitk_stuff" in properties_reference:
                geometry_equal &= np.allclose(
                    properties_reference["sitk_stuff"][key], properties_ours["sitk_stuff"][key]
                )
        probabilities_reference = np.load(reference / f"{case}.npz")["probabilities"]
        probabilities_ours = np.load(ours / f"{case}.npz")["probabilities"]
        if probabilities_reference.shape != probabilities_ours.shape:
            sys.exit(
                f"{case}: probability shapes differ, {probabilities_reference.shape} vs {probabilities_ours.shape}"
            )
        max_difference = max(max_difference, float(np.abs(probabilities_reference - probabilities_ours).max()))
        if not (ours / f"{case}.pkl").is_file():
            sys.exit(f"{ours / case}.pkl missing")
    return {
        "cases": len(cases),
        "identical_percent": 100.0 * identical / total,
        "differing_voxels": total - identical,
        "max_probability_difference": max_difference,
        "geometry_equal": bool(geometry_equal),
    }


def run_check(runner: Runner, check: Check, file_ending: str) -> dict:
    """Predict with both tools; return the comparison."""
    outputs = runner.work / "predictions" / check.title.replace(" ", "_").replace(",", "")
    shutil.rmtree(outputs, ignore_errors=True)
    arguments = [
        "-i",
        str(check.images),
        "-m",
        str(check.model),
        "-f",
        *check.folds,
        "-device",
        "cpu",
        "--save_probabilities",
        "--disable_progress_bar",
        *check.flags,
    ]
    runner.reference(
        "predict_from_modelfolder",
        *arguments,
        "-o",
        str(outputs / "nnunet_v2"),
        title=f"nnU-Net v2 predicts {check.title}",
        float32_accumulation=check.float32_reference,
    )
    runner.ours(
        "nnUNetv2_predict_from_modelfolder",
        *arguments,
        "-o",
        str(outputs / "ours"),
        title=f"ours predicts {check.title}",
    )
    return compare_folders(outputs / "nnunet_v2", outputs / "ours", file_ending)


def checks(runner: Runner) -> list[tuple[Check, str]]:
    """Every (check, file ending) to run."""
    reference_3d = runner.model(501, "nnUNetTrainer_1epoch", "3d_fullres")
    test_3d = runner.dataset(502) / "imagesTr"
    return [
        (Check("v2 model 3d_fullres, TTA", reference_3d, test_3d), ".nii.gz"),
        (
            Check(
                "v2 model 3d_fullres, no TTA, step 0.75", reference_3d, test_3d, ["--disable_tta", "-step_size", "0.75"]
            ),
            ".nii.gz",
        ),
        (Check("v2 model 3d_fullres, folds 0+1", reference_3d, test_3d, folds=("0", "1")), ".nii.gz"),
        (Check("v2 model 2d on 3D images", runner.model(501, "nnUNetTrainer_1epoch", "2d"), test_3d), ".nii.gz"),
        (Check("diagnostic: v2 float32 accumulator", reference_3d, test_3d, float32_reference=True), ".nii.gz"),
        (
            Check(
                "our model 3d_fullres, regions, CT, transposed",
                runner.model(503, "nnUNetTrainer", "3d_fullres"),
                runner.dataset(504) / "imagesTr",
            ),
            ".nii.gz",
        ),
        (
            Check("our model 2d, PNG", runner.model(505, "nnUNetTrainer", "2d"), runner.dataset(506) / "imagesTr"),
            ".png",
        ),
    ]


def write_fixture(runner: Runner, target: Path) -> None:
    """Train a tiny nnU-Net v2 model; store it, one input case and nnU-Net v2's prediction in ``target``."""
    preprocessed = runner.work / "nnUNet_preprocessed" / "Dataset501_Compat3D"
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    plans["plans_name"] = "nnUNetPlansTiny"
    plans["configurations"] = {"3d_fullres": plans["configurations"]["3d_fullres"]}
    arch_kwargs = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    arch_kwargs["features_per_stage"] = [4, 8, 8, 8][: arch_kwargs["n_stages"]]
    (preprocessed / "nnUNetPlansTiny.json").write_text(json.dumps(plans, indent=4))
    model = runner.model(501, "nnUNetTrainer_1epoch", "3d_fullres", "nnUNetPlansTiny")
    if not (model / "fold_0" / "checkpoint_final.pth").is_file():
        runner.reference(
            "train",
            "501",
            "3d_fullres",
            "0",
            "-tr",
            "nnUNetTrainer_1epoch",
            "-p",
            "nnUNetPlansTiny",
            "-device",
            "cpu",
            title="nnU-Net v2 train tiny fixture model",
        )
    prediction = runner.work / "predictions" / "fixture"
    shutil.rmtree(prediction, ignore_errors=True)
    runner.reference(
        "predict_from_modelfolder",
        "-i",
        str(runner.dataset(507) / "imagesTr"),
        "-o",
        str(prediction),
        "-m",
        str(model),
        "-f",
        "0",
        "-device",
        "cpu",
        "--save_probabilities",
        "--disable_progress_bar",
        title="nnU-Net v2 predicts the fixture case",
    )
    shutil.rmtree(target, ignore_errors=True)
    (target / "model" / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        shutil.copy(model / name, target / "model" / name)
    shutil.copy(model / "fold_0" / "checkpoint_final.pth", target / "model" / "fold_0" / "checkpoint_final.pth")
    shutil.copytree(runner.dataset(507) / "imagesTr", target / "input")
    (target / "expected").mkdir()
    shutil.copy(prediction / "case_000.nii.gz", target / "expected" / "case_000.nii.gz")
    probabilities = np.load(prediction / "case_000.npz")["probabilities"]
    # float16 keeps the fixture small; the test's tolerance is far above its rounding
    np.savez_compressed(
        target / "expected" / "case_000_probabilities.npz", probabilities=probabilities.astype(np.float16)
    )
    print(f"- fixture written to {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-bin", type=Path, required=True, help="bin/ of the nnU-Net v2 venv")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep datasets and models here (reused)")
    parser.add_argument(
        "--write-fixture",
        type=Path,
        default=None,
        help="also store a tiny nnU-Net v2 model and its prediction here (test fixture)",
    )
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="nnunet_v2_compat_"))
    runner = Runner(work.resolve(), args.reference_bin.resolve())
    print(f"work directory: {runner.work}")
    prepare_datasets(runner)
    train_reference_models(runner)
    train_our_models(runner)
    if args.write_fixture:
        write_fixture(runner, args.write_fixture.resolve())
    rows, failures = [], []
    for check, file_ending in checks(runner):
        result = run_check(runner, check, file_ending)
        limit = MAX_PROBABILITY_DIFFERENCE_FP32 if check.float32_reference else MAX_PROBABILITY_DIFFERENCE
        passed = (
            result["identical_percent"] >= MIN_IDENTICAL_PERCENT
            and result["geometry_equal"]
            and result["max_probability_difference"] <= limit
        )
        rows.append((check.title, result, passed))
        if not passed:
            failures.append(check.title)
    print()
    print(f"{'check':48s} cases  identical labels  differing voxels  max |p diff|  geometry  ok")
    for title, result, passed in rows:
        print(
            f"{title:48s} {result['cases']:5d}  {result['identical_percent']:15.4f}%  "
            f"{result['differing_voxels']:16d}  {result['max_probability_difference']:12.2e}  "
            f"{'equal' if result['geometry_equal'] else 'DIFFERS':8s}  {'yes' if passed else 'NO'}"
        )
    if failures:
        sys.exit(f"agreement below the thresholds for: {', '.join(failures)}")


if __name__ == "__main__":
    main()
