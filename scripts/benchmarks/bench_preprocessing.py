"""Wall time and peak memory of fingerprint + planning + preprocessing on generated datasets.

    python scripts/benchmarks/bench_preprocessing.py [--reference-bin DIR] [--np 2]

With ``--reference-bin`` (the bin/ folder of a virtual environment holding the original nnU-Net v2,
e.g. made with ``python -m venv ref && ref/bin/pip install torch==2.13.0 nnunetv2``) the same
stages run with nnU-Net v2 on the same files and cores, and the table shows the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import nnunet_env, print_table, run_measured  # noqa: E402

from nnunetv2.dataset.synthetic import generate_synthetic_dataset  # noqa: E402

DATASETS = {
    "3D 40 x 96x128x128, spacing 3x1x1": dict(
        dataset_id=801, num_cases=40, shape=(96, 128, 128), spacing=(3.0, 1.0, 1.0), configuration="3d_fullres"
    ),
    "2D 200 x 256x256 png": dict(
        dataset_id=802, num_cases=200, shape=(256, 256), file_ending=".png", configuration="2d"
    ),
}


def stages(bin_dir: Path, dataset_id: int, configuration: str, num_processes: int) -> dict[str, list[str]]:
    d = str(dataset_id)
    return {
        "fingerprint": [str(bin_dir / "nnUNetv2_extract_fingerprint"), "-d", d, "-np", str(num_processes)],
        "planning": [str(bin_dir / "nnUNetv2_plan_experiment"), "-d", d],
        "preprocessing": [
            str(bin_dir / "nnUNetv2_preprocess"),
            "-d",
            d,
            "-c",
            configuration,
            "-np",
            str(num_processes),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-bin", type=Path, default=None, help="bin/ of an nnU-Net v2 venv")
    parser.add_argument("--np", type=int, default=2, help="processes for fingerprint and preprocessing")
    parser.add_argument("--only", choices=["3d", "2d"], default=None)
    args = parser.parse_args()
    ours_bin = Path(sys.executable).parent
    work = Path(tempfile.mkdtemp(prefix="bench_pp_"))
    rows = []
    try:
        for title, spec in DATASETS.items():
            if args.only and not title.lower().startswith(args.only):
                continue
            spec = dict(spec)
            dataset_id, configuration = spec.pop("dataset_id"), spec.pop("configuration")
            raw = work / "raw"
            generate_synthetic_dataset(raw / f"Dataset{dataset_id}_Bench", **spec)
            tools = {"ours": ours_bin}
            if args.reference_bin:
                tools["nnU-Net v2"] = args.reference_bin
            results = {}
            for tool, bin_dir in tools.items():
                env = nnunet_env(work / tool)
                env["nnUNet_raw"] = str(raw)
                for stage, command in stages(bin_dir, dataset_id, configuration, args.np).items():
                    results[(tool, stage)] = run_measured(command, env)
            for stage in ("fingerprint", "planning", "preprocessing", "total"):

                def get(tool, stage=stage, results=results):
                    if stage == "total":
                        values = [results[(tool, s)] for s in ("fingerprint", "planning", "preprocessing")]
                        return sum(v[0] for v in values), max(v[1] for v in values)
                    return results[(tool, stage)]

                ours = get("ours")
                row = [title, stage, ours[0], ours[1]]
                if args.reference_bin:
                    ref = get("nnU-Net v2")
                    row += [ref[0], ref[1], ours[0] / ref[0]]
                rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = ["dataset", "stage", "ours s", "ours peak MB"]
    if args.reference_bin:
        header += ["nnU-Net v2 s", "nnU-Net v2 peak MB", "time ratio"]
    print_table(header, rows)


if __name__ == "__main__":
    main()
