"""Grow correction scribbles into a full pseudo label with a confidence map (the geodesic rule).

For every class c with (growing) scribbles, D_c is the geodesic distance from its scribbles, where one
step of spacing-scaled length L (voxel units of the finest axis) between voxels p and q costs

    sqrt((1 - lamb) * L**2 + lamb * ||I(p) - I(q)||**2)  +  probability_weight * L * (2 - P_c(p) - P_c(q)) / 2

(I: the image, each channel z-scored over the image, divided by the ``edge_normalisation`` percentile of
its non-zero neighbour differences when that is > 0, and multiplied by ``intensity_weight``; P_c: the
network's probability of c).
D_c is capped at ``threshold`` T and turned into G_c = exp(-(exp(D_c) - 1) / T); classes without
scribbles have G_c = 0. The label is argmax_c of P_c + G_c - sum_{j != c} G_j; scribbled voxels
keep the class drawn there. Two rules (``rule``):

- ``published``: every stroke grows. Confidence is max_c G_c where that exceeds
  ``min_geodesic_confidence`` (near scribbles), else ``probability_confidence_scale`` times the
  probability of the chosen class, multiplied by ``boundary_factor`` within ``boundary_width`` voxels
  of a pseudo-label boundary (the network part).
- ``network_aware`` (default): a stroke (connected component of one class's scribbles) that the
  network already labels with its class on at least ``resolved_stroke_agreement`` of its voxels does
  not grow (its voxels still keep their class): it has been learned, and growing it again only spills
  over edges. With ``stroke_region_only`` a stroke voxel grows only through voxels the network labels
  as the stroke's class or as the class it gave that stroke voxel (the class the person corrected),
  never into a third class. A stroke whose voxels get a mean network probability of its class below
  ``unbraked_stroke_probability`` grows without the probability term (the network is sure and wrong
  there, so its doubt does not say how far the stroke reaches); with ``support_fraction`` > 0 every other
  stroke grows only through voxels where the network gives its class at least that fraction of its mean
  probability on the strokes of the same correction (the region it corrects looks like the stroke to the
  network), and these strokes use ``supported_threshold`` (if set; the rule default's is 160) in place
  of ``threshold``: the limit bounds them, so they may reach farther. With ``recalibration_sigma`` > 0 the
  network's probabilities are first shifted around the growing, braked strokes (``stroke_recalibration``,
  weighted by ``recalibration_prior``, scaled by ``recalibration_scale``); growth, support, label and
  confidence use the shifted ones, while which strokes are resolved or unbraked is judged on the network's
  own. Its defaults (RULE_DEFAULTS) also normalise edge strength per image and weigh intensity change and the
  network's doubt more.
  Confidence is max(G_label, network part) x (1 - max_{j != label} G_j), 1 on scribbles: no dip far
  inside an object that the network labels right and a stroke reaches weakly, and low where strokes of
  two classes compete.

``keep_previous_where_unsure`` combines a round's pseudo labels with the previous round's: a voxel only
changes to a class the new network gives at least ``update_min_probability``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnunetv2.exceptions import NnUNetError
from nnunetv2.utilities.parameters import check_number

if TYPE_CHECKING:
    import torch


def geodesic_pseudo_label(
    image: np.ndarray,
    probabilities: np.ndarray,
    scribbles: np.ndarray,
    spacing: Sequence[float] | None = None,
    unannotated_value: int | None = None,
    *,
    threshold: float = 10.0,
    lamb: float = 0.99,
    intensity_weight: float | None = None,
    probability_weight: float | None = None,
    min_geodesic_confidence: float = 0.1,
    probability_confidence_scale: float = 0.8,
    boundary_width: int = 1,
    boundary_factor: float = 0.5,
    rule: str = "network_aware",
    resolved_stroke_agreement: float = 0.5,
    edge_normalisation: float | None = None,
    stroke_region_only: bool | None = None,
    unbraked_stroke_probability: float | None = None,
    support_fraction: float | None = None,
    supported_threshold: float | None = None,
    recalibration_sigma: float | None = None,
    recalibration_prior: float = 60.0,
    recalibration_scale: float = 2.0,
    device=None,
    distance_maps: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (pseudo label ``(*spatial)`` uint8/uint16, confidence ``(*spatial)`` float32 in [0, 1]).

    image: ``(c, *spatial)`` intensities; probabilities: ``(C, *spatial)`` one per label value 0..C-1 (a
    softmax; a region model's via ``nnunetv2.scribble_loop.label_probabilities.label_probabilities``);
    scribbles: ``(*spatial)`` integer map with a class 0..C-1 where drawn and ``unannotated_value``
    (default C) elsewhere; spatial is 2D or 3D (a 2D image may be ``(1, y, x)``); spacing per
    spatial axis (default 1). See the module docstring for the rule and its parameters.
    distance_maps: a dict to receive ``class -> D_c`` (float32, capped at ``threshold``, or at
    ``supported_threshold`` where that is larger and in use) of every class whose strokes grew, for debugging.
    """
    import torch

    from nnunetv2.scribble_loop.geodesic import geodesic_distance
    from nnunetv2.scribble_loop.stroke_recalibration import recalibrated_probabilities
    from nnunetv2.utilities.device import resolve_device

    _check_parameters(rule=rule)
    rule_defaults = RULE_DEFAULTS[rule]
    if intensity_weight is None:
        intensity_weight = rule_defaults["intensity_weight"]
    if probability_weight is None:
        probability_weight = rule_defaults["probability_weight"]
    if edge_normalisation is None:
        edge_normalisation = rule_defaults["edge_normalisation"]
    if stroke_region_only is None:
        stroke_region_only = rule_defaults["stroke_region_only"]
    if unbraked_stroke_probability is None:
        unbraked_stroke_probability = rule_defaults["unbraked_stroke_probability"]
    if support_fraction is None:
        support_fraction = rule_defaults["support_fraction"]
    if supported_threshold is None:
        supported_threshold = rule_defaults.get("supported_threshold")
    if recalibration_sigma is None:
        recalibration_sigma = rule_defaults["recalibration_sigma"]
    _check_parameters(
        threshold=threshold,
        lamb=lamb,
        intensity_weight=intensity_weight,
        probability_weight=probability_weight,
        min_geodesic_confidence=min_geodesic_confidence,
        probability_confidence_scale=probability_confidence_scale,
        boundary_width=boundary_width,
        boundary_factor=boundary_factor,
        rule=rule,
        resolved_stroke_agreement=resolved_stroke_agreement,
        edge_normalisation=edge_normalisation,
        stroke_region_only=stroke_region_only,
        unbraked_stroke_probability=unbraked_stroke_probability,
        support_fraction=support_fraction,
        recalibration_sigma=recalibration_sigma,
        recalibration_prior=recalibration_prior,
        recalibration_scale=recalibration_scale,
        **({} if supported_threshold is None else {"supported_threshold": supported_threshold}),
    )
    num_classes = int(np.shape(probabilities)[0]) if np.ndim(probabilities) > 0 else 0
    unannotated_value = num_classes if unannotated_value is None else unannotated_value
    _check_arrays(image, probabilities, scribbles, spacing, unannotated_value)
    device = resolve_device(None if device is None else str(device))
    with torch.no_grad():
        relative_spacing = _relative_spacing(spacing, np.shape(scribbles))
        image_t = torch.as_tensor(np.asarray(image, dtype=np.float32), device=device)
        image_t = _normalised(image_t, edge_normalisation).mul_(intensity_weight)
        probs = torch.as_tensor(np.asarray(probabilities, dtype=np.float32), device=device)
        drawn = torch.as_tensor(np.asarray(scribbles).astype(np.int64), device=device)
        scribbled = drawn != unannotated_value

        network_label = probs.argmax(0)
        # the strokes that grow: all (published), or those the network does not label as drawn yet (network_aware)
        growing = (
            scribbled
            if rule == "published"
            else scribbled & ~_resolved_strokes(drawn, scribbled, network_label, resolved_stroke_agreement)
        )
        # strokes drawn where the network all but rules their class out: it is sure and wrong there, so its
        # probabilities are no guide to how far such a stroke reaches (a structure the network has not learned)
        unbraked = _strokes_the_network_rules_out(drawn, growing, probs, unbraked_stroke_probability)
        if recalibration_sigma > 0:  # which strokes grow is decided above, on what the network itself said
            # only braked strokes say how far the network is off: where it rules a class out, it has not learned it
            sigma = [recalibration_sigma / s for s in relative_spacing]
            braked = growing & ~unbraked
            probs = recalibrated_probabilities(
                probs, network_label, drawn, braked, sigma, recalibration_prior, recalibration_scale
            )
            network_label = probs.argmax(0)

        def distance_from(seeds: torch.Tensor, c: int, step_cost: torch.Tensor, support: float) -> torch.Tensor:
            if stroke_region_only:
                return _distance_within_corrected_classes(
                    image_t, seeds, network_label, probs[c], c, step_cost, support, relative_spacing, lamb, device
                )
            cost = _outside_support_blocked(step_cost, probs[c], seeds, support)
            return geodesic_distance(image_t, seeds, spacing=relative_spacing, lamb=lamb, step_cost=cost, device=device)

        geodesic = torch.zeros_like(probs)  # G_c; stays 0 for classes without growing scribbles
        for c in torch.unique(drawn[growing]).tolist():
            seeds = growing & (drawn == c)
            step_cost = probability_weight * (1.0 - probs[c])
            # braked strokes under a support limit may reach further (supported_threshold): the limit bounds them
            braked_cap = supported_threshold if support_fraction > 0 and supported_threshold is not None else threshold
            braked = free = torch.full(seeds.shape, float("inf"), device=seeds.device)
            if (seeds & ~unbraked).any():
                braked = distance_from(seeds & ~unbraked, c, step_cost, support_fraction)
            if (seeds & unbraked).any():  # neither brake nor support: the network's probabilities say nothing here
                free = distance_from(seeds & unbraked, c, torch.zeros_like(step_cost), 0.0)
            if distance_maps is not None:
                capped = torch.clamp(torch.minimum(braked, free), max=max(threshold, braked_cap))
                distance_maps[int(c)] = capped.cpu().numpy().astype(np.float32)
            geodesic[c] = torch.maximum(_geodesic_support(braked, braked_cap), _geodesic_support(free, threshold))

        # P_c + G_c - sum_{j != c} G_j
        score = probs + geodesic - (geodesic.sum(0, keepdim=True) - geodesic)
        label = torch.where(scribbled, drawn, score.argmax(0))

        chosen_probability = probs.gather(0, label[None])[0]
        network_confidence = probability_confidence_scale * chosen_probability
        network_confidence = torch.where(
            _near_label_boundary(label, boundary_width), network_confidence * boundary_factor, network_confidence
        )
        if rule == "published":
            nearest_scribble_confidence = geodesic.amax(0)
            confidence = torch.where(
                nearest_scribble_confidence > min_geodesic_confidence, nearest_scribble_confidence, network_confidence
            )
        else:
            # support for the chosen class (its own stroke or the network), discounted by a competing stroke
            chosen_geodesic = geodesic.gather(0, label[None])[0]
            competing_geodesic = geodesic.scatter(0, label[None], 0.0).amax(0)
            confidence = torch.maximum(chosen_geodesic, network_confidence) * (1.0 - competing_geodesic)
            confidence = torch.where(scribbled, torch.ones_like(confidence), confidence)
        confidence = confidence.clamp_(0.0, 1.0)
    label_dtype = np.uint8 if num_classes <= 256 else np.uint16
    return label.cpu().numpy().astype(label_dtype), confidence.cpu().numpy().astype(np.float32)


