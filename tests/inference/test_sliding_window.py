import itertools

import numpy as np
import pytest
import torch
from torch import nn

from nnunetv2.exceptions import InferenceError
from nnunetv2.inference.sliding_window import (
    _accumulate_with_cpu_fallback,
    compute_steps_for_sliding_window,
    gaussian_importance_map,
    sliding_window_predict,
)

torch.set_num_threads(1)


class LinearPlusPatchField(nn.Module):
    """A 1x1 conv (flip-equivariant) plus a fixed field over the patch (not flip-equivariant)."""

    def __init__(self, in_channels, out_channels, patch_size, with_field=True, deep_supervision=False):
        super().__init__()
        conv = nn.Conv3d if len(patch_size) == 3 else nn.Conv2d
        self.conv = conv(in_channels, out_channels, 1)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator))
            self.conv.bias.copy_(torch.randn(out_channels, generator=generator))
        field = (
            torch.randn((out_channels, *patch_size), generator=generator)
            if with_field
            else torch.zeros((out_channels, *patch_size))
        )
        self.register_buffer("field", field)
        self.deep_supervision = deep_supervision

    def forward(self, x):
        out = self.conv(x) + self.field
        return [out, out[:, :, ::2]] if self.deep_supervision else out

    def linear_part(self, image: np.ndarray) -> np.ndarray:
        w = self.conv.weight.detach().numpy().reshape(self.conv.out_channels, -1)
        return np.einsum("oc,c...->o...", w, image) + self.conv.bias.detach().numpy().reshape(
            (-1,) + (1,) * (image.ndim - 1)
        )


