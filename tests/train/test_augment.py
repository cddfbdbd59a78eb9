"""Frequency warping (VTLP) of log-mel features."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.train.augment import FrequencyWarp, inverse_mel_scale, mel_scale, warp_bins
from distill.train.config import DataConfig


def peak_bin(features: torch.Tensor) -> float:
    """Centre of mass of a (F,) spectrum's energy above its median."""
    weights = (features - features.median()).clamp(min=0)
    return float((weights * torch.arange(features.numel())).sum() / weights.sum())


def test_factor_one_is_the_identity() -> None:
    warp = FrequencyWarp(0.1)
    source = warp.source_bins(80, torch.tensor([1.0]))
    torch.testing.assert_close(source[0], torch.arange(80, dtype=torch.float32), atol=1e-4, rtol=0)
    x = torch.randn(1, 5, 80)
    torch.testing.assert_close(warp_bins(x, source), x, atol=1e-5, rtol=0)


def test_a_formant_moves_up_with_a_factor_above_one_and_down_below() -> None:
    """A peak at 1 kHz (a formant) moves to about alpha * 1 kHz."""
    warp = FrequencyWarp(0.2)
    num_bins = 80
    low, high = mel_scale(torch.tensor([20.0, 7600.0]))
    centres = inverse_mel_scale(low + (high - low) / (num_bins + 1) * torch.arange(1, num_bins + 1))
    spectrum = -((centres - 1000.0) / 150.0) ** 2  # log energy peaking at 1 kHz
    x = spectrum.expand(2, 3, num_bins).clone()
    alphas = torch.tensor([1.15, 0.85])
    warped = warp_bins(x, warp.source_bins(num_bins, alphas))
    for i, alpha in enumerate(alphas.tolist()):
        peak_hz = float(centres[int(warped[i, 0].argmax())])
        assert abs(peak_hz - alpha * 1000.0) < 60.0, (alpha, peak_hz)
    assert peak_bin(warped[0, 0]) > peak_bin(x[0, 0]) > peak_bin(warped[1, 0])
    # Every frame of an utterance is warped alike.
    torch.testing.assert_close(warped[:, 0], warped[:, 2])


def test_random_warps_stay_in_range_and_keep_shape() -> None:
    warp = FrequencyWarp(0.1)
    x = torch.randn(4, 7, 80)
    out = warp(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    # Linear interpolation never leaves the range of a frame's values.
    assert bool((out.amax(2) <= x.amax(2) + 1e-5).all()) and bool((out.amin(2) >= x.amin(2) - 1e-5).all())
    assert not torch.allclose(out, x)
    again = warp(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_warp"):
        FrequencyWarp(0.0)
    with pytest.raises(ValueError, match="low_freq"):
        FrequencyWarp(0.1, low_freq=8000.0, high_freq=100.0)
    with pytest.raises(ValueError, match="shape"):
        FrequencyWarp(0.1)(torch.randn(3, 80))
    with pytest.raises(ValueError, match="data.freq_warp"):
        DataConfig(freq_warp=0.7)


def test_time_warp_segments_warps_supervised_frames_only():
    import random

    from distill.train.data import make_spec_augment, time_warp_segments

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    features = torch.randn(2, 600, 80)
    before = features.clone()
    segments = torch.tensor([[0, 0, 600], [1, 50, 400]], dtype=torch.int32)
    warped = time_warp_segments(features, segments)
    assert torch.equal(features, before)  # the input is not modified
    assert warped.shape == features.shape
    assert torch.equal(warped[1, :50], features[1, :50]) and torch.equal(warped[1, 450:], features[1, 450:])
    assert not torch.equal(warped, features)  # some segment was warped (p = 0.9 each)
    # The masks-only SpecAugment has no time warp.
    assert make_spec_augment(time_warp=False).time_warp_factor is None
    assert make_spec_augment().time_warp_factor == 80
