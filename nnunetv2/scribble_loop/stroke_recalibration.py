"""Recalibrate the network's probabilities around correction strokes: a local shift of its log-probabilities.

A stroke of class c drawn where the network says k tells how much the network undervalues c against k there:
the gap log P_k - log P_c on the stroke. Networks err in patches (a scanner's bias field, a contrast the
training images lacked), so voxels near the stroke that the network gives k by a smaller gap are likely c as
well, whether or not a path through the image joins them to the stroke. The shift of c over k at a voxel is a
Gaussian-weighted mean of the gaps on the strokes around it, pulled towards no shift by ``prior`` stroke
voxels' worth of evidence at the voxel itself, so it fades with distance and a short stroke moves less than a
long one; strokes of k drawn where the network says c count against it, so a patch with corrections both ways
(a noisy boundary rather than a shifted one) is left as it is. The shift raises c only on voxels the network
labels k. It is multiplied by ``scale``: a person traces a correction through the middle of the wrong region,
where the network's gap is smaller than at the region's far edge (about half, if log-odds grow with the
distance from the network's own boundary), so the strokes' gap understates how far the boundary should move.
Strokes of a class the network labels nowhere in the image shift nothing: the network does not recognise that
class here, so their gaps measure no margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_MIN_PROBABILITY = 1e-6  # log-probabilities are taken of probabilities clamped to this
_TRUNCATE = 3.0  # Gaussian kernels end at this many sigmas
_COARSE_SIGMA = 4.0  # the smoothing runs on a grid coarsened until sigma is about this many of its cells


def recalibrated_probabilities(
    probabilities: torch.Tensor,
    label: torch.Tensor,
    drawn: torch.Tensor,
    strokes: torch.Tensor,
    sigma: Sequence[float],
    prior: float,
    scale: float,
) -> torch.Tensor:
    """Return the probabilities ``(C, *spatial)`` after the strokes' local shift (softmax of shifted logs).

    probabilities: ``(C, *spatial)`` softmax; label: ``(*spatial)`` its argmax (the network's label); drawn:
    ``(*spatial)`` class drawn per voxel; strokes: ``(*spatial)`` bool, the drawn voxels that count as evidence;
    sigma: the Gaussian's standard deviation per spatial axis, in voxels; prior: > 0; scale: > 0, multiplies the
    shift.
    """
    import torch

    at = (strokes & (drawn != label)).nonzero(as_tuple=True)
    recognised = torch.bincount(label.flatten(), minlength=probabilities.shape[0])[drawn[at]] > 0
    at = tuple(index[recognised] for index in at)
    if not len(at[0]):
        return probabilities
    drawn_at, label_at = drawn[at], label[at]
    log_p = probabilities.clamp_min(_MIN_PROBABILITY).log()
    gap_at = log_p[(label_at,) + at] - log_p[(drawn_at,) + at]  # how far the network undervalues the drawn class
    pairs = sorted({(min(c, k), max(c, k)) for c, k in torch.stack([drawn_at, label_at], 1).tolist()})
    peak = _smoothing_peak(sigma, drawn.shape)
    for a, b in pairs:  # shifts log_p in place: the gaps and the label are taken before
        # +gap where a was drawn on b (raise a over b), -gap where b was drawn on a
        sign = ((drawn_at == a) & (label_at == b)).to(log_p.dtype) - ((drawn_at == b) & (label_at == a)).to(log_p.dtype)
        maps = torch.zeros((2, *drawn.shape), dtype=log_p.dtype, device=log_p.device)
        maps[(torch.zeros_like(drawn_at),) + at] = sign * gap_at
        maps[(torch.ones_like(drawn_at),) + at] = sign.abs()
        smoothed_evidence, smoothed_weight = _smoothed(maps, sigma)
        pull = scale * smoothed_evidence / (smoothed_weight + prior * peak)  # > 0: raise a over b; < 0: b over a
        log_p[a] += pull.clamp_min(0.0) * (label == b)
        log_p[b] += (-pull).clamp_min(0.0) * (label == a)
    return log_p.sub_(torch.logsumexp(log_p, 0, keepdim=True)).exp_()


def _axis_kernels(sigma: Sequence[float], shape: Sequence[int], device=None) -> list[tuple[int, torch.Tensor | None]]:
    """Per axis: (cells of the coarse grid, the Gaussian on it or None where nothing is smoothed).

    Axes of one voxel are not smoothed. A sigma far beyond the grid is flat across it, so the coarse sigma is
    capped at a few grid lengths, and taps beyond the grid (which only meet zeros) are dropped.
    """
    axes: list[tuple[int, torch.Tensor | None]] = []
    for s, size in zip(sigma, shape):
        if size == 1 or s <= 0:
            axes.append((1, None))
            continue
        cells = min(size, max(1, int(s // _COARSE_SIGMA)))
        length = math.ceil(size / cells)
        kernel = _kernel(min(s / cells, _TRUNCATE * length), device)
        half = min(len(kernel) // 2, length - 1)
        axes.append((cells, kernel[len(kernel) // 2 - half : len(kernel) // 2 + half + 1]))
    return axes


def _kernel(sigma: float, device=None) -> torch.Tensor:
    """A sampled Gaussian of standard deviation ``sigma`` (cells), summing to 1."""
    import torch

    radius = int(math.ceil(_TRUNCATE * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def _smoothing_peak(sigma: Sequence[float], shape: Sequence[int]) -> float:
    """What ``_smoothed`` gives one voxel of weight 1 at its own position (the prior's unit)."""
    return math.prod(float(kernel[len(kernel) // 2]) for _, kernel in _axis_kernels(sigma, shape) if kernel is not None)


def _smoothed(maps: torch.Tensor, sigma: Sequence[float]) -> torch.Tensor:
    """Gaussian smoothing of ``(n, *spatial)`` maps (zeros beyond the borders), on a coarser grid for large sigma:
    the maps are summed into cells, smoothed there and interpolated back (their values are sparse evidence)."""
    import torch.nn.functional as F

    spatial = tuple(maps.shape[1:])
    axes = _axis_kernels(sigma, spatial, maps.device)
    cells = [c for c, _ in axes]
    padded = [math.ceil(size / c) * c for size, c in zip(spatial, cells)]
    x = F.pad(maps, [p for size, full in reversed(list(zip(spatial, padded))) for p in (0, full - size)])
    x = x[None]  # (1, n, *spatial)
    pool = (F.avg_pool2d, F.avg_pool3d)[len(spatial) - 2]
    if any(c > 1 for c in cells):
        x = pool(x, kernel_size=cells) * math.prod(cells)  # sums per cell
    conv = (F.conv2d, F.conv3d)[len(spatial) - 2]
    channels = x.shape[1]
    for axis, (_, kernel) in enumerate(axes):
        if kernel is None:
            continue
        shape = [1] * len(spatial)
        shape[axis] = len(kernel)
        padding = [0] * len(spatial)
        padding[axis] = len(kernel) // 2
        weight = kernel.to(x.dtype).reshape(1, 1, *shape).expand(channels, 1, *shape)
        x = conv(x, weight, padding=padding, groups=channels)
    if any(c > 1 for c in cells):
        mode = ("bilinear", "trilinear")[len(spatial) - 2]
        x = F.interpolate(x, size=padded, mode=mode, align_corners=False)
    crop = (slice(None), slice(None)) + tuple(slice(0, size) for size in spatial)
    return x[crop][0]
