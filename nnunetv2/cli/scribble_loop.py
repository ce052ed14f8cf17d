"""nnUNetv2_scribble_pseudolabels: grow correction scribbles into pseudo labels with confidence maps."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

from nnunetv2.cli.common import run_cli


def _true_or_false(text: str) -> bool:
    """argparse type of a yes/no flag value."""
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# flag -> (type, help); defaults come from the library so the two never disagree
_RULE_FLAGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "rule": (
        str,
        "published (the paper's label and confidence rule) or network_aware (strokes the network already "
        "labels right are not grown again; confidence from the chosen class, lowered by competing strokes)",
    ),
    "threshold": (float, "T: cap of the geodesic distance and temperature of G = exp(-(exp(D) - 1) / T)"),
    "lamb": (float, "mix of step length (0) and intensity change (1) in the geodesic step cost"),
    "intensity_weight": (float, "weight of the (z-scored) intensity change in the step cost"),
    "probability_weight": (float, "weight of 1 - P_c (the network's doubt about class c) in the step cost"),
    "edge_normalisation": (
        float,
        "percentile of the image's non-zero neighbour differences that intensities are divided by after "
        "z-scoring (strong edges cost the same in every image; 0: off)",
    ),
    "stroke_region_only": (
        _true_or_false,
        "true: a stroke grows only through voxels the network labels as its class or as the class it corrected",
    ),
    "unbraked_stroke_probability": (
        float,
        "a stroke whose voxels get a mean network probability of its class below this grows without the "
        "probability term (the network is sure and wrong there; 0: off)",
    ),
    "support_fraction": (
        float,
        "a stroke grows only through voxels where the network gives its class at least this fraction of its mean "
        "probability on the stroke (0: off)",
    ),
    "supported_threshold": (
        float,
        "T of the strokes grown under --support_fraction (> 0): the support limit bounds them, so a larger T "
        "lets them fill more of the region they correct (the published rule uses --threshold unless this is set)",
    ),
    "recalibration_sigma": (
        float,
        "before growing, shift the network's log-probabilities around wrongly predicted stroke voxels by a "
        "Gaussian-weighted mean of their gaps, this sigma wide (voxels of the finest axis; 0: off)",
    ),
    "recalibration_prior": (
        float,
        "stroke voxels' worth of no-shift evidence at every voxel: the shift fades away from strokes and a short "
        "stroke moves less (> 0)",
    ),
    "recalibration_scale": (
        float,
        "multiplies the --recalibration_sigma shift: a stroke traced through the middle of a wrong region sees a "
        "smaller gap than the region's far edge (> 0)",
    ),
    "min_geodesic_confidence": (float, "max_c G_c above this counts as near a scribble and is the confidence"),
    "probability_confidence_scale": (float, "elsewhere confidence = this x the probability of the chosen class"),
    "boundary_width": (int, "voxels around a pseudo-label boundary whose confidence is lowered"),
    "boundary_factor": (float, "factor applied to the confidence near pseudo-label boundaries"),
    "resolved_stroke_agreement": (
        float,
        "network_aware: a stroke whose voxels the network labels as drawn in at least this fraction is not grown",
    ),
}


def _default_text(name: str, defaults: dict) -> str:
    """'default X' for a rule flag, with the published rule's default where it differs."""
    from nnunetv2.scribble_loop.pseudo_labels import RULE_DEFAULTS

    published = RULE_DEFAULTS["published"].get(name)
    return f"default {defaults[name]}" + ("" if published is None else f"; published rule: {published}")


