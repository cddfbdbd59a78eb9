"""Frequency warping of log-mel features: a vocal-tract-length perturbation (VTLP) for batches.

A speaker's vocal tract length scales the frequencies of their formants by a roughly constant
factor. VTLP (Jaitly and Hinton, 2013) draws a warp factor ``alpha`` per utterance and moves
the spectrum's content from frequency ``f`` to ``alpha * f``, so that the model hears each
training voice as many slightly different ones. Applied here to precomputed fbank features:
output bin ``m`` (centre frequency ``f_m``) takes the log energy the input had at
``f_m / alpha``, interpolated linearly between bins on the mel scale. This costs one gather per
batch and needs no new features.

Kaldi's mel scale is ``1127 ln(1 + f / 700)``; the bins' centres are taken as evenly spaced on
it between ``low_freq`` and ``high_freq`` (lhotse's KaldifeatFbank defaults at 16 kHz: 20 Hz and
7600 Hz). A frequency warped past the top bin reads the top bin (the spectrum is flat there).
"""
from __future__ import annotations

from typing import Optional

import torch


def mel_scale(hz: torch.Tensor) -> torch.Tensor:
    """Kaldi's mel scale, ``1127 ln(1 + f / 700)``."""
    return 1127.0 * torch.log1p(hz / 700.0)


def inverse_mel_scale(mel: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`mel_scale`, in Hz."""
    return 700.0 * torch.expm1(mel / 1127.0)


class FrequencyWarp:
    """Warps each utterance's log-mel features by a random factor in ``[1 - max_warp, 1 + max_warp]``.

    Args:
      max_warp:
        Largest relative change of frequency, in (0, 0.5); VTLP uses about 0.1.
      low_freq / high_freq:
        Frequencies (Hz) of the lowest and highest mel bin edges the features were
        computed with.
    """

    def __init__(self, max_warp: float, low_freq: float = 20.0, high_freq: float = 7600.0) -> None:
        if not 0.0 < max_warp < 0.5:
            raise ValueError(f"max_warp must lie in (0, 0.5), got {max_warp}")
        if not 0.0 <= low_freq < high_freq:
            raise ValueError(f"Need 0 <= low_freq < high_freq, got {low_freq} and {high_freq}")
        self.max_warp = max_warp
        self.low_freq = low_freq
        self.high_freq = high_freq

    def source_bins(self, num_bins: int, alphas: torch.Tensor) -> torch.Tensor:
        """Fractional input bin read by each output bin, for each warp factor.

        Args:
          num_bins:
            Number of mel bins F.
          alphas:
            Warp factors of shape (N,).
        Returns:
          A float tensor of shape (N, F) with values in [0, F - 1].
        """
        low, high = mel_scale(torch.tensor([self.low_freq, self.high_freq], dtype=torch.float64))
        step = (high - low) / (num_bins + 1)  # num_bins triangles: num_bins + 2 edges
        centres_mel = low + step * torch.arange(1, num_bins + 1, dtype=torch.float64)  # (F,)
        centres_hz = inverse_mel_scale(centres_mel)
        source_hz = centres_hz[None, :] / alphas.to(torch.float64)[:, None]  # (N, F)
        source = (mel_scale(source_hz) - low) / step - 1.0
        return source.clamp(0.0, num_bins - 1.0).to(torch.float32)

    def __call__(self, features: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Warp a batch.

        Args:
          features:
            Log-mel features of shape (N, T, F).
          generator:
            Random generator for the warp factors (default: torch's global one).
        Returns:
          The warped features, of the same shape, dtype and device.
        """
        if features.ndim != 3:
            raise ValueError(f"Expected features of shape (N, T, F), got {tuple(features.shape)}")
        n, _, num_bins = features.shape
        alphas = 1.0 + self.max_warp * (2.0 * torch.rand(n, generator=generator) - 1.0)
        return warp_bins(features, self.source_bins(num_bins, alphas).to(features.device))


def warp_bins(features: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Read each utterance's features at fractional bins, interpolating linearly.

    Args:
      features:
        A tensor of shape (N, T, F).
      source:
        Fractional bins of shape (N, F), each in [0, F - 1].
    Returns:
      A tensor of shape (N, T, F): ``out[n, t, m] = features[n, t, source[n, m]]``.
    """
    lower = source.floor().long().clamp(max=features.size(2) - 1)
    upper = (lower + 1).clamp(max=features.size(2) - 1)
    frac = (source - lower.to(source.dtype)).to(features.dtype)[:, None, :]  # (N, 1, F)
    index_shape = (features.size(0), features.size(1), features.size(2))
    at_lower = features.gather(2, lower[:, None, :].expand(index_shape))
    at_upper = features.gather(2, upper[:, None, :].expand(index_shape))
    return at_lower + frac * (at_upper - at_lower)

