"""nnUNetv2_scribble_pseudolabels: grow correction scribbles into pseudo labels with confidence maps."""
from __future__ import annotations

import argparse

from nnunetv2.cli.common import run_cli

# flag -> (type, help); defaults come from the library so the two never disagree
_RULE_FLAGS = {
    "threshold": (float, "T: cap of the geodesic distance and temperature of G = exp(-(exp(D) - 1) / T)"),
    "lamb": (float, "mix of step length (0) and intensity change (1) in the geodesic step cost"),
    "intensity_weight": (float, "weight of the (z-scored) intensity change in the step cost"),
    "probability_weight": (float, "weight of 1 - P_c (the network's doubt about class c) in the step cost"),
    "min_geodesic_confidence": (float, "max_c G_c above this counts as near a scribble and is the confidence"),
    "probability_confidence_scale": (float, "elsewhere confidence = this x the probability of the chosen class"),
    "boundary_width": (int, "voxels around a pseudo-label boundary whose confidence is lowered"),
    "boundary_factor": (float, "factor applied to the confidence near pseudo-label boundaries"),
}


def scribble_pseudolabels_entry() -> None:
    """nnUNetv2_scribble_pseudolabels."""
    from nnunetv2.scribble_loop.pseudo_labels import pseudo_label_parameters
    defaults = pseudo_label_parameters()
    parser = argparse.ArgumentParser(
        description="Turn the network's probabilities and correction scribbles into pseudo labels "
                    "(OUT/CASE.ending), confidence maps (OUT/confidence/CASE_confidence.nii.gz) and "
                    "OUT/summary.json with the number of changed voxels per case.")
    parser.add_argument("-i", required=True, help="images folder (CASE_XXXX.ending files, as imagesTr)")
    parser.add_argument("-p", required=True, help="probabilities folder (CASE.npz from nnUNetv2_predict "
                                                  "--save_probabilities)")
    parser.add_argument("-s", required=True, help="scribbles folder (CASE.ending label maps; a case without a "
                                                  "file keeps the network's labels)")
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument("-d", default=None, help="dataset id, name or dataset.json: file ending, reader-writer, "
                                                 "labels and the default unannotated value (its ignore label)")
    parser.add_argument("--unannotated", type=int, default=None,
                        help="value of undrawn voxels in the scribble files (default: the dataset's ignore "
                             "label, else the number of classes)")
    for name, (kind, text) in _RULE_FLAGS.items():
        parser.add_argument(f"--{name}", type=kind, default=None, help=f"{text} (default {defaults[name]})")
    parser.add_argument("-device", default=None, help="cuda, cpu or mps (default: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()
    rule = {name: getattr(args, name) for name in _RULE_FLAGS if getattr(args, name) is not None}

    def main() -> None:
        from nnunetv2.scribble_loop.pseudo_label_folder import make_pseudo_labels_for_folder
        summary = make_pseudo_labels_for_folder(args.i, args.p, args.s, args.o, dataset=args.d,
                                                unannotated_value=args.unannotated, device=args.device,
                                                progress=not args.quiet, **rule)
        for case, entry in summary["cases"].items():
            print(f"{case}: {entry['changed_voxels']} voxels changed, {entry['scribbled_voxels']} scribbled")
        print(f"wrote {len(summary['cases'])} pseudo labels to {args.o}")
    run_cli(main)
