import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2.dataset.synthetic import generate_synthetic_dataset
from nnunetv2.exceptions import DatasetError, PlansError
from nnunetv2.experiment_planning.fingerprint import extract_fingerprint, extract_fingerprint_for_dataset
from nnunetv2.experiment_planning.intensity_statistics import (
    mixture_quantile,
    pooled_foreground_statistics,
    summarize_foreground_intensities,
)
from nnunetv2.experiment_planning.planner import plan_experiment_for_dataset
from nnunetv2.formats.plans import Plans

LABELS = {"background": 0, "organ": 1, "ignore": 2}


def _write(array, path, spacing_xyz):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing_xyz)
    sitk.WriteImage(image, str(path))


def _hand_made_dataset(folder, cases, ending=".nii.gz"):
    """cases: name -> (image (z, y, x), seg, spacing (x, y, z))."""
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    for name, (image, seg, spacing) in cases.items():
        _write(image.astype(np.float32), folder / "imagesTr" / f"{name}_0000{ending}", spacing)
        _write(seg.astype(np.uint8), folder / "labelsTr" / f"{name}{ending}", spacing)
    (folder / "dataset.json").write_text(
        json.dumps({"channel_names": {"0": "CT"}, "labels": LABELS, "numTraining": len(cases), "file_ending": ending})
    )


def _two_cases():
    # case a: nonzero box 2 x 3 x 4 inside 2 x 4 x 5; foreground 100 and 200, an ignored voxel of 5000
    image_a, seg_a = np.zeros((2, 4, 5)), np.zeros((2, 4, 5))
    image_a[:, 1:4, 1:5] = 10
    image_a[0, 1, 1], image_a[0, 1, 2], image_a[1, 2, 2] = 100, 200, 5000
    seg_a[0, 1, 1], seg_a[0, 1, 2], seg_a[1, 2, 2] = 1, 1, 2
    # case b: nothing to crop; foreground 1, 2, 3, 4 and an ignored voxel of -7000
    image_b, seg_b = np.ones((2, 4, 5)), np.zeros((2, 4, 5))
    image_b[0, 0, :4] = [1, 2, 3, 4]
    seg_b[0, 0, :4] = 1
    image_b[1, 3, 4], seg_b[1, 3, 4] = -7000, 2
    return {"a": (image_a, seg_a, (0.5, 0.6, 2.0)), "b": (image_b, seg_b, (1.0, 1.0, 3.0))}


def test_hand_checked_fingerprint_excludes_the_ignore_label(tmp_path):
    _hand_made_dataset(tmp_path / "raw", _two_cases())
    output = tmp_path / "out" / "dataset_fingerprint.json"
    fingerprint = extract_fingerprint(tmp_path / "raw", output, show_progress=False)
    assert json.loads(output.read_text()) == fingerprint
    assert list(fingerprint) == [
        "spacings",
        "shapes_after_crop",
        "foreground_intensity_properties_per_channel",
        "median_relative_size_after_cropping",
    ]
    assert fingerprint["spacings"] == [pytest.approx([2.0, 0.6, 0.5]), [3.0, 1.0, 1.0]]
    assert fingerprint["shapes_after_crop"] == [[2, 3, 4], [2, 4, 5]]
    assert fingerprint["median_relative_size_after_cropping"] == pytest.approx((24 / 40 + 1) / 2)
    stats = fingerprint["foreground_intensity_properties_per_channel"]["0"]
    # each case weighs the same (as nnU-Net's equal draws per case): case means 150 and 2.5
    assert stats["mean"] == pytest.approx(76.25)
    assert stats["std"] == pytest.approx(math.sqrt((2500 + 1.25) / 2 + 73.75**2))
    # mixture: 1, 2, 3, 4 weigh 1/8 each, 100 and 200 weigh 1/4 each
    assert (stats["min"], stats["percentile_00_5"], stats["median"], stats["percentile_99_5"], stats["max"]) == (
        1.0,
        1.0,
        4.0,
        200.0,
        200.0,
    )