def _geodesic_support(distance: torch.Tensor, cap: float) -> torch.Tensor:
    """G = exp(-(exp(D) - 1) / T) with D capped at T (unreached voxels, D = inf, get T as well)."""
    import torch

    return torch.exp(-torch.expm1(torch.clamp(distance, max=cap)) / cap)


def keep_previous_where_unsure(
    label: np.ndarray,
    confidence: np.ndarray,
    probabilities: np.ndarray,
    previous_label: np.ndarray,
    previous_confidence: np.ndarray,
    min_probability: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (label, confidence, kept): a voxel takes its new label only where the network gives that label a
    probability of at least ``min_probability``; elsewhere it keeps its previous label and confidence (``kept``).

    label, confidence, previous_*: ``(*spatial)``; probabilities: ``(C, *spatial)``. Voxels whose label does
    not change take the new confidence; ``min_probability`` 0 takes every new label.
    """
    check_update_min_probability(min_probability)
    previous_label = np.asarray(previous_label).reshape(np.shape(label))
    previous_confidence = np.asarray(previous_confidence, dtype=np.float32).reshape(np.shape(label))
    new_label_probability = np.take_along_axis(np.asarray(probabilities), label[None].astype(np.int64), 0)[0]
    kept = (label != previous_label) & (new_label_probability < min_probability)
    return (
        np.where(kept, previous_label, label).astype(label.dtype),
        np.where(kept, previous_confidence, confidence).astype(np.float32),
        kept,
    )


def check_update_min_probability(value: Any) -> None:
    """Raise NnUNetError (one line) unless ``value`` is a number in [0, 1]."""
    _check_parameters(update_min_probability=value)


def pseudo_label_parameters(**overrides: Any) -> dict[str, Any]:
    """Return the rule's parameters (``geodesic_pseudo_label``'s keyword options) with ``overrides`` applied; options
    left at None take the chosen rule's default (RULE_DEFAULTS)."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(geodesic_pseudo_label).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _NOT_RULE_PARAMETERS
    }
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise NnUNetError(f"unknown pseudo-label parameter(s) {', '.join(unknown)} (known: {', '.join(defaults)})")
    given = {name: value for name, value in overrides.items() if value is not None}
    _check_parameters(**given)
    rule = given.get("rule", defaults["rule"])
    return {**defaults, **RULE_DEFAULTS[rule], **given}


