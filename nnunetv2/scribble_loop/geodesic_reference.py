"""Exact geodesic distance (Dijkstra on the 8/26-connected voxel graph, scipy) for tests and benchmarks.

It builds every edge with ``geodesic.edge_costs``, the function the raster scan uses, so the two
solve the same graph and their difference is the raster scan's approximation error only.
Memory grows with (3^n - 1) edges per voxel: meant for images up to a few hundred thousand voxels.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from nnunetv2.scribble_loop.geodesic import edge_costs, prepare_geodesic_inputs


def exact_geodesic_distance(
    image, seeds, spacing=None, lamb: float = 1.0, step_cost=None, max_distance: float | None = None
) -> np.ndarray:
    """Return the exact shortest-path distance to the seeds (float64 numpy, seeds 0, not reached inf)."""
    import torch
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    inputs = prepare_geodesic_inputs(image, seeds, spacing, lamb, step_cost, max_distance, torch.device("cpu"))
    shape = tuple(inputs.seeds.shape)
    n_voxels = int(np.prod(shape))
    index = np.arange(n_voxels, dtype=np.int32 if n_voxels < 2**31 else np.int64).reshape(shape)
    rows, cols, costs = [], [], []
    # each undirected edge once: offsets whose first non-zero component is positive
    for offset in itertools.product((-1, 0, 1), repeat=len(shape)):
        if offset <= (0,) * len(shape):
            continue
        length = math.sqrt(sum((o * s) ** 2 for o, s in zip(offset, inputs.spacing)))
        at_p = tuple(slice(max(0, -o), size - max(0, o)) for o, size in zip(offset, shape))
        at_q = tuple(slice(max(0, o), size - max(0, -o)) for o, size in zip(offset, shape))
        half = inputs.half_step_cost
        cost = (
            edge_costs(
                inputs.scaled_image[(slice(None),) + at_p],
                inputs.scaled_image[(slice(None),) + at_q],
                None if half is None else half[at_p],
                None if half is None else half[at_q],
                length,
                inputs.lamb,
            )
            .numpy()
            .ravel()
            .astype(np.float64)
        )
        usable = np.isfinite(cost)  # an infinite step cost removes the edge
        rows.append(index[at_p].ravel()[usable])
        cols.append(index[at_q].ravel()[usable])
        costs.append(cost[usable])
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=index.dtype)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=index.dtype)
    cost = np.concatenate(costs) if costs else np.zeros(0)
    # scipy keeps explicitly stored zeros as zero-cost edges (a flat image with lamb=1 has many)
    graph = coo_matrix(
        (np.concatenate([cost, cost]), (np.concatenate([row, col]), np.concatenate([col, row]))),
        shape=(n_voxels, n_voxels),
    ).tocsr()
    sources = np.flatnonzero(inputs.seeds.numpy().ravel())
    distance = dijkstra(graph, directed=True, indices=sources, min_only=True).reshape(shape)
    if inputs.max_distance is not None:
        distance[distance > inputs.max_distance] = math.inf
    return distance.reshape(inputs.full_shape)
