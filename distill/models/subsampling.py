"""Convolutional front end that subsamples the feature frames by 4.

The output length of every encoder that uses it is given by :func:`subsampled_lengths`;
training (loss boundaries), decoding and tests all call that one function.
"""
from __future__ import annotations

from typing import Optional, Union, overload

import torch
from torch import nn

from distill.models.layers import LayerNorm

#: Input frames per output frame of :class:`Conv2dSubsampling` (two stride-2 convolutions).
SUBSAMPLING_FACTOR = 4

#: Fewest input frames :class:`Conv2dSubsampling` accepts (it then gives one output frame).
MIN_INPUT_FRAMES = 7

#: The feature normalizations :class:`Conv2dSubsampling` offers (``ModelConfig.feature_norm``).
FEATURE_NORMS = ("global", "utterance")


@overload
def subsampled_lengths(x_lens: int) -> int:
    ...


@overload
def subsampled_lengths(x_lens: torch.Tensor) -> torch.Tensor:
    ...


def subsampled_lengths(x_lens: Union[int, torch.Tensor]) -> Union[int, torch.Tensor]:
    """Number of output frames of :class:`Conv2dSubsampling` for ``x_lens`` input frames.

    Each of the two 3x3 convolutions with stride 2 and no padding maps ``T`` frames to
    ``(T - 3) // 2 + 1 = (T - 1) // 2``, so the result is ``((T - 1) // 2 - 1) // 2``.

    Args:
      x_lens:
        An int, or an integer tensor of any shape (usually ``(N,)``), with the numbers of
        input frames.
    Returns:
      The numbers of output frames, of the same type (and shape, dtype, device).
    """
    if isinstance(x_lens, torch.Tensor):
        return torch.div(torch.div(x_lens - 1, 2, rounding_mode="floor") - 1, 2, rounding_mode="floor")
    return ((x_lens - 1) // 2 - 1) // 2


class Conv2dSubsampling(nn.Module):
    """Normalize the features, then subsample by 4 in time: Conv2d(3x3, stride 2) -> ReLU ->
    Conv2d(3x3, stride 2) -> ReLU -> Linear to ``out_dim`` -> LayerNorm.

    The features are normalized with a global mean and standard deviation per bin (ESPnet's
    global MVN), held in buffers so that checkpoints carry them; the trainer sets them from
    the training data (:meth:`set_feature_stats`). Raw log-mel energies sit around -8 with a
    shared spectral shape, and through the convolutions that common part drowns what differs
    between frames.

    With ``feature_norm="utterance"`` each utterance's own mean per bin (over its valid frames)
    is subtracted instead of the global one, and the global standard deviation still scales
    the result: Kaldi's cepstral mean normalization per utterance. A voice's fixed spectral
    envelope (vocal tract, spectral tilt, the synthesizer's or microphone's colouring) is a
    constant offset in log-mel, so removing it makes a voice never heard in training look
    more like the ones that were.

    The closing LayerNorm (icefall puts a norm there too) fixes the scale of what the
    encoder layers see. Without it, early training (while the outputs carry no information
    yet, so input-dependent activity only adds noise to the loss) grows this output until the
    LSTM gates saturate or the positional terms swamp it, and the encoder output stops
    depending on the input for good: measured on the demo corpus, the difference between two
    utterances' encoder outputs fell from 0.36 to 1e-5 within 200 batches.

    No padding is used, so the output frames that :func:`subsampled_lengths` counts depend
    only on the valid (non-padding) input frames of each utterance.
    """

    def __init__(
        self, in_dim: int, out_dim: int, channels: int = 0, feature_norm: str = "global", first_channels: int = 0
    ) -> None:
        """
        Args:
          in_dim:
            Feature dimension of the input (e.g. 80 fbank bins); must be >= 7.
          out_dim:
            Output dimension (the encoder dimension).
          channels:
            Number of channels of the second convolution (the output of the first is its
            input); 0 means ``out_dim``.
          first_channels:
            Number of channels of the first convolution; 0 means ``channels``. Fewer than
            ``channels`` makes the front end several times cheaper on CPUs (oneDNN's
            convolution backward is slow with many input channels: 8 x 400 frames forward
            and backward took 121 ms with 64 -> 64 channels, 35 ms with 16 -> 64, one thread).
          feature_norm:
            ``global`` (global mean and std per bin) or ``utterance`` (each utterance's
            own mean, the global std).
        """
        super().__init__()
        if in_dim < MIN_INPUT_FRAMES:
            raise ValueError(f"in_dim must be >= {MIN_INPUT_FRAMES}, got {in_dim}")
        if feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {feature_norm!r}")
        channels = channels or out_dim
        first_channels = first_channels or channels
        self.feature_norm = feature_norm
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.conv = nn.Sequential(
            nn.Conv2d(1, first_channels, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Conv2d(first_channels, channels, kernel_size=3, stride=2),
            nn.ReLU(),
        )
        self.out = nn.Linear(channels * subsampled_lengths(in_dim), out_dim)
        self.out_norm = LayerNorm(out_dim)
        self.register_buffer("feature_mean", torch.zeros(in_dim))
        self.register_buffer("feature_std", torch.ones(in_dim))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the per-bin mean and standard deviation used to normalize the input.

        Args:
          mean / std:
            Tensors of shape (in_dim,); ``std`` must be positive.
        """
        if mean.shape != (self.in_dim,) or std.shape != (self.in_dim,):
            raise ValueError(f"Feature stats must have shape ({self.in_dim},), got {tuple(mean.shape)} and {tuple(std.shape)}")
        if not bool((std > 0).all()) or not bool(torch.isfinite(mean).all()):
            raise ValueError("Feature stats must be finite with a positive std")
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    def forward(self, x: torch.Tensor, x_lens: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
          x:
            Input features of shape (N, T, in_dim), with T >= 7.
          x_lens:
            A 1-D integer tensor of shape (N,) with the numbers of valid frames; needed by
            ``feature_norm="utterance"`` (so that padding does not shift the means), and
            ignored by ``global``.
        Returns:
          A tensor of shape (N, T', out_dim) with ``T' = subsampled_lengths(T)``.
        """
        if x.ndim != 3 or x.size(2) != self.in_dim:
            raise ValueError(f"Expected input of shape (N, T, {self.in_dim}), got {tuple(x.shape)}")
        if x.size(1) < MIN_INPUT_FRAMES:
            raise ValueError(f"Need at least {MIN_INPUT_FRAMES} input frames, got {x.size(1)}")
        if self.feature_norm == "utterance":
            if x_lens is None:
                raise ValueError("feature_norm='utterance' needs x_lens")
            x = (x - utterance_means(x, x_lens)) / self.feature_std
        else:
            x = (x - self.feature_mean) / self.feature_std
        x = self.conv(x.unsqueeze(1))  # (N, channels, T', F')
        n, c, t, f = x.shape
        return self.out_norm(self.out(x.transpose(1, 2).reshape(n, t, c * f)))


def utterance_means(x: torch.Tensor, x_lens: torch.Tensor) -> torch.Tensor:
    """Each utterance's mean feature vector over its valid frames.

    Args:
      x:
        Features of shape (N, T, F), padded after each utterance's end.
      x_lens:
        A 1-D integer tensor of shape (N,) with the numbers of valid frames (each >= 1).
    Returns:
      A tensor of shape (N, 1, F).
    """
    lens = x_lens.to(device=x.device, dtype=torch.int64)
    valid = (torch.arange(x.size(1), device=x.device)[None, :] < lens[:, None]).to(x.dtype)  # (N, T)
    return (x * valid.unsqueeze(2)).sum(1, keepdim=True) / lens.clamp(min=1).to(x.dtype)[:, None, None]


def check_encoder_inputs(x: torch.Tensor, x_lens: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` (N, T, F) and ``x_lens`` (N,) fit every encoder
    (each utterance needs at least ``MIN_INPUT_FRAMES`` frames to survive subsampling)."""
    if x.ndim != 3 or x_lens.ndim != 1 or x.size(0) != x_lens.size(0):
        raise ValueError(f"Bad shapes: x {tuple(x.shape)}, x_lens {tuple(x_lens.shape)}")
    if int(x_lens.min()) < MIN_INPUT_FRAMES:
        raise ValueError(f"Every utterance needs >= {MIN_INPUT_FRAMES} frames; got x_lens={x_lens.tolist()}")