# keyword options of geodesic_pseudo_label that say where to run or what to return, not how to label
_NOT_RULE_PARAMETERS = ("device", "distance_maps")
# parameter -> its rule (nnunetv2.utilities.parameters)
_PARAMETER_RULES = {
    "threshold": "> 0",
    "lamb": "[0, 1]",
    "intensity_weight": ">= 0",
    "probability_weight": ">= 0",
    "min_geodesic_confidence": "[0, 1)",
    "probability_confidence_scale": "[0, 1]",
    "boundary_width": "integer >= 0",
    "boundary_factor": "[0, 1]",
    "resolved_stroke_agreement": "(0, 1]",
    "edge_normalisation": "[0, 100)",  # a percentile (0: off)
    "unbraked_stroke_probability": "[0, 1)",  # 0: off
    "support_fraction": "[0, 1]",  # 0: off
    "supported_threshold": "> 0",
    "recalibration_sigma": ">= 0",  # 0: off
    "recalibration_prior": "> 0",
    "recalibration_scale": "> 0",
    "update_min_probability": "[0, 1]",  # between rounds, not a rule option
}
RULES = ("published", "network_aware")
# options whose default depends on the rule: ``published`` is the paper's method; ``network_aware`` adds the
# growth limits chosen on the real-anatomy benchmark's development part (documentation/benchmarks.md)
RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "published": {
        "intensity_weight": 3.0,
        "probability_weight": 0.1,
        "edge_normalisation": 0.0,
        "stroke_region_only": False,
        "unbraked_stroke_probability": 0.0,
        "support_fraction": 0.0,
        "recalibration_sigma": 0.0,
    },
    "network_aware": {
        "intensity_weight": 6.0,
        "probability_weight": 0.5,
        "edge_normalisation": 98.0,
        "stroke_region_only": True,
        "unbraked_stroke_probability": 0.015,
        "support_fraction": 0.5,
        "supported_threshold": 160.0,
        "recalibration_sigma": 20.0,
    },
}
# between rounds a voxel's pseudo label changes only to a class the new network gives at least this probability
DEFAULT_UPDATE_MIN_PROBABILITY = 0.8