def test_mixture_quantiles_equal_brute_force_pooling():
    rng = np.random.default_rng(0)
    # unequal case sizes: replicate so every case contributes the same number of values
    int_cases = [rng.integers(-50, 50, 30).astype(np.float32), rng.integers(0, 500, 60).astype(np.float32)]
    float_cases = [rng.normal(0, 1, 40).astype(np.float32), rng.normal(5, 2, 20).astype(np.float32)]
    for cases in (int_cases, float_cases):
        summaries = [summarize_foreground_intensities(c, 10**6) for c in cases]
        size = math.lcm(*(len(c) for c in cases))
        pooled = np.concatenate([np.tile(c, size // len(c)) for c in cases])
        for fraction in (0.005, 0.3, 0.5, 0.995):
            expected = np.percentile(pooled, fraction * 100, method="inverted_cdf")
            assert mixture_quantile(summaries, fraction) == expected
        stats = pooled_foreground_statistics(summaries)
        assert stats["mean"] == pytest.approx(pooled.astype(np.float64).mean())
        assert stats["std"] == pytest.approx(pooled.astype(np.float64).std())
        assert (stats["min"], stats["max"]) == (pooled.min(), pooled.max())


def test_cases_with_many_distinct_values_keep_order_statistics():
    summary = summarize_foreground_intensities(np.arange(1000), max_distinct_values=10)
    assert summary.values.tolist() == [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]
    assert (summary.minimum, summary.maximum, summary.mean, summary.num_voxels) == (0, 999, 499.5, 1000)
    assert mixture_quantile([summary], 0.5) == 450
    assert summarize_foreground_intensities(np.array([]), 10) is None


def test_bad_cases_are_named(tmp_path):
    cases = _two_cases()
    _hand_made_dataset(tmp_path / "missing", cases)
    (tmp_path / "missing" / "labelsTr" / "b.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"labelsTr/b.nii.gz: label file of case 'b' is missing"):
        extract_fingerprint(tmp_path / "missing", show_progress=False)

    image_a, seg_a, spacing = cases["a"]
    _hand_made_dataset(tmp_path / "shape", {"a": (image_a, seg_a[:, :3], spacing)})
    with pytest.raises(
        DatasetError,
        match=r"case 'a': label shape \[2, 3, 5\] differs from image shape \[2, 4, 5\] \(a.nii.gz\)",
    ):
        extract_fingerprint(tmp_path / "shape", show_progress=False)

    nan_image = image_a.copy()
    nan_image[0, 0, 0] = np.nan
    # ITK's NIfTI reader turns NaN into 0; NRRD keeps it
    _hand_made_dataset(tmp_path / "nan", {"a": (nan_image, seg_a, spacing)}, ending=".nrrd")
    with pytest.raises(DatasetError, match=r"case 'a': image channel 0 contains NaN values \(1 voxel\(s\)\)"):
        extract_fingerprint(tmp_path / "nan", show_progress=False)

    _hand_made_dataset(tmp_path / "channels", {"a": cases["a"]})
    dataset_json = json.loads((tmp_path / "channels" / "dataset.json").read_text())
    dataset_json["channel_names"] = {"0": "CT", "1": "T2"}
    (tmp_path / "channels" / "dataset.json").write_text(json.dumps(dataset_json))
    with pytest.raises(DatasetError, match=r"case 'a': images have 1 channel\(s\) but channel_names lists 2"):
        extract_fingerprint(tmp_path / "channels", show_progress=False)

    only_ignore = np.where(seg_a == 1, 2, seg_a)
    _hand_made_dataset(tmp_path / "empty", {"a": (image_a, only_ignore, spacing)})
    with pytest.raises(DatasetError, match="no training case has annotated foreground voxels"):
        extract_fingerprint(tmp_path / "empty", show_progress=False)


def test_fingerprint_and_plans_for_a_raw_dataset(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / name))
    generate_synthetic_dataset(
        tmp_path / "nnUNet_raw" / "Dataset005_Syn",
        num_cases=3,
        shape=(8, 16, 16),
        spacing=(2.0, 0.8, 0.8),
        ignore_label=True,
    )
    with pytest.raises(
        PlansError,
        match="dataset_fingerprint.json: fingerprint missing; run nnUNetv2_extract_fingerprint -d Dataset005_Syn first",
    ):
        plan_experiment_for_dataset(5)
    with pytest.raises(DatasetError, match="Dataset009_None/dataset.json: file not found"):
        extract_fingerprint_for_dataset("Dataset009_None")
    fingerprint = extract_fingerprint_for_dataset(5, num_processes=1, check_integrity=True)
    preprocessed = tmp_path / "nnUNet_preprocessed" / "Dataset005_Syn"
    assert json.loads((preprocessed / "dataset.json").read_text())["labels"]["ignore"] == 3
    assert np.allclose(fingerprint["spacings"], [[2.0, 0.8, 0.8]] * 3)  # NIfTI stores float32

    # an existing fingerprint is kept unless clean
    (preprocessed / "dataset_fingerprint.json").write_text(json.dumps(dict(fingerprint, marker=1)))
    assert extract_fingerprint_for_dataset("Dataset005_Syn", num_processes=1)["marker"] == 1
    assert "marker" not in extract_fingerprint_for_dataset(5, num_processes=1, clean=True)

    plans_file = plan_experiment_for_dataset(5, gpu_memory_target_in_gb=1)
    assert plans_file == preprocessed / "nnUNetPlans.json"
    plans = Plans.load(plans_file)
    assert plans.image_reader_writer == "SimpleITKIO"
    assert (
        plans.foreground_intensity_properties_per_channel == fingerprint["foreground_intensity_properties_per_channel"]
    )
    assert set(plans.configurations) == {"2d", "3d_fullres"}
    resenc = plan_experiment_for_dataset(
        "Dataset005_Syn", planner_name="nnUNetPlannerResEncM", overwrite_plans_name="Custom"
    )
    assert resenc.name == "Custom.json" and Plans.load(resenc).experiment_planner_used == "nnUNetPlannerResEncM"


def test_worker_pool_gives_the_same_fingerprint(tmp_path):
    generate_synthetic_dataset(tmp_path / "Dataset006_Syn", num_cases=8, shape=(6, 10, 10), seed=1)
    serial = extract_fingerprint(tmp_path / "Dataset006_Syn", num_processes=1, show_progress=False)
    parallel = extract_fingerprint(tmp_path / "Dataset006_Syn", num_processes=2, show_progress=False)
    assert parallel == serial
