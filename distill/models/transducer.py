"""The transducer model and its k2 pruned RNN-T loss.

The loss follows k2's pruned RNN-T recipe:

1. a "simple" loss, ``k2.rnnt_loss_smoothed``, where the joiner is a plain sum of
   ``simple_am_proj(encoder_out)`` and ``simple_lm_proj(decoder_out)``; its gradients with
   respect to the lattice scores (``px_grad``, ``py_grad``) give the likely alignments;
2. ``k2.get_rnnt_prune_ranges`` keeps ``prune_range`` symbol positions per frame;
3. the real joiner is evaluated only on those positions and ``k2.rnnt_loss_pruned``
   gives the "pruned" loss.

Both losses are computed in float32, also under autocast.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import k2
import torch
from torch import nn

from distill.models.config import LossConfig
from distill.models.decoder import Predictor
from distill.models.joiner import Joiner


class Encoder(nn.Module, metaclass=abc.ABCMeta):
    """Interface of transducer encoders.

    Attributes:
      output_dim:
        Dimension of the encoder output.
    """

    output_dim: int

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, x_lens: torch.Tensor, warmup: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
          x:
            Input features of shape (N, T, num_features).
          x_lens:
            A 1-D integer tensor of shape (N,) with the numbers of valid frames.
          warmup:
            Training progress through the model warm-up (``batch / model_warm_step``; 1.0
            when warmed up, and always in decoding). Deep encoders may use it to start
            shallow; others ignore it.
        Returns:
          A tuple ``(encoder_out, encoder_out_lens)``: a tensor of shape
          (N, T', output_dim) and a 1-D int64 tensor of shape (N,).
        """


@dataclass
class TransducerLossOutput:
    """What :meth:`Transducer.forward` returns.

    Attributes:
      simple_loss:
        Scalar tensor, the smoothed ("simple") RNN-T loss summed over the batch.
      pruned_loss:
        Scalar tensor, the pruned RNN-T loss summed over the batch.
      encoder_out:
        Tensor of shape (N, T', encoder_dim).
      encoder_out_lens:
        Int64 tensor of shape (N,).
      px_grad:
        Tensor of shape (N, U, T' + 1): occupation probabilities of the symbol arcs of
        the simple-loss lattice (U is the padded label length); no gradient.
      py_grad:
        Tensor of shape (N, U + 1, T'): occupation probabilities of the blank arcs;
        no gradient.
      ranges:
        Int64 tensor of shape (N, T', s_range): symbol positions kept per frame, with
        ``s_range = min(prune_range, U + 1)``.
      boundary:
        Int64 tensor of shape (N, 4), rows ``[0, 0, U_i, T'_i]``.
      logits:
        Tensor of shape (N, T', s_range, vocab_size): the joiner output on the pruned
        lattice (in the autocast dtype, if any).
      decoder_out:
        Tensor of shape (N, U + 1, decoder_dim): the predictor output on the blank-prefixed
        labels (the distillation loss joins it on the teacher's ranges).
      y_padded:
        Int64 tensor of shape (N, U): the labels, padded with blank.
      ctc_loss:
        Scalar tensor, the auxiliary CTC loss summed over the batch (0 when the model has
        no CTC head or ``ctc_scale`` is 0).
    """

    simple_loss: torch.Tensor
    pruned_loss: torch.Tensor
    encoder_out: torch.Tensor
    encoder_out_lens: torch.Tensor
    px_grad: torch.Tensor
    py_grad: torch.Tensor
    ranges: torch.Tensor
    boundary: torch.Tensor
    logits: torch.Tensor
    decoder_out: torch.Tensor
    y_padded: torch.Tensor
    ctc_loss: torch.Tensor