def _check_parameters(**values: Any) -> None:
    """Raise NnUNetError naming the first rule parameter that is not a number in its range."""
    for name, value in values.items():
        if name == "rule":
            if value not in RULES:
                raise NnUNetError(f"pseudo labels: rule must be one of {', '.join(RULES)}, got {value!r}")
            continue
        if name == "stroke_region_only":
            if not isinstance(value, (bool, np.bool_)):
                raise NnUNetError(f"pseudo labels: {name} must be true or false, got {value!r}")
            continue
        check_number(name, value, _PARAMETER_RULES[name], where="pseudo labels")


def _check_arrays(image, probabilities, scribbles, spacing, unannotated_value) -> None:
    """Raise NnUNetError (one line) for arrays that do not fit together."""
    scribbles = np.asarray(scribbles)
    spatial = scribbles.shape
    if scribbles.ndim not in (2, 3):
        raise NnUNetError(f"pseudo labels: scribbles must be a 2D or 3D label map, got shape {list(spatial)}")
    if np.ndim(image) != scribbles.ndim + 1 or np.shape(image)[1:] != spatial:
        raise NnUNetError(
            f"pseudo labels: image shape {list(np.shape(image))} does not match the scribbles shape "
            f"{list(spatial)} (expected (channels, {', '.join(map(str, spatial))}))"
        )
    if np.ndim(probabilities) != scribbles.ndim + 1 or np.shape(probabilities)[1:] != spatial:
        raise NnUNetError(
            f"pseudo labels: probabilities shape {list(np.shape(probabilities))} does not match the "
            f"scribbles shape {list(spatial)} (expected (classes, {', '.join(map(str, spatial))}))"
        )
    num_classes = np.shape(probabilities)[0]
    if num_classes < 2:
        raise NnUNetError(f"pseudo labels: probabilities need at least 2 classes, got {num_classes}")
    # the probabilities first: a region model's outputs would otherwise show up as scribbles of unknown classes
    probabilities = np.asarray(probabilities)
    if not np.isfinite(probabilities).all() or probabilities.min() < 0 or probabilities.max() > 1:
        raise NnUNetError("pseudo labels: probabilities must be finite numbers in [0, 1]")
    if np.abs(probabilities.sum(0) - 1).max() > 1e-3:
        raise NnUNetError(
            "pseudo labels: probabilities do not sum to 1 over the classes (one per label value is "
            "needed; a region model's: pass its dataset with -d, or convert them with "
            "label_probabilities)"
        )
    if not np.issubdtype(scribbles.dtype, np.integer):
        raise NnUNetError(f"pseudo labels: scribbles must be an integer label map, got {scribbles.dtype}")
    if isinstance(unannotated_value, bool) or not isinstance(unannotated_value, (int, np.integer)):
        raise NnUNetError(f"pseudo labels: the unannotated value must be an integer, got {unannotated_value!r}")
    if 0 <= unannotated_value < num_classes:
        raise NnUNetError(
            f"pseudo labels: the unannotated value {unannotated_value} is also class "
            f"{unannotated_value} of the {num_classes} classes; use a value >= {num_classes}"
        )
    values = np.unique(scribbles)
    foreign = [int(v) for v in values if v != unannotated_value and not 0 <= v < num_classes]
    if foreign:
        raise NnUNetError(
            f"pseudo labels: scribbles contain value(s) {foreign[:5]} that are neither a class "
            f"(0..{num_classes - 1}) nor the unannotated value {unannotated_value}"
        )
    if not np.isfinite(image).all():
        raise NnUNetError("pseudo labels: the image contains NaN or infinite values")
    if spacing is not None and len(spacing) != len(spatial):
        raise NnUNetError(f"pseudo labels: spacing {list(spacing)} must have {len(spatial)} entries, one per axis")


