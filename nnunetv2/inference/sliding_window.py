"""Predict a whole image with a patch-based network: overlapping tiles, Gaussian weights, mirroring.

The tiling follows nnU-Net v2: per axis, the fewest tiles whose spacing does not exceed
``step_size`` x patch edge, spread evenly from the first to the last position. Each tile's
logits are weighted by a Gaussian centred on the tile (sigma = 1/8 of the patch edge), so the
tile borders, where a network sees the least context, count least. Logits (not probabilities)
are averaged over tiles and over the mirrored copies, as nnU-Net v2 does.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnunetv2.exceptions import InferenceError
from nnunetv2.utilities.memory_format import as_network_input, resolve_channels_last, set_network_memory_format
from nnunetv2.utilities.parameters import check_number

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# tiles per forward pass are bounded by this many input voxels (per channel): batching small
# tiles amortises per-call overhead, while large 3D patches still go one at a time
TILE_BATCH_VOXELS = 2**18
GAUSSIAN_SIGMA_SCALE = 1.0 / 8

Tile = tuple  # per spatial axis of the (padded) image: an int (slice index) or a slice


def compute_steps_for_sliding_window(
    image_size: Sequence[int], patch_size: Sequence[int], step_size: float
) -> list[list[int]]:
    """Return the tile start positions per axis (nnU-Net v2's rule; the image must be >= the patch)."""
    check_number("step_size", step_size, "(0, 1]", error=InferenceError)
    steps = []
    for size, patch in zip(image_size, patch_size):
        assert size >= patch, "pad the image to the patch size first"
        max_start = size - patch
        num_steps = int(np.ceil(max_start / (patch * step_size))) + 1
        stride = max_start / (num_steps - 1) if num_steps > 1 else 0.0
        steps.append([int(np.round(stride * i)) for i in range(num_steps)])
    return steps


@functools.lru_cache(maxsize=16)
def _gaussian_importance_map(patch_size: tuple[int, ...], sigma_scale: float) -> torch.Tensor:
    import torch
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros(patch_size, dtype=np.float64)
    impulse[tuple(p // 2 for p in patch_size)] = 1
    weights = gaussian_filter(impulse, [p * sigma_scale for p in patch_size], mode="constant", cval=0)
    weights /= weights.max()
    # the filter truncates far tails to 0; a zero weight would leave voxels without any vote
    weights[weights == 0] = weights[weights > 0].min()
    return torch.from_numpy(weights.astype(np.float32))


def gaussian_importance_map(patch_size: Sequence[int], sigma_scale: float = GAUSSIAN_SIGMA_SCALE) -> torch.Tensor:
    """Return the per-voxel tile weights (float32, max 1, no zeros); computed once per patch size."""
    return _gaussian_importance_map(tuple(int(p) for p in patch_size), float(sigma_scale)).clone()


def _padding_for(spatial_shape: Sequence[int], patch_size: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) padding per spatial axis so each covered axis is at least the patch edge."""
    offset = len(spatial_shape) - len(patch_size)
    pads = [(0, 0)] * offset
    for size, patch in zip(spatial_shape[offset:], patch_size):
        missing = max(0, patch - size)
        pads.append((missing // 2, missing - missing // 2))
    return pads


def _tiles(padded_shape: Sequence[int], patch_size: Sequence[int], step_size: float) -> list[Tile]:
    """All tiles; with a 2D patch on 3D data each slice along axis 0 is tiled on its own."""
    offset = len(padded_shape) - len(patch_size)
    steps = compute_steps_for_sliding_window(padded_shape[offset:], patch_size, step_size)
    starts = itertools.product(*([range(padded_shape[0])] if offset else []), *steps)
    return [
        tuple(start[:offset]) + tuple(slice(s, s + p) for s, p in zip(start[offset:], patch_size)) for start in starts
    ]


def _forward(network, x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    out = network(as_network_input(x, channels_last))
    # networks built with deep supervision return one output per resolution, full size first
    if isinstance(out, (list, tuple)):
        out = out[0]
    return out.float()


def _mirror_combinations(mirror_axes: Sequence[int] | None) -> list[tuple[int, ...]]:
    axes = sorted(set(mirror_axes or ()))
    return [c for k in range(1, len(axes) + 1) for c in itertools.combinations(axes, k)]


def _predict_batch(
    network, x: torch.Tensor, mirror_axes: Sequence[int] | None, channels_last: bool = False
) -> torch.Tensor:
    """Logits of a batch of tiles, averaged over every combination of flips along ``mirror_axes``."""
    import torch

    prediction = _forward(network, x, channels_last)
    combinations = _mirror_combinations(mirror_axes)
    for axes in combinations:
        dims = [a + 2 for a in axes]
        prediction += torch.flip(_forward(network, torch.flip(x, dims), channels_last), dims)
    return prediction / (len(combinations) + 1) if combinations else prediction


def _batches(tiles: list[Tile], batch_size: int) -> Iterator[list[Tile]]:
    for i in range(0, len(tiles), batch_size):
        yield tiles[i : i + batch_size]


def _accumulate(
    network,
    image: torch.Tensor,
    tiles: list[Tile],
    patch_size: Sequence[int],
    num_output_channels: int,
    mirror_axes: Sequence[int] | None,
    use_gaussian: bool,
    device: torch.device,
    results_device: torch.device,
    batch_size: int,
    show_progress: bool,
    cpu_bf16: bool,
    channels_last: bool,
) -> torch.Tensor:
    """Gaussian-weighted average of the tiles' logits over the padded image, held on ``results_device``."""
    import torch
    from tqdm import tqdm

    image = image.to(results_device)
    logits = torch.zeros((num_output_channels, *image.shape[1:]), dtype=torch.float32, device=results_device)
    weight_sum = torch.zeros(image.shape[1:], dtype=torch.float32, device=results_device)
    if use_gaussian:
        weights = _gaussian_importance_map(tuple(patch_size), GAUSSIAN_SIGMA_SCALE).to(results_device)
    else:
        weights = torch.ones(tuple(patch_size), dtype=torch.float32, device=results_device)
    from nnunetv2.utilities.precision import network_autocast

    num_batches = -(-len(tiles) // batch_size)
    for batch in tqdm(
        _batches(tiles, batch_size),
        total=num_batches,
        desc="sliding window",
        unit="batch",
        disable=not show_progress,
        leave=False,
    ):
        x = torch.stack([image[(slice(None),) + tile] for tile in batch]).to(device, non_blocking=True)
        # inference mode only around the network: the accumulators stay ordinary tensors that
        # callers may update in place (e.g. summing folds)
        with torch.inference_mode(), network_autocast(device, cpu_bf16):
            prediction = _predict_batch(network, x, mirror_axes, channels_last)
        if prediction.shape[1] != num_output_channels:
            raise InferenceError(f"the network returned {prediction.shape[1]} channels, expected {num_output_channels}")
        prediction = prediction.to(results_device)
        for tile, tile_logits in zip(batch, prediction):
            logits[(slice(None),) + tile] += tile_logits * weights
            weight_sum[tile] += weights
    logits /= weight_sum
    return logits


def _accumulate_with_cpu_fallback(accumulate: Callable[..., torch.Tensor], device: torch.device) -> torch.Tensor:
    """Run ``accumulate`` with results on ``device``; if that memory runs out, again with results on the CPU."""
    import torch

    logits = None
    try:
        logits = accumulate(results_device=device)
    except torch.cuda.OutOfMemoryError:  # the same class as torch.OutOfMemoryError on new torch
        if device.type == "cpu":
            raise
        logger.warning("not enough %s memory for the whole image's prediction; accumulating on the CPU", device.type)
    if logits is None:
        # retried outside the except block: its traceback kept the failed attempt's tensors alive
        if device.type == "cuda":
            torch.cuda.empty_cache()
        logits = accumulate(results_device=torch.device("cpu"))
    return logits


def sliding_window_predict(
    network,
    image: torch.Tensor | np.ndarray,
    patch_size: Sequence[int],
    num_output_channels: int,
    step_size: float = 0.5,
    mirror_axes: Sequence[int] | None = None,
    use_gaussian: bool = True,
    device: torch.device | str | None = None,
    show_progress: bool = False,
    tile_batch_size: int | None = None,
    results_on_device: bool = True,
    cpu_bf16: bool = False,
    channels_last: bool | None = None,
) -> torch.Tensor:
    """Return the logits ``(C, *spatial)`` (float32, CPU) of a network applied to a whole ``(c, *spatial)`` image.

    ``patch_size`` has as many axes as the image's spatial shape, or one fewer (a 2D network on
    ``(c, z, y, x)`` data predicts each slice along z). ``mirror_axes`` index the patch axes. The
    network runs on ``device`` (default: where its parameters are; it is moved there) in eval
    mode; results accumulate there too unless that runs out of memory, then on the CPU
    (always on the CPU with ``results_on_device=False``). ``cpu_bf16`` runs the network in bfloat16
    on the CPU (CUDA always uses float16 autocast, as nnU-Net v2); logits are accumulated in float32.
    ``channels_last`` stores the network's weights (in place) and its input tiles channels-last, or
    contiguous with False; None follows ``nnUNet_channels_last`` (default off).
    """
    import torch

    image = torch.as_tensor(image).float()
    patch_size = tuple(int(p) for p in patch_size)
    spatial = tuple(image.shape[1:])
    if len(patch_size) not in (len(spatial), len(spatial) - 1) or image.ndim < 3:
        raise InferenceError(
            f"cannot tile an image of shape {tuple(image.shape)} (c, *spatial) with a "
            f"{len(patch_size)}D patch {list(patch_size)}"
        )
    if mirror_axes and max(mirror_axes) >= len(patch_size):
        raise InferenceError(f"mirror axes {list(mirror_axes)} do not fit a {len(patch_size)}D patch")
    if device is None:
        device = next((p.device for p in network.parameters()), torch.device("cpu"))
    device = torch.device(device)
    network = network.to(device)
    channels_last = set_network_memory_format(network, resolve_channels_last(channels_last, device, cpu_bf16))

    pads = _padding_for(spatial, patch_size)
    if any(before or after for before, after in pads):
        flat = [amount for before_after in reversed(pads) for amount in before_after]
        image = torch.nn.functional.pad(image, flat, mode="constant", value=0)
    tiles = _tiles(image.shape[1:], patch_size, step_size)
    if tile_batch_size is None:
        tile_batch_size = max(1, TILE_BATCH_VOXELS // int(np.prod(patch_size)))
    tile_batch_size = min(tile_batch_size, len(tiles))

    accumulate = functools.partial(
        _accumulate,
        network,
        image,
        tiles,
        patch_size,
        num_output_channels,
        mirror_axes,
        use_gaussian,
        device,
        batch_size=tile_batch_size,
        show_progress=show_progress,
        cpu_bf16=cpu_bf16,
        channels_last=channels_last,
    )
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            if results_on_device:
                logits = _accumulate_with_cpu_fallback(accumulate, device)
            else:
                logits = accumulate(results_device=torch.device("cpu"))
    finally:
        network.train(was_training)
    unpad = (slice(None),) + tuple(slice(before, before + size) for (before, _), size in zip(pads, spatial))
    return logits[unpad].cpu().contiguous()