def add_sos_and_pad(y: k2.RaggedTensor, blank_id: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad label sequences, and make the predictor input with blank prepended.

    Args:
      y:
        A ragged tensor with 2 axes [utt][label], holding int32 labels (no blanks).
      blank_id:
        The blank id, used as start symbol and padding.
    Returns:
      A tuple ``(y_padded, sos_y_padded, y_lens)``: int64 tensors of shapes (N, U),
      (N, U + 1) and (N,), where U is the longest label sequence.
    """
    if y.num_axes != 2:
        raise ValueError(f"y must have 2 axes, got {y.num_axes}")
    row_splits = y.shape.row_splits(1)
    y_lens = (row_splits[1:] - row_splits[:-1]).to(torch.int64)
    y_padded = y.pad(mode="constant", padding_value=blank_id).to(torch.int64)
    sos = torch.full((y_padded.size(0), 1), blank_id, dtype=torch.int64, device=y_padded.device)
    return y_padded, torch.cat([sos, y_padded], dim=1), y_lens


class Transducer(nn.Module):
    """Encoder + predictor + joiner, with the linear "simple" projections for the
    smoothed loss."""

    def __init__(self, encoder: Encoder, decoder: Predictor, joiner: Joiner, aux_ctc: bool = False) -> None:
        """
        Args:
          encoder:
            The encoder, with attribute ``output_dim``.
          decoder:
            The predictor (see :class:`distill.models.decoder.Predictor`).
          joiner:
            The joiner; its input dims must match ``encoder.output_dim`` and
            ``decoder.output_dim`` and its output dim ``decoder.vocab_size``.
          aux_ctc:
            Add ``ctc_output``, a linear CTC head on the encoder output (training only).
        """
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.joiner = joiner
        self.blank_id = decoder.blank_id
        self.vocab_size = decoder.vocab_size
        self.simple_am_proj = nn.Linear(encoder.output_dim, decoder.vocab_size)
        self.simple_lm_proj = nn.Linear(decoder.output_dim, decoder.vocab_size)
        self.ctc_output = nn.Linear(encoder.output_dim, decoder.vocab_size) if aux_ctc else None

    def init_output_biases(self, blank_prob: float) -> None:
        """Set the output layers' biases to a prior: ``blank_prob`` on blank, the rest spread
        evenly over the tokens (the CTC head, the joiner's output, the simple loss's encoder
        projection; the weights keep their random initialization).

        Why: at the start of training, the quickest way down the loss is to output blank's
        frequency everywhere. With zero biases the network can only do that by making its
        encoder output the same for every frame, and the gradients that would tell frames
        apart vanish with it: the "blank-only plateau". With the prior in the biases from the
        start there is nothing to collapse for. Measured on the demo corpus (one thread,
        same seed): the teacher's CTC loss fell below 1.0 per frame after 200 batches instead
        of ~550, and with 256 BPE pieces after 300 instead of never in 2900 batches
        (egs/librispeech/ASR/RESULTS.md). Karpathy's "init well" advice, for CTC and
        transducers (blank takes most frames: about 3 of 4 at 25 frames and 7 tokens a second).

        Args:
          blank_prob:
            In (0, 1).
        """
        if not 0.0 < blank_prob < 1.0:
            raise ValueError(f"blank_prob must lie in (0, 1), got {blank_prob}")
        prior = torch.full((self.vocab_size,), math.log((1.0 - blank_prob) / (self.vocab_size - 1)))
        prior[self.blank_id] = math.log(blank_prob)
        layers = [self.joiner.output_linear, self.simple_am_proj] + ([self.ctc_output] if self.ctc_output is not None else [])
        with torch.no_grad():
            for layer in layers:
                layer.bias.copy_(prior)

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the global feature normalization of the encoder's front end (see
        :meth:`distill.models.subsampling.Conv2dSubsampling.set_feature_stats`)."""
        self.encoder.subsampling.set_feature_stats(mean, std)

    def encode(self, x: torch.Tensor, x_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the encoder (for decoding).

        Args:
          x:
            Features of shape (N, T, num_features).
          x_lens:
            A 1-D integer tensor of shape (N,).
        Returns:
          A tuple ``(encoder_out, encoder_out_lens)`` of shapes (N, T', encoder_dim) and (N,).
        """
        return self.encoder(x, x_lens)

    def forward(
        self,
        x: torch.Tensor,
        x_lens: torch.Tensor,
        y: k2.RaggedTensor,
        loss_config: LossConfig,
        warmup: float = 1.0,
        prune_ranges: Optional[torch.Tensor] = None,
    ) -> TransducerLossOutput:
        """Compute the simple and pruned RNN-T losses.

        Args:
          x:
            Features of shape (N, T, num_features).
          x_lens:
            A 1-D integer tensor of shape (N,) with the numbers of valid frames.
          y:
            A ragged tensor with 2 axes [utt][label] holding the labels (int32, no blank),
            on the same device as ``x``. Each utterance needs at least one label, and the
            padded label length must not exceed the padded number of encoder frames.
          loss_config:
            Gives ``prune_range``, ``lm_scale`` and ``am_scale``.
          warmup:
            Model warm-up progress for the encoder (see :meth:`LossConfig.warmup`).
          prune_ranges:
            See :meth:`transducer_losses`.
        Returns:
          A :class:`TransducerLossOutput`; both losses are summed over the batch.
        """
        if x.ndim != 3 or x_lens.ndim != 1 or x.size(0) != x_lens.size(0) or y.dim0 != x.size(0):
            raise ValueError(f"Bad shapes: x {tuple(x.shape)}, x_lens {tuple(x_lens.shape)}, y.dim0 {y.dim0}")
        encoder_out, encoder_out_lens = self.encoder(x, x_lens, warmup=warmup)
        return self.transducer_losses(encoder_out, encoder_out_lens, y, loss_config, prune_ranges)

    def transducer_losses(
        self,
        encoder_out: torch.Tensor,
        encoder_out_lens: torch.Tensor,
        y: k2.RaggedTensor,
        loss_config: LossConfig,
        prune_ranges: Optional[torch.Tensor] = None,
        reduction: str = "sum",
    ) -> TransducerLossOutput:
        """The simple, pruned and CTC losses of labels ``y`` given the encoder output.

        Args:
          encoder_out:
            Tensor of shape (N, T', encoder_dim).
          encoder_out_lens:
            Int64 tensor of shape (N,).
          y:
            Labels as for :meth:`forward`.
          loss_config:
            As for :meth:`forward`.
          prune_ranges:
            None: the pruned loss is evaluated on the model's own pruning bounds, from its
            simple loss (k2's recipe). Else the label positions to keep per frame, shape
            (N, T', min(prune_range, U + 1)), e.g. a teacher's bounds (distillation with
            shared bounds, ``kd.bounds: teacher``).
          reduction:
            "sum": the losses are summed over the batch; "none": one per utterance, shape
            (N,), and no CTC loss (``loss_config`` must not ask for one).
        Returns:
          A :class:`TransducerLossOutput`; ``ranges`` are the bounds used.
        """
        if reduction not in ("sum", "none"):
            raise ValueError(f"reduction must be 'sum' or 'none', got {reduction!r}")
        y_padded, sos_y_padded, y_lens = add_sos_and_pad(y, self.blank_id)
        decoder_out = self.decoder(sos_y_padded)  # (N, U + 1, decoder_dim)

        boundary = torch.zeros((encoder_out.size(0), 4), dtype=torch.int64, device=encoder_out.device)
        boundary[:, 2] = y_lens
        boundary[:, 3] = encoder_out_lens

        lm = self.simple_lm_proj(decoder_out)
        am = self.simple_am_proj(encoder_out)
        with torch.autocast(device_type=encoder_out.device.type, enabled=False):
            simple_loss, (px_grad, py_grad) = k2.rnnt_loss_smoothed(
                lm=lm.float(),
                am=am.float(),
                symbols=y_padded,
                termination_symbol=self.blank_id,
                lm_only_scale=loss_config.lm_scale,
                am_only_scale=loss_config.am_scale,
                boundary=boundary,
                reduction=reduction,
                return_grad=True,
            )

        if prune_ranges is None:
            ranges = k2.get_rnnt_prune_ranges(
                px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=loss_config.prune_range
            )
        else:
            expected = (encoder_out.size(0), encoder_out.size(1), min(loss_config.prune_range, y_padded.size(1) + 1))
            if tuple(prune_ranges.shape) != expected:
                raise ValueError(f"prune_ranges has shape {tuple(prune_ranges.shape)}, expected {expected}")
            ranges = prune_ranges
        am_pruned, lm_pruned = k2.do_rnnt_pruning(
            am=self.joiner.encoder_proj(encoder_out), lm=self.joiner.decoder_proj(decoder_out), ranges=ranges
        )
        logits = self.joiner(am_pruned, lm_pruned, project_input=False)  # (N, T', s_range, V)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            pruned_loss = k2.rnnt_loss_pruned(
                logits=logits.float(),
                symbols=y_padded,
                ranges=ranges,
                termination_symbol=self.blank_id,
                boundary=boundary,
                reduction=reduction,
            )
        if reduction == "sum":
            ctc_loss = self.ctc_loss(encoder_out, encoder_out_lens, y_padded, y_lens, loss_config)
        elif loss_config.uses_ctc:
            raise ValueError("reduction='none' computes no CTC loss: pass a loss config without CTC")
        else:
            ctc_loss = encoder_out.new_zeros(())
        return TransducerLossOutput(
            simple_loss=simple_loss,
            pruned_loss=pruned_loss,
            encoder_out=encoder_out,
            encoder_out_lens=encoder_out_lens,
            px_grad=px_grad,
            py_grad=py_grad,
            ranges=ranges,
            boundary=boundary,
            logits=logits,
            decoder_out=decoder_out,
            y_padded=y_padded,
            ctc_loss=ctc_loss,
        )

    def ctc_loss(
        self,
        encoder_out: torch.Tensor,
        encoder_out_lens: torch.Tensor,
        y_padded: torch.Tensor,
        y_lens: torch.Tensor,
        loss_config: LossConfig,
    ) -> torch.Tensor:
        """The auxiliary CTC loss of the encoder output, summed over the batch.

        Args:
          encoder_out:
            Tensor of shape (N, T', encoder_dim).
          encoder_out_lens:
            Int64 tensor of shape (N,).
          y_padded:
            Int64 tensor of shape (N, U), labels padded with blank.
          y_lens:
            Int64 tensor of shape (N,).
          loss_config:
            Gives ``ctc_scale`` and ``ctc_warm_step``; both 0 skip the computation.
        Returns:
          A scalar tensor (a zero one when skipped).
        """
        if not loss_config.uses_ctc:
            return encoder_out.new_zeros(())
        if self.ctc_output is None:
            raise ValueError("loss.ctc_scale > 0 or loss.ctc_warm_step > 0 needs a model built with model.aux_ctc: true")
        with torch.autocast(device_type=encoder_out.device.type, enabled=False):
            log_probs = self.ctc_output(encoder_out.float()).log_softmax(dim=-1)
            # zero_infinity: an utterance too short for its labels (plus the blanks CTC needs
            # between repeats) adds nothing instead of an infinite loss.
            return nn.functional.ctc_loss(
                log_probs.transpose(0, 1),
                y_padded,
                encoder_out_lens,
                y_lens,
                blank=self.blank_id,
                reduction="sum",
                zero_infinity=True,
            )


def combine_losses(out: TransducerLossOutput, loss_config: LossConfig, batch_idx_train: int) -> torch.Tensor:
    """Weighted sum of the two losses with the warm-up schedule of
    :meth:`distill.models.config.LossConfig.scales`.

    Args:
      out:
        The output of :meth:`Transducer.forward`.
      loss_config:
        Gives ``simple_loss_scale`` and ``model_warm_step``.
      batch_idx_train:
        Number of training batches processed so far.
    Returns:
      A scalar tensor ``simple_scale * simple_loss + pruned_scale * pruned_loss
      + ctc_scale * ctc_loss`` with the scales of the warm-up schedules.
    """
    simple_scale, pruned_scale = loss_config.scales(batch_idx_train)
    ctc_scale = loss_config.ctc_weight(batch_idx_train)
    return simple_scale * out.simple_loss + pruned_scale * out.pruned_loss + ctc_scale * out.ctc_loss


def num_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model``.

    Args:
      model:
        Any module.
      trainable_only:
        Count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