def _z_scored(image: torch.Tensor) -> torch.Tensor:
    """Each channel shifted to mean 0 and scaled to std 1 over the image (a flat channel only shifted)."""
    flat = image.reshape(image.shape[0], -1)
    mean = flat.mean(1)
    std = flat.std(1, unbiased=False)
    std = std.masked_fill(std == 0, 1.0)
    shape = (-1,) + (1,) * (image.ndim - 1)
    return (image - mean.reshape(shape)) / std.reshape(shape)


def _normalised(image: torch.Tensor, edge_percentile: float) -> torch.Tensor:
    """Each channel z-scored; with ``edge_percentile`` > 0 then divided by that percentile of the absolute
    differences between neighbours along the axes (over the differences that are not 0), so that an image's
    strong edges cost the same whatever its contrast, noise and share of empty background."""
    import torch

    image = _z_scored(image)
    if edge_percentile == 0:
        return image
    scales = []
    for channel in image:
        differences = torch.cat(
            [channel.diff(dim=axis).abs().reshape(-1) for axis in range(channel.ndim) if channel.shape[axis] > 1]
        )
        differences = differences[differences > 0]
        if differences.numel() > 1_000_000:  # quantile refuses very large inputs; a strided subset is enough
            differences = differences[:: differences.numel() // 1_000_000 + 1]
        scale = float(torch.quantile(differences, edge_percentile / 100)) if differences.numel() else 1.0
        scales.append(scale if scale > 0 else 1.0)
    shape = (-1,) + (1,) * (image.ndim - 1)
    return image / torch.tensor(scales, device=image.device).reshape(shape)


def _distance_within_corrected_classes(
    image: torch.Tensor,
    seeds: torch.Tensor,
    network_label: torch.Tensor,
    class_probability: torch.Tensor,
    stroke_class: int,
    step_cost: torch.Tensor,
    support: float,
    spacing: Sequence[float],
    lamb: float,
    device,
) -> torch.Tensor:
    """Geodesic distance from the strokes of one class where each stroke voxel grows only through voxels the network
    labels as the stroke's class or as the class it labels that stroke voxel with (the class the person corrected).

    A grey-matter stroke drawn on voxels the network calls white matter then never relabels background.
    """
    import torch

    from nnunetv2.scribble_loop.geodesic import geodesic_distance

    agreeing = seeds & (network_label == stroke_class)
    corrected = torch.unique(network_label[seeds & ~agreeing]).tolist()
    if not corrected:
        cost = _outside_support_blocked(step_cost, class_probability, seeds, support)
        return geodesic_distance(image, seeds, spacing=spacing, lamb=lamb, step_cost=cost, device=device)
    distance = torch.full(seeds.shape, float("inf"), device=seeds.device)
    for k in corrected:
        # an infinite step cost blocks a voxel: the stroke cannot reach a third class
        blocked = (network_label != k) & (network_label != stroke_class)
        group = (seeds & (network_label == k)) | agreeing
        cost = _outside_support_blocked(step_cost.masked_fill(blocked, float("inf")), class_probability, group, support)
        reach = geodesic_distance(image, group, spacing=spacing, lamb=lamb, step_cost=cost, device=device)
        distance = torch.minimum(distance, reach)
    return distance


def _outside_support_blocked(
    step_cost: torch.Tensor, class_probability: torch.Tensor, seeds: torch.Tensor, support: float
) -> torch.Tensor:
    """The step cost, infinite where the network gives the strokes' class less than ``support`` times its mean
    probability on the strokes (``seeds``): the error a stroke corrects looks to the network like the stroke itself."""
    if support == 0:
        return step_cost
    floor = support * float(class_probability[seeds].mean())
    return step_cost.masked_fill((class_probability < floor) & ~seeds, float("inf"))  # seeds always grow


def _relative_spacing(spacing: Sequence[float] | None, shape: Sequence[int]) -> list[float]:
    """Spacing divided by the finest spacing of the axes that have more than one voxel.

    A 2D image's placeholder spacing (999 on its single-voxel axis) is thereby ignored.
    """
    if spacing is None:
        return [1.0] * len(shape)
    spacing = [float(s) for s in spacing]
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise NnUNetError(f"pseudo labels: spacing must be positive numbers, got {spacing}")
    finest = min((s for s, n in zip(spacing, shape) if n > 1), default=1.0)
    return [s / finest for s in spacing]


def _resolved_strokes(
    drawn: torch.Tensor, scribbled: torch.Tensor, network_label: torch.Tensor, agreement: float
) -> torch.Tensor:
    """Bool map of the scribbled voxels whose stroke the network already labels with the stroke's class.

    A stroke is a connected component (all neighbours) of one class's scribbles; it counts as resolved
    when at least ``agreement`` of its voxels have the network's label equal to its class.
    """
    import torch
    from scipy import ndimage

    drawn_np = drawn.cpu().numpy()
    scribbled_np = scribbled.cpu().numpy()
    agrees = (network_label == drawn).cpu().numpy() & scribbled_np
    resolved = np.zeros(drawn_np.shape, dtype=bool)
    connectivity = np.ones((3,) * drawn_np.ndim, dtype=bool)
    for c in np.unique(drawn_np[scribbled_np]):
        strokes, count = ndimage.label(scribbled_np & (drawn_np == c), structure=connectivity)
        size = np.bincount(strokes.ravel(), minlength=count + 1)
        agreeing = np.bincount(strokes.ravel(), weights=agrees.ravel(), minlength=count + 1)
        is_resolved = agreeing >= agreement * size
        is_resolved[0] = False  # component 0 is everything outside this class's strokes
        resolved |= is_resolved[strokes]
    return torch.as_tensor(resolved, device=drawn.device)


def _strokes_the_network_rules_out(
    drawn: torch.Tensor, growing: torch.Tensor, probabilities: torch.Tensor, level: float
) -> torch.Tensor:
    """Bool map of the growing scribbled voxels whose stroke gets a mean network probability of its class below
    ``level`` (none when ``level`` is 0); a stroke is a connected component (all neighbours) of one class's
    scribbles."""
    import torch
    from scipy import ndimage

    if level == 0:
        return torch.zeros_like(growing)
    drawn_np = drawn.cpu().numpy()
    growing_np = growing.cpu().numpy()
    own_probability = probabilities.gather(0, drawn.clamp(max=probabilities.shape[0] - 1)[None])[0].cpu().numpy()
    ruled_out = np.zeros(drawn_np.shape, dtype=bool)
    connectivity = np.ones((3,) * drawn_np.ndim, dtype=bool)
    for c in np.unique(drawn_np[growing_np]):
        strokes, count = ndimage.label(growing_np & (drawn_np == c), structure=connectivity)
        size = np.bincount(strokes.ravel(), minlength=count + 1)
        total = np.bincount(strokes.ravel(), weights=own_probability.ravel(), minlength=count + 1)
        is_ruled_out = total < level * size
        is_ruled_out[0] = False  # component 0 is everything outside this class's strokes
        ruled_out |= is_ruled_out[strokes]
    return torch.as_tensor(ruled_out, device=drawn.device)


def _near_label_boundary(label: torch.Tensor, width: int) -> torch.Tensor:
    """Bool map of voxels with a different label within ``width`` voxels (a (2w+1)^n window)."""
    import torch
    import torch.nn.functional as F

    if width == 0:
        return torch.zeros_like(label, dtype=torch.bool)
    volume = label.float().reshape(1, 1, *([1] * (3 - label.ndim)), *label.shape)
    kernel = [2 * width + 1 if n > 1 else 1 for n in volume.shape[2:]]
    padding = [k // 2 for k in kernel]
    # max pooling pads with -inf, so the image border never looks like a boundary
    highest = F.max_pool3d(volume, kernel, stride=1, padding=padding)
    lowest = -F.max_pool3d(-volume, kernel, stride=1, padding=padding)
    return (highest != lowest).reshape(label.shape)