def _random_image(shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_steps_follow_nnunet_rule():
    assert compute_steps_for_sliding_window([100], [64], 0.5) == [[0, 18, 36]]
    assert compute_steps_for_sliding_window([64, 65], [64, 64], 0.5) == [[0], [0, 1]]
    assert compute_steps_for_sliding_window([160], [64], 1.0) == [[0, 48, 96]]
    assert compute_steps_for_sliding_window([128], [64], 0.5) == [[0, 32, 64]]
    with pytest.raises(InferenceError, match=r"step_size must be a number in \(0, 1\]"):
        compute_steps_for_sliding_window([100], [64], 0)


def test_gaussian_peaks_in_the_centre_and_never_vanishes():
    g = gaussian_importance_map((9, 16))
    assert g.dtype == torch.float32 and g.shape == (9, 16)
    assert g[4, 8] == 1.0 and g.max() == 1.0 and g.min() > 0
    assert torch.allclose(g, torch.flip(g, [0]))  # odd edge: symmetric about the centre voxel
    # sigma is 1/8 of the edge: one sigma (2 voxels) from the centre along x the weight is exp(-1/2)
    assert g[4, 10].item() == pytest.approx(np.exp(-0.5), rel=2e-2)
    g[:] = 0  # callers get a copy; the cached map is unaffected
    assert gaussian_importance_map((9, 16)).min() > 0


def test_linear_network_over_many_tiles_with_mirroring_is_exact():
    image = _random_image((2, 11, 20, 23))
    network = LinearPlusPatchField(2, 3, (6, 8, 8), with_field=False)
    logits = sliding_window_predict(network, torch.from_numpy(image), (6, 8, 8), 3, mirror_axes=(0, 1, 2))
    assert logits.dtype == torch.float32 and logits.device.type == "cpu" and logits.shape == (3, 11, 20, 23)
    np.testing.assert_allclose(logits.numpy(), network.linear_part(image), atol=1e-5)


def test_mirroring_averages_all_flip_combinations():
    patch = (4, 6, 6)
    image = _random_image((1, *patch))
    network = LinearPlusPatchField(1, 2, patch)
    field = network.field.numpy()
    flips = [c for k in range(3) for c in itertools.combinations((1, 2), k)]  # (), (1,), (2,), (1, 2)
    expected_field = np.mean([np.flip(field, [a + 1 for a in axes]) for axes in flips], axis=0)
    logits = sliding_window_predict(network, image, patch, 2, mirror_axes=(1, 2))
    np.testing.assert_allclose(logits.numpy(), network.linear_part(image) + expected_field, atol=1e-5)
    no_tta = sliding_window_predict(network, image, patch, 2, mirror_axes=None)
    np.testing.assert_allclose(no_tta.numpy(), network.linear_part(image) + field, atol=1e-5)


def test_overlapping_tiles_are_gaussian_weighted():
    patch = (8, 8)
    image = _random_image((1, 1, 13, 8))
    network = LinearPlusPatchField(1, 1, patch)
    field = network.field.numpy()[0]
    weights = gaussian_importance_map(patch).numpy()
    starts = compute_steps_for_sliding_window([13], [8], 0.5)[0]
    assert starts == [0, 2, 5]
    numerator = np.zeros((13, 8))
    denominator = np.zeros((13, 8))
    for s in starts:
        numerator[s : s + 8] += field * weights
        denominator[s : s + 8] += weights
    logits = sliding_window_predict(network, image, patch, 1, step_size=0.5)
    expected = network.linear_part(image[:, 0])[0] + numerator / denominator
    np.testing.assert_allclose(logits.numpy()[0, 0], expected, atol=1e-5)
    # without the Gaussian every tile counts equally
    plain = sliding_window_predict(network, image, patch, 1, use_gaussian=False)
    counts = np.zeros((13, 8))
    sums = np.zeros((13, 8))
    for s in starts:
        sums[s : s + 8] += field
        counts[s : s + 8] += 1
    np.testing.assert_allclose(plain.numpy()[0, 0], network.linear_part(image[:, 0])[0] + sums / counts, atol=1e-5)


def test_2d_patch_on_3d_data_predicts_each_slice():
    patch = (8, 8)
    image = _random_image((2, 5, 8, 8))
    network = LinearPlusPatchField(2, 3, patch)
    logits = sliding_window_predict(network, image, patch, 3, mirror_axes=(1,))
    field = network.field.numpy()
    expected_field = (field + np.flip(field, 2)) / 2
    for z in range(5):
        np.testing.assert_allclose(logits.numpy()[:, z], network.linear_part(image[:, z]) + expected_field, atol=1e-5)
    one_by_one = sliding_window_predict(network, image, patch, 3, mirror_axes=(1,), tile_batch_size=1)
    np.testing.assert_allclose(one_by_one.numpy(), logits.numpy(), atol=1e-6)


def test_image_smaller_than_patch_is_padded_and_cropped_back():
    patch = (8, 8, 8)
    image = _random_image((1, 5, 8, 3))
    network = LinearPlusPatchField(1, 2, patch)
    logits = sliding_window_predict(network, image, patch, 2)
    assert logits.shape == (2, 5, 8, 3)
    # padding 3 (1 before) along z and 5 (2 before) along x: the image sits at that offset in the patch
    field = network.field.numpy()[:, 1:6, :, 2:5]
    np.testing.assert_allclose(logits.numpy(), network.linear_part(image) + field, atol=1e-5)


def test_deep_supervision_outputs_use_the_full_resolution_and_mode_is_restored():
    network = LinearPlusPatchField(1, 2, (4, 4, 4), with_field=False, deep_supervision=True)
    network.train()
    image = _random_image((1, 6, 4, 5))
    logits = sliding_window_predict(network, image, (4, 4, 4), 2, mirror_axes=(0,))
    assert network.training
    np.testing.assert_allclose(logits.numpy(), network.linear_part(image), atol=1e-5)
    logits += 1  # an ordinary tensor: callers may sum folds in place
    assert not logits.requires_grad


def test_bad_arguments_give_one_clear_error():
    network = LinearPlusPatchField(1, 2, (4, 4), with_field=False)
    image = _random_image((1, 6, 4, 5))
    with pytest.raises(InferenceError, match="mirror axes \\[2\\] do not fit a 2D patch"):
        sliding_window_predict(network, image, (4, 4), 2, mirror_axes=(2,))
    with pytest.raises(InferenceError, match="cannot tile an image of shape \\(1, 6, 4, 5\\)"):
        sliding_window_predict(network, image, (4,), 2)
    with pytest.raises(InferenceError, match="the network returned 2 channels, expected 3"):
        sliding_window_predict(network, image, (4, 4), 3)


def test_results_move_to_the_cpu_when_device_memory_runs_out():
    calls = []

    def accumulate(results_device):
        calls.append(results_device.type)
        if results_device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("out of memory")
        return torch.ones(1)

    assert _accumulate_with_cpu_fallback(accumulate, torch.device("cuda")) == 1
    assert calls == ["cuda", "cpu"]
    with pytest.raises(torch.cuda.OutOfMemoryError):
        _accumulate_with_cpu_fallback(lambda results_device: accumulate(torch.device("cuda")), torch.device("cpu"))


@pytest.mark.parametrize(("patch", "layout"), [((8, 8), torch.channels_last), ((4, 6, 6), torch.channels_last_3d)])
def test_channels_last_gives_the_same_logits_and_switches_the_network(patch, layout):
    torch.manual_seed(0)
    conv, norm = (nn.Conv2d, nn.InstanceNorm2d) if len(patch) == 2 else (nn.Conv3d, nn.InstanceNorm3d)
    network = nn.Sequential(conv(2, 8, 3, padding=1), norm(8, affine=True), nn.LeakyReLU(), conv(8, 3, 1))
    image = torch.from_numpy(_random_image((2, *(2 * p - 2 for p in patch))))
    seen = []
    network[0].register_forward_pre_hook(
        lambda module, inputs: seen.append(inputs[0].is_contiguous(memory_format=layout))
    )
    kwargs = dict(mirror_axes=tuple(range(len(patch))))
    contiguous = sliding_window_predict(network, image, patch, 3, channels_last=False, **kwargs)
    assert not any(seen) and network[0].weight.is_contiguous()
    last = sliding_window_predict(network, image, patch, 3, channels_last=True, **kwargs)
    assert seen[-1] and network[0].weight.is_contiguous(memory_format=layout)  # tiles and weights channels-last
    torch.testing.assert_close(last, contiguous, atol=1e-5, rtol=1e-5)
