"""Configurations of the transducer model and of its loss, as plain dataclasses.

Both round-trip through plain dicts (``to_dict`` / ``from_dict``), hence through YAML
files and checkpoints (a checkpoint stores ``{"config": {"model": ..., "loss": ...}}``).
"""
from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

from distill.utils.dataclass_dict import from_mapping


@dataclass
class ModelConfig:
    """Architecture of a transducer (encoder + predictor + joiner).

    ``encoder`` and ``decoder`` are keys of the registries ``ENCODERS`` and ``PREDICTORS``
    in :mod:`distill.models.registry`. ``vocab_size`` must be set from the lang dir's BPE
    model; ``blank_id`` is the id of ``<blk>`` (0 in our lang dirs).

    How each architecture reads the fields (fields an architecture does not name are
    ignored by it):

    * ``conformer`` encoder: ``encoder_dim``, ``num_encoder_layers``, ``nhead``,
      ``dim_feedforward``, ``cnn_module_kernel`` (depthwise conv), ``subsampling_channels``,
      ``dropout``.
    * ``lstm`` encoder: ``encoder_dim`` (residual stream and output dim),
      ``num_encoder_layers`` (residual LSTM blocks), ``lstm_hidden_dim`` (LSTM cell size,
      projected back to ``encoder_dim`` when larger; 0: ``encoder_dim``),
      ``dim_feedforward`` (each block's feed-forward branch; 0: none),
      ``subsampling_channels``, ``dropout``.
    * ``tdnn`` encoder: ``encoder_dim`` (channels and output dim), ``num_encoder_layers``
      (1-D convolution layers), ``cnn_module_kernel`` (their kernel size),
      ``tdnn_dilations``, ``subsampling_channels``, ``dropout``.
    * ``stateless`` predictor: ``decoder_dim``, ``context_size``.
    * ``lstm`` predictor: ``decoder_dim`` (embedding, LSTM hidden and output dim),
      ``num_predictor_layers``, ``dropout``.

    Attributes added for the students (their defaults leave older configs unchanged):
      num_predictor_layers:
        Number of LSTM layers of the ``lstm`` predictor (>= 1).
      tdnn_dilations:
        Dilations of the ``tdnn`` encoder's convolutions: layer ``i`` uses
        ``tdnn_dilations[i % len(tdnn_dilations)]`` (positive ints; a YAML list).
      aux_ctc:
        Add a linear CTC head on the encoder output (ESPnet's auxiliary CTC for
        transducers), trained with weight ``LossConfig.ctc_scale`` and unused in decoding.
      positional_encoding:
        ``absolute`` (sinusoids added after the conformer's front end) or ``none`` (the
        convolution modules and the front end carry the order). On the demo corpus, without
        them the CTC warm-up left the blank-only plateau about 500 batches sooner
        (egs/librispeech/ASR/RESULTS.md).
      subsampling_first_channels:
        Channels of the first convolution of every encoder's front end (0: as many as
        ``subsampling_channels``, the second's); fewer make the front end much cheaper on
        CPUs (:class:`~distill.models.subsampling.Conv2dSubsampling`).
      feature_norm:
        How every encoder's front end normalizes the input features: ``global`` (one mean
        and std per bin from the training data) or ``utterance`` (each utterance's own mean,
        the global std; Kaldi's per-utterance CMN), which removes a voice's fixed spectral
        colouring and so helps on voices never heard in training.
      init_blank_prob:
        0 (PyTorch's default initialization), or the probability that the output layers'
        biases give blank at initialization, the rest spread evenly over the tokens: the CTC
        head, the joiner's output and the simple loss's encoder projection. See
        :meth:`distill.models.transducer.Transducer.init_output_biases` for why.
      lstm_hidden_dim:
        Cell size of the ``lstm`` encoder's LSTMs (0: ``encoder_dim``); a larger cell is
        projected back to ``encoder_dim`` (``nn.LSTM``'s ``proj_size``).
      lookahead_frames:
        Encoder frames (40 ms each) the ``lstm`` encoder reads ahead before its LSTMs (0:
        none, strictly causal): a fixed latency that keeps it streamable
        (:class:`distill.models.lstm_encoder.Lookahead`).
    """

    encoder: str = "conformer"
    num_features: int = 80
    encoder_dim: int = 256
    num_encoder_layers: int = 6
    nhead: int = 4
    dim_feedforward: int = 1024
    cnn_module_kernel: int = 15
    subsampling_channels: int = 0
    subsampling_first_channels: int = 0
    decoder: str = "stateless"
    decoder_dim: int = 256
    context_size: int = 2
    joiner_dim: int = 256
    dropout: float = 0.1
    vocab_size: int = 500
    blank_id: int = 0
    num_predictor_layers: int = 1
    tdnn_dilations: Tuple[int, ...] = (1, 2, 3)
    aux_ctc: bool = False
    positional_encoding: str = "absolute"
    feature_norm: str = "global"
    init_blank_prob: float = 0.0
    lstm_hidden_dim: int = 0
    lookahead_frames: int = 0

    def __post_init__(self) -> None:
        # YAML and --set give lists; keep a tuple so that configs compare equal after a
        # round trip through a dict.
        try:
            self.tdnn_dilations = tuple(operator.index(d) for d in self.tdnn_dilations)
        except (TypeError, ValueError) as err:
            raise ValueError(f"tdnn_dilations must be a list of ints, got {self.tdnn_dilations!r}") from err
        if not self.tdnn_dilations or min(self.tdnn_dilations) < 1:
            raise ValueError(f"tdnn_dilations must be non-empty and positive, got {list(self.tdnn_dilations)}")
        if self.lstm_hidden_dim and self.lstm_hidden_dim < self.encoder_dim:
            raise ValueError(f"lstm_hidden_dim ({self.lstm_hidden_dim}) must be 0 or >= encoder_dim ({self.encoder_dim})")
        if self.lookahead_frames < 0:
            raise ValueError(f"lookahead_frames must be >= 0, got {self.lookahead_frames}")
        if self.lookahead_frames and self.encoder != "lstm":
            raise ValueError(f"lookahead_frames is an option of the lstm encoder; the {self.encoder} encoder has its "
                             f"own right context: set it to 0")
        if self.num_predictor_layers < 1:
            raise ValueError(f"num_predictor_layers must be >= 1, got {self.num_predictor_layers}")
        if self.encoder_dim % self.nhead != 0:
            raise ValueError(f"encoder_dim ({self.encoder_dim}) must be divisible by nhead ({self.nhead})")
        if self.cnn_module_kernel < 1 or self.cnn_module_kernel % 2 == 0:
            raise ValueError(f"cnn_module_kernel must be odd and positive, got {self.cnn_module_kernel}")
        if self.context_size < 1:
            raise ValueError(f"context_size must be >= 1, got {self.context_size}")
        if self.positional_encoding not in ("absolute", "none"):
            raise ValueError(f"positional_encoding must be 'absolute' or 'none', got {self.positional_encoding!r}")
        if self.feature_norm not in ("global", "utterance"):
            raise ValueError(f"feature_norm must be 'global' or 'utterance', got {self.feature_norm!r}")
        if not 0 <= self.blank_id < self.vocab_size:
            raise ValueError(f"blank_id ({self.blank_id}) must lie in [0, vocab_size={self.vocab_size})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 <= self.init_blank_prob < 1.0:
            raise ValueError(f"init_blank_prob must lie in [0, 1), got {self.init_blank_prob}")

    def to_dict(self) -> Dict[str, Any]:
        """The config as a plain dict (for YAML and checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``.

        Args:
          d:
            Field names to values; missing fields take their defaults.
        """
        return from_mapping(cls, d)


@dataclass
class LossConfig:
    """Settings of the pruned RNN-T loss and of its warm-up schedule.

    ``prune_range`` is the number of symbol positions kept per frame by
    ``k2.get_rnnt_prune_ranges``; ``lm_scale`` and ``am_scale`` are the ``lm_only_scale``
    and ``am_only_scale`` of ``k2.rnnt_loss_smoothed`` (the "simple" loss).

    Warm-up (see :meth:`scales`), with ``w = model_warm_step`` and ``b`` the number of
    training batches seen so far:

    * pruned loss scale: ``0.0`` for ``b < w / 2``, ``0.1`` for ``w / 2 <= b < w``,
      ``1.0`` for ``b >= w``;
    * simple loss scale: linear from ``1.0`` at ``b = 0`` to ``simple_loss_scale`` at
      ``b = w``, i.e. ``1.0 - (1.0 - simple_loss_scale) * min(b / w, 1)``, then constant.

    ``model_warm_step <= 0`` disables warm-up (scales ``simple_loss_scale`` and ``1.0``).

    ``ctc_scale`` weighs the auxiliary CTC loss of a model built with ``aux_ctc``.

    ``ctc_warm_step`` (needs ``aux_ctc``) starts training with the CTC loss alone (scale 1,
    transducer losses 0) for that many batches; the transducer warm-up above then runs on
    ``b - ctc_warm_step``. On the demo corpus a conformer trained with the transducer losses
    from the first batch stays on the "blank only" plateau (its encoder output stops
    depending on the input) for thousands of batches, while with CTC alone it leaves it
    after about 300; once the encoder is informative, the transducer learns quickly.
    """

    prune_range: int = 5
    lm_scale: float = 0.25
    am_scale: float = 0.0
    simple_loss_scale: float = 0.5
    model_warm_step: int = 3000
    ctc_scale: float = 0.0
    ctc_warm_step: int = 0

    def __post_init__(self) -> None:
        if self.prune_range < 2:
            raise ValueError(f"prune_range must be >= 2 for the regular RNN-T, got {self.prune_range}")
        if self.ctc_scale < 0.0:
            raise ValueError(f"ctc_scale must be >= 0, got {self.ctc_scale}")
        if self.ctc_warm_step < 0:
            raise ValueError(f"ctc_warm_step must be >= 0, got {self.ctc_warm_step}")

    @property
    def uses_ctc(self) -> bool:
        """Whether the CTC loss is computed at all (a CTC scale or a CTC warm-up)."""
        return self.ctc_scale > 0.0 or self.ctc_warm_step > 0

    def ctc_only(self, batch_idx_train: int) -> bool:
        """Whether ``batch_idx_train`` falls in the CTC warm-up (transducer losses off).

        Args:
          batch_idx_train:
            Number of training batches processed so far (0 for the first batch).
        """
        return batch_idx_train < self.ctc_warm_step

    def scales(self, batch_idx_train: int) -> Tuple[float, float]:
        """The (simple, pruned) loss scales after ``batch_idx_train`` batches.

        Args:
          batch_idx_train:
            Number of training batches processed so far (0 for the first batch).
        Returns:
          A tuple ``(simple_scale, pruned_scale)``; see the class docstring.
        """
        if self.ctc_only(batch_idx_train):
            return 0.0, 0.0
        batch_idx_train -= self.ctc_warm_step
        warm = self.model_warm_step
        if warm <= 0 or batch_idx_train >= warm:
            return self.simple_loss_scale, 1.0
        frac = max(batch_idx_train, 0) / warm
        simple_scale = 1.0 - (1.0 - self.simple_loss_scale) * frac
        pruned_scale = 0.0 if frac < 0.5 else 0.1
        return simple_scale, pruned_scale

    def ctc_weight(self, batch_idx_train: int) -> float:
        """The scale of the CTC loss: 1.0 during the CTC warm-up, then ``ctc_scale``.

        Args:
          batch_idx_train:
            Number of training batches processed so far.
        """
        return 1.0 if self.ctc_only(batch_idx_train) else self.ctc_scale

    def warmup(self, batch_idx_train: int) -> float:
        """The encoder's warm-up progress ``b / model_warm_step`` (1.0 without warm-up).

        Args:
          batch_idx_train:
            Number of training batches processed so far.
        """
        if self.model_warm_step <= 0:
            return 1.0
        return max(batch_idx_train, 0) / self.model_warm_step

    def to_dict(self) -> Dict[str, Any]:
        """The config as a plain dict (for YAML and checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LossConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``.

        Args:
          d:
            Field names to values; missing fields take their defaults.
        """
        return from_mapping(cls, d)