def scribble_pseudolabels_entry() -> None:
    """nnUNetv2_scribble_pseudolabels."""
    from nnunetv2.scribble_loop.pseudo_labels import DEFAULT_UPDATE_MIN_PROBABILITY, pseudo_label_parameters

    defaults = pseudo_label_parameters()
    parser = argparse.ArgumentParser(
        description="Turn the network's probabilities and correction scribbles into pseudo labels "
        "(OUT/CASE.ending), confidence maps (OUT/confidence/CASE_confidence.nii.gz) and "
        "OUT/summary.json with the number of changed voxels per case."
    )
    parser.add_argument("-i", required=True, help="images folder (CASE_XXXX.ending files, as imagesTr)")
    parser.add_argument(
        "-p", required=True, help="probabilities folder (CASE.npz from nnUNetv2_predict --save_probabilities)"
    )
    parser.add_argument(
        "-s",
        required=True,
        help="scribbles folder (CASE.ending label maps; a case without a file keeps the network's labels)",
    )
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument(
        "-d",
        default=None,
        help="dataset id, name or dataset.json: file ending, reader-writer, "
        "labels or regions (needed for a region model) and the default "
        "unannotated value (its ignore label)",
    )
    parser.add_argument(
        "--unannotated",
        type=int,
        default=None,
        help="value of undrawn voxels in the scribble files (default: the dataset's ignore "
        "label, else the number of classes)",
    )
    for name, (kind, text) in _RULE_FLAGS.items():
        parser.add_argument(f"--{name}", type=kind, default=None, help=f"{text} ({_default_text(name, defaults)})")
    parser.add_argument(
        "--previous",
        default=None,
        help="an earlier output folder of this command for the same cases: a voxel takes its new label "
        "only where the network gives it at least --update_min_probability, else keeps the old "
        "label and confidence",
    )
    parser.add_argument(
        "--update_min_probability",
        type=float,
        default=None,
        help=f"with --previous: probability the new label needs to replace the old one (default "
        f"{DEFAULT_UPDATE_MIN_PROBABILITY}; 0 takes every new label)",
    )
    parser.add_argument(
        "--save_distance_maps",
        action="store_true",
        help="also write each scribbled class's geodesic distance (capped at T) as "
        "OUT/distance_maps/CASE_class{c}.nii.gz, for debugging",
    )
    parser.add_argument("-device", default=None, help="cuda, cpu or mps (default: cuda when available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args()
    rule = {name: getattr(args, name) for name in _RULE_FLAGS if getattr(args, name) is not None}

    def main() -> None:
        from nnunetv2.scribble_loop.pseudo_label_folder import make_pseudo_labels_for_folder

        summary = make_pseudo_labels_for_folder(
            args.i,
            args.p,
            args.s,
            args.o,
            dataset=args.d,
            unannotated_value=args.unannotated,
            device=args.device,
            progress=not args.quiet,
            previous_pseudo_labels=args.previous,
            update_min_probability=args.update_min_probability,
            save_distance_maps=args.save_distance_maps,
            **rule,
        )
        for case, entry in summary["cases"].items():
            print(f"{case}: {entry['changed_voxels']} voxels changed, {entry['scribbled_voxels']} scribbled")
        print(f"wrote {len(summary['cases'])} pseudo labels to {args.o}")

    run_cli(main)


def _dice_cell(entry: dict | None) -> str:
    return "-" if entry is None else f"{entry['mean']:.4f}"


def _loop_defaults() -> dict[str, Any]:
    """ScribbleLoopRequest's field defaults: the flags take theirs from the request so the two never disagree."""
    from nnunetv2.scribble_loop.loop_state import ScribbleLoopRequest

    return {f.name: f.default for f in fields(ScribbleLoopRequest) if f.default is not MISSING}


def scribble_loop_entry() -> None:
    """nnUNetv2_scribble_loop."""
    from nnunetv2.scribble_loop.pseudo_labels import DEFAULT_UPDATE_MIN_PROBABILITY, pseudo_label_parameters

    defaults = pseudo_label_parameters()
    loop = _loop_defaults()
    parser = argparse.ArgumentParser(
        description="Improve a preliminary model and the pool's pseudo labels in turn: each round fine-tunes on the "
        "dataset's labeled cases plus the pool's pseudo labels (loss weighted by their confidence), "
        "predicts the pool and grows the same correction scribbles into new pseudo labels. Every round "
        "goes to OUT/round_R/ (model, predictions, pseudo labels, metrics.json); a stopped run resumes."
    )
    parser.add_argument(
        "-d", required=True, help="dataset id or name of the preliminary model (its labeled cases must be preprocessed)"
    )
    parser.add_argument("-c", required=True, help="configuration of the preliminary model, e.g. 3d_fullres or 2d")
    parser.add_argument("-f", default="0", help="fold of the preliminary model (default 0; 'all' for fold_all)")
    parser.add_argument(
        "-tr",
        default=loop["trainer_name"],
        help=f"trainer of the preliminary model (default {loop['trainer_name']})",
    )
    parser.add_argument(
        "-p", default=loop["plans_identifier"], help=f"plans identifier (default {loop['plans_identifier']})"
    )
    parser.add_argument(
        "-chk",
        default=loop["checkpoint_name"],
        help=f"checkpoint of the preliminary model (default {loop['checkpoint_name']})",
    )
    parser.add_argument("-i", required=True, help="pool images (CASE_XXXX.ending files, as imagesTr)")
    parser.add_argument(
        "-s",
        required=True,
        help="correction scribbles (CASE.ending label maps, undrawn voxels = the "
        "unannotated value; a case without one keeps the network's labels)",
    )
    parser.add_argument("-o", required=True, help="loop folder (new or empty, or an earlier run's to resume it)")
    parser.add_argument(
        "-num_rounds", type=int, default=loop["num_rounds"], help=f"fine-tuning rounds (default {loop['num_rounds']})"
    )
    parser.add_argument(
        "-num_epochs",
        type=int,
        default=loop["epochs_per_round"],
        help=f"epochs per round (default {loop['epochs_per_round']})",
    )
    parser.add_argument(
        "-num_iterations_per_epoch",
        type=int,
        default=loop["iterations_per_epoch"],
        help=f"training iterations per epoch (default {loop['iterations_per_epoch']})",
    )
    parser.add_argument(
        "-num_val_iterations_per_epoch",
        type=int,
        default=loop["val_iterations_per_epoch"],
        help=f"validation iterations per epoch, against the pseudo labels (default {loop['val_iterations_per_epoch']})",
    )
    parser.add_argument(
        "-initial_lr",
        type=float,
        default=loop["initial_lr"],
        help=f"learning rate at the start of every round, decayed by the poly rule (default {loop['initial_lr']})",
    )
    parser.add_argument(
        "-scribble_sampling",
        type=float,
        default=loop["scribble_sample_probability"],
        help="probability that a randomly placed patch of a scribbled case is centred on a scribble "
        f"(default {loop['scribble_sample_probability']})",
    )
    parser.add_argument(
        "-save_every",
        type=int,
        default=loop["save_every"],
        help="checkpoint_latest every N epochs within a round, to resume a stopped round (default: the trainer's, 50)",
    )
    parser.add_argument(
        "-seed", type=int, default=loop["seed"], help="seed of network training (per round: seed + round)"
    )
    parser.add_argument(
        "--unannotated",
        type=int,
        default=loop["unannotated_value"],
        help="value of undrawn voxels in the scribble files (default: the dataset's ignore label, else "
        "the number of classes)",
    )
    for name, (kind, text) in _RULE_FLAGS.items():
        parser.add_argument(f"--{name}", type=kind, default=None, help=f"{text} ({_default_text(name, defaults)})")
    parser.add_argument(
        "--update_min_probability",
        type=float,
        default=None,
        help=f"rounds >= 1: a voxel's pseudo label changes only to a class the round's network gives "
        f"at least this probability (default {DEFAULT_UPDATE_MIN_PROBABILITY}; 0: renew all)",
    )
    parser.add_argument(
        "--pool_reference",
        default=None,
        help="reference labels of the pool (CASE.ending): adds the Dice of predictions and pseudo "
        "labels to the metrics",
    )
    parser.add_argument(
        "--freeze_encoder",
        action="store_true",
        help="fine-tune the decoder only: the encoder keeps the previous round's weights",
    )
    parser.add_argument(
        "--reinit_decoder_stages",
        type=int,
        default=0,
        help="re-initialise this many of the finest decoder stages (with their upsampling and output "
        "layers) before each round's fine-tuning (default 0)",
    )
    parser.add_argument(
        "--save_distance_maps",
        action="store_true",
        help="write each round's per-class geodesic distance maps to round_R/pseudo_labels/distance_maps/",
    )
    parser.add_argument(
        "-refresh_every",
        type=int,
        default=None,
        help="also renew the pool's pseudo labels every N epochs within each round (learning rate and optimiser "
        "carry on; the published method's in-run refresh); between 1 and -num_epochs - 1",
    )
    parser.add_argument("--test_images", default=None, help="test images, predicted by every round's model")
    parser.add_argument("--test_reference", default=None, help="reference labels of the test images")
    parser.add_argument(
        "-device", default=None, choices=["cuda", "cpu", "mps"], help="device (default: cuda when available, else cpu)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    rule = {name: getattr(args, name) for name in _RULE_FLAGS if getattr(args, name) is not None}

    def main() -> None:
        from nnunetv2.scribble_loop.loop import ScribbleLoopRequest, run_scribble_loop

        rounds = run_scribble_loop(
            ScribbleLoopRequest(
                dataset_name_or_id=args.d,
                configuration=args.c,
                fold=args.f,
                pool_images=args.i,
                scribbles=args.s,
                output_folder=args.o,
                num_rounds=args.num_rounds,
                epochs_per_round=args.num_epochs,
                iterations_per_epoch=args.num_iterations_per_epoch,
                val_iterations_per_epoch=args.num_val_iterations_per_epoch,
                trainer_name=args.tr,
                plans_identifier=args.p,
                checkpoint_name=args.chk,
                initial_lr=args.initial_lr,
                scribble_sample_probability=args.scribble_sampling,
                unannotated_value=args.unannotated,
                pseudo_label_parameters=rule,
                update_min_probability=args.update_min_probability,
                save_every=args.save_every,
                seed=args.seed,
                pool_reference=args.pool_reference,
                test_images=args.test_images,
                test_reference=args.test_reference,
                device=args.device,
                show_progress=not args.quiet,
                freeze_encoder=args.freeze_encoder,
                reinit_decoder_stages=args.reinit_decoder_stages,
                save_distance_maps=args.save_distance_maps,
                refresh_every=args.refresh_every,
            )
        )
        print("round  pool prediction Dice  pool pseudo-label Dice  test Dice  scribbled voxels")
        for metrics in rounds:
            pool = metrics["pool"]
            print(
                f"{metrics['round']:>5}  {_dice_cell(pool.get('prediction_dice')):>20}  "
                f"{_dice_cell(pool.get('pseudo_label_dice')):>22}  "
                f"{_dice_cell(metrics.get('test', {}).get('dice')):>9}  {100 * pool['scribbled_fraction']:>15.3f}%"
            )
        print(f"done: {args.o}")

    run_cli(main)
