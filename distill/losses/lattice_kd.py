"""Lattice-aware knowledge distillation for transducers, computed on k2's pruned lattice.

A transducer defines, at every node (t, u) of its T x (U+1) lattice (frame t, u labels
emitted), a distribution over the vocabulary (blank included). The teacher's distributions
are the knowledge to transfer; but most nodes lie far from any likely alignment, and
matching the student there wastes capacity. So:

1. The teacher's smoothed ("simple") loss with ``return_grad=True`` gives the occupation
   probabilities of the lattice arcs: ``px_grad[b, u, t]`` for emitting label u+1 at (t, u)
   and ``py_grad[b, u, t]`` for the blank from (t, u) to (t+1, u). Every alignment leaves
   a node it visits by exactly one arc, so the node occupancy, the posterior probability
   that an alignment passes through (t, u), is ``gamma[b, u, t] = px_grad + py_grad``.
   (Each alignment takes exactly one blank per frame, so ``sum_u py_grad[b, u, t] = 1``.)
2. ``k2.get_rnnt_prune_ranges`` on those gradients keeps ``s_range`` label positions per
   frame, the teacher's likely region; teacher and student are both joined there with
   ``k2.do_rnnt_pruning``: logits of shape (B, T, s_range, V).
3. At each kept node, KL(teacher softened by temperature tau || student softened by tau),
   times tau^2 (so gradients keep their scale across temperatures, as in Hinton et al.),
   weighted by the teacher's node occupancy, summed over nodes. The trainer divides every
   loss by the number of frames, so the term is normalized per frame.

Options (the ``kd`` section, :class:`KdConfig`), each an ablation of RESULTS.md:

* ``weighting``: the occupancies of step 1 (``occupancy``, from the smoothed lattice, whose
  joiner is a sum of two linear projections), the occupancies of the teacher's real joiner on
  its pruned lattice (``pruned_occupancy``: ``k2.get_rnnt_logprobs_pruned`` on the teacher's
  logits, then ``k2.mutual_information_recursion(..., return_grad=True)``; alignments leaving
  the kept region have probability 0), or ``uniform`` (every kept valid node of a frame gets
  ``1 / (number of valid kept nodes at that frame)``).
* ``bounds``: the student's own pruned RNN-T loss on its own pruning bounds (``own``, k2's
  recipe) or on the teacher's (``teacher``: shared bounds, as in the pruned-transducer
  distillation work of 2025); with shared bounds the student's joiner runs once, on the
  nodes both terms use.
* ``distribution``: the full vocabulary, or the collapsed distribution of Panchapagesan et
  al. (2021) over {correct next label, blank, rest}; and ``temperature``, tau.
* ``teacher_input``: the teacher sees the student's (SpecAugment-ed) features, or the same
  features without the masks (the trainer passes both; see :mod:`distill.train.losses`); the
  time warp is shared, since frame-level distillation needs the frames to line up.
* ``teacher_delay``: the teacher's encoder output is delayed by that many frames before its
  lattice is computed (:func:`delay_frames`), so that a causal student is asked to emit
  where the teacher would, that much later. Measured on the demo (``local/emission_timing.py``,
  RESULTS.md): the unidirectional LSTM student trained alone emits its tokens about 2 frames
  (80 ms) after the full-context teacher on average; distilled without a delay it is pulled to
  the teacher's timing (0.7 frames), and gets worse.
* ``nbest``: sequence-level distillation (:func:`nbest_targets`): the student is also
  trained with its pruned transducer loss on the teacher's ``nbest`` best hypotheses from
  modified beam search, each weighted by its posterior within the n-best.

Padding frames (t >= T_b) and positions beyond an utterance's labels (u > U_b) get weight 0.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple

import k2
import torch
import torch.nn.functional as F

from distill.decode.beam_search import modified_beam_search_nbest
from distill.losses.teacher_cache import TeacherEncoderCache, cached_teacher_encoder
from distill.models.config import LossConfig
from distill.models.transducer import Transducer, TransducerLossOutput

WEIGHTINGS = ("occupancy", "pruned_occupancy", "uniform")
DISTRIBUTIONS = ("full", "collapsed")
BOUNDS = ("own", "teacher")
TEACHER_INPUTS = ("augmented", "clean")


@dataclass
class KdConfig:
    """Distillation settings (the ``kd`` section of an experiment config).

    Attributes:
      teacher_exp_dir: the teacher's experiment directory; empty means no distillation
        (the student trains alone: the baseline).
      teacher_epoch: the teacher checkpoint's epoch (0: the last one).
      teacher_avg: average the teacher over this many epochs ending at ``teacher_epoch``.
      scale: weight of the distillation term added to the student's own pruned loss.
      temperature: tau, softening both distributions.
      weighting: "occupancy" (the teacher's node posteriors on its smoothed lattice),
        "pruned_occupancy" (on its real joiner's pruned lattice) or "uniform" (ablation).
      distribution: "full" (whole vocabulary) or "collapsed" ({label, blank, rest}).
      bounds: the student's own pruned loss on its "own" pruning bounds or the "teacher"'s.
      teacher_input: the teacher sees the "augmented" features the student sees, or "clean"
        ones: without the student's SpecAugment masks (and frequency warp), with its time warp
        (it moves frames by up to 0.8 s: without it the two lattices no longer line up).
      teacher_delay: frames by which the teacher's encoder output is delayed (0: none).
      nbest: sequence-level distillation on the teacher's ``nbest`` best hypotheses (0: off).
      nbest_scale: weight of the sequence-level term.
      nbest_beam: the beam of the teacher's modified beam search (>= ``nbest``).
      ctc_scale: weight of the frame-level term on the two CTC heads (0: off;
        :mod:`distill.losses.ctc_kd`), softened by ``temperature`` too.
      during_ctc_warmup: distill during the student's CTC warm-up (``loss.ctc_warm_step``)
        too. Off by default: the distillation term supervises the transducer lattice, so it
        joins when the transducer losses do. From the first batch, on the TIMIT demo, it
        held the RNN student on the blank-only plateau (egs/timit/ASR/RESULTS.md).
      ctc_during_warmup: the CTC-head term (``ctc_scale`` > 0) from the first batch, while the
        lattice terms still wait for the warm-up (unless ``during_ctc_warmup``): it needs no
        lattice, and during the warm-up the student trains its CTC head alone.
      cache_teacher: keep the teacher's encoder output of each training cut in memory after
        its first batch and reuse it in later epochs, when the teacher's input for a cut
        cannot change between epochs (no SpecAugment; :mod:`distill.losses.teacher_cache`);
        otherwise the trainer logs why it does not. The teacher's encoder is most of its cost.
      cache_teacher_gb: the cache's memory budget in GiB (cuts beyond it are recomputed each
        time); about 0.7 GiB holds the 8-hour demo training part (256 floats per 40 ms frame).
    """

    teacher_exp_dir: str = ""
    teacher_epoch: int = 0
    teacher_avg: int = 1
    scale: float = 1.0
    temperature: float = 1.0
    weighting: str = "occupancy"
    distribution: str = "full"
    bounds: str = "own"
    teacher_input: str = "augmented"
    teacher_delay: int = 0
    nbest: int = 0
    nbest_scale: float = 1.0
    nbest_beam: int = 4
    ctc_scale: float = 0.0
    during_ctc_warmup: bool = False
    ctc_during_warmup: bool = False
    cache_teacher: bool = True
    cache_teacher_gb: float = 4.0

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"kd.weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"kd.distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        if self.bounds not in BOUNDS:
            raise ValueError(f"kd.bounds must be one of {BOUNDS}, got {self.bounds!r}")
        if self.teacher_input not in TEACHER_INPUTS:
            raise ValueError(f"kd.teacher_input must be one of {TEACHER_INPUTS}, got {self.teacher_input!r}")
        if self.temperature <= 0:
            raise ValueError(f"kd.temperature must be positive, got {self.temperature}")
        if self.teacher_delay < 0:
            raise ValueError(f"kd.teacher_delay must be >= 0 frames, got {self.teacher_delay}")
        if self.nbest < 0 or (self.nbest and self.nbest_beam < self.nbest):
            raise ValueError(f"kd.nbest must be >= 0 and kd.nbest_beam >= kd.nbest, got {self.nbest} and {self.nbest_beam}")
        if self.ctc_scale < 0:
            raise ValueError(f"kd.ctc_scale must be >= 0, got {self.ctc_scale}")
        if self.cache_teacher_gb < 0:
            raise ValueError(f"kd.cache_teacher_gb must be >= 0, got {self.cache_teacher_gb}")
        if self.ctc_during_warmup and self.ctc_scale == 0:
            raise ValueError("kd.ctc_during_warmup is set but kd.ctc_scale is 0: set kd.ctc_scale > 0 or drop it")

    @property
    def enabled(self) -> bool:
        return bool(self.teacher_exp_dir)


def delay_frames(encoder_out: torch.Tensor, delay: int) -> torch.Tensor:
    """``encoder_out`` delayed by ``delay`` frames: frame t holds frame t - delay, the first
    ``delay`` frames repeat frame 0 (the start of an utterance: silence).

    The number of frames is kept, so an utterance's last ``delay`` frames drop out (trailing
    silence, in practice); every label must still be emitted before the end, so the teacher's
    alignment moves later by up to ``delay`` frames.

    Args:
      encoder_out:
        Tensor of shape (N, T, C).
      delay:
        Frames, >= 0.
    Returns:
      Tensor of shape (N, T, C).
    """
    if delay <= 0:
        return encoder_out
    T = encoder_out.size(1)
    if delay >= T:
        return encoder_out[:, :1].expand_as(encoder_out)
    return torch.cat([encoder_out[:, :1].expand(-1, delay, -1), encoder_out[:, : T - delay]], dim=1)


class EncoderOutput(NamedTuple):
    """A model's encoder output alone: all the frame-level term needs of the teacher."""

    encoder_out: torch.Tensor
    encoder_out_lens: torch.Tensor


def teacher_encoder_forward(
    teacher: Transducer,
    x: torch.Tensor,
    x_lens: torch.Tensor,
    delay: int = 0,
    cut_ids: Optional[List[str]] = None,
    cache: Optional[TeacherEncoderCache] = None,
) -> EncoderOutput:
    """The teacher's encoder alone (no gradient), its output delayed by ``delay`` frames
    (:func:`delay_frames`): all that the frame-level term of :mod:`distill.losses.ctc_kd`
    needs, e.g. during the CTC warm-up, where the teacher's lattice would be computed for nothing.
    With a ``cache`` and the batch's ``cut_ids``, the undelayed output is read from or kept
    in it (:mod:`distill.losses.teacher_cache`)."""
    encoder_out, encoder_out_lens = cached_teacher_encoder(teacher, x, x_lens, cut_ids, cache)
    return EncoderOutput(delay_frames(encoder_out, delay), encoder_out_lens)


def teacher_forward(
    teacher: Transducer,
    x: torch.Tensor,
    x_lens: torch.Tensor,
    y: k2.RaggedTensor,
    loss_config: LossConfig,
    delay: int = 0,
    cut_ids: Optional[List[str]] = None,
    cache: Optional[TeacherEncoderCache] = None,
) -> TransducerLossOutput:
    """The teacher's forward pass for distillation (no gradient): its encoder output
    (:func:`teacher_encoder_forward`: delayed by ``delay`` frames, from ``cache`` when it
    holds the batch), then its lattice."""
    encoder = teacher_encoder_forward(teacher, x, x_lens, delay, cut_ids, cache)
    with torch.no_grad():
        return teacher.transducer_losses(encoder.encoder_out, encoder.encoder_out_lens, y, loss_config)


def node_occupancy(px_grad: torch.Tensor, py_grad: torch.Tensor) -> torch.Tensor:
    """Posterior probability that an alignment passes through each lattice node.

    Args:
      px_grad:
        Symbol-arc occupancies from ``k2.rnnt_loss_smoothed(..., return_grad=True)``,
        shape (B, U, T + 1) (the last frame column is padding).
      py_grad:
        Blank-arc occupancies, shape (B, U + 1, T).
    Returns:
      Tensor of shape (B, U + 1, T): ``gamma[b, u, t]``.
    """
    B, U1, T = py_grad.shape
    symbol = torch.zeros_like(py_grad)
    symbol[:, : U1 - 1, :] = px_grad[:, :, :T]
    return symbol + py_grad


def valid_nodes(ranges: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """Mask of kept nodes that exist: frame t < T_b and label position u <= U_b.

    Args:
      ranges:
        Label positions kept per frame, shape (B, T, R).
      boundary:
        Rows ``[0, 0, U_b, T_b]``, shape (B, 4).
    Returns:
      Bool tensor of shape (B, T, R).
    """
    T = ranges.size(1)
    frames = torch.arange(T, device=ranges.device)[None, :, None]
    return (frames < boundary[:, 3, None, None]) & (ranges <= boundary[:, 2, None, None])


def pruned_lattice_occupancy(
    logits: torch.Tensor, y_padded: torch.Tensor, ranges: torch.Tensor, boundary: torch.Tensor, blank_id: int
) -> torch.Tensor:
    """Node occupancies of a model's real joiner on its pruned lattice.

    The pruned RNN-T lattice (``k2.get_rnnt_logprobs_pruned``: arcs leaving nodes outside
    ``ranges`` have probability 0) is summed over by ``k2.mutual_information_recursion``;
    with ``return_grad=True`` it gives the arc occupancies, whose sum per node is the node's
    posterior, as :func:`node_occupancy` does for the smoothed lattice.

    Args:
      logits:
        The joiner's output on ``ranges``, shape (B, T, R, V).
      y_padded:
        Labels padded with blank, shape (B, U).
      ranges:
        Kept label positions, shape (B, T, R).
      boundary:
        Rows ``[0, 0, U_b, T_b]``, shape (B, 4).
      blank_id:
        The blank id.
    Returns:
      Tensor of shape (B, U + 1, T): ``gamma[b, u, t]``, 0 outside the kept region.
    """
    with torch.no_grad(), torch.autocast(device_type=logits.device.type, enabled=False):
        px, py = k2.get_rnnt_logprobs_pruned(
            logits=logits.float(), symbols=y_padded, ranges=ranges, termination_symbol=blank_id, boundary=boundary
        )
        _, (px_grad, py_grad) = k2.mutual_information_recursion(px=px, py=py, boundary=boundary, return_grad=True)
    return node_occupancy(px_grad, py_grad)


def node_weights(gamma: Optional[torch.Tensor], ranges: torch.Tensor, boundary: torch.Tensor, weighting: str) -> torch.Tensor:
    """The weight of each kept node, shape (B, T, R) (see the module docstring).

    Args:
      gamma:
        Node occupancies, shape (B, U + 1, T) (unused, may be None, for "uniform").
      ranges:
        Kept label positions, shape (B, T, R).
      boundary:
        Rows ``[0, 0, U_b, T_b]``, shape (B, 4).
      weighting:
        One of :data:`WEIGHTINGS`.
    """
    valid = valid_nodes(ranges, boundary)
    if weighting in ("occupancy", "pruned_occupancy"):
        if gamma is None:
            raise ValueError(f"weighting {weighting!r} needs the occupancies")
        weights = torch.gather(gamma.transpose(1, 2), 2, ranges)  # gamma: (B, T, U + 1)
    elif weighting == "uniform":
        per_frame = valid.sum(dim=2, keepdim=True).clamp(min=1)
        weights = torch.ones(ranges.shape, dtype=torch.float32, device=ranges.device) / per_frame
    else:
        raise ValueError(f"Unknown weighting {weighting!r}")
    return torch.where(valid, weights, torch.zeros_like(weights)).detach()


def teacher_occupancy(teacher_out: TransducerLossOutput, blank_id: int, weighting: str) -> Optional[torch.Tensor]:
    """The teacher's node occupancies that ``weighting`` asks for (None for "uniform").

    "pruned_occupancy" uses the teacher's logits on its own pruning bounds (its forward
    pass computed them), whatever nodes the loss is evaluated on.
    """
    if weighting == "occupancy":
        return node_occupancy(teacher_out.px_grad, teacher_out.py_grad)
    if weighting == "pruned_occupancy":
        return pruned_lattice_occupancy(
            teacher_out.logits, teacher_out.y_padded, teacher_out.ranges, teacher_out.boundary, blank_id
        )
    return None


def node_labels(y_padded: torch.Tensor, y_lens: torch.Tensor, ranges: torch.Tensor, blank_id: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The correct next label at each kept node, and whether there is one.

    Args:
      y_padded:
        Labels padded with blank, shape (B, U).
      y_lens:
        Label counts, shape (B,).
      ranges:
        Kept label positions, shape (B, T, R).
      blank_id:
        Stand-in label where none exists (u = U_b).
    Returns:
      ``(labels (B, T, R) int64, has_label (B, T, R) bool)``.
    """
    B, T, R = ranges.shape
    padded = F.pad(y_padded, (0, 1), value=blank_id)  # (B, U + 1): position U_b has no label
    labels = torch.gather(padded[:, None, :].expand(B, T, padded.size(1)), 2, ranges)
    has_label = ranges < y_lens[:, None, None]
    return labels, has_label


def collapsed_log_probs(log_probs: torch.Tensor, labels: torch.Tensor, has_label: torch.Tensor, blank_id: int) -> torch.Tensor:
    """Log-probabilities of {correct next label, blank, rest} (Panchapagesan et al., 2021).

    Args:
      log_probs:
        Log-softmax over the vocabulary, shape (B, T, R, V).
      labels / has_label:
        From :func:`node_labels`, shape (B, T, R); where there is no next label its class
        has probability 0 and "rest" is everything but blank.
      blank_id:
        The blank id.
    Returns:
      Tensor of shape (B, T, R, 3).
    """
    neg_inf = torch.finfo(log_probs.dtype).min
    lp_label = torch.gather(log_probs, 3, labels.unsqueeze(3)).squeeze(3)
    lp_label = torch.where(has_label, lp_label, torch.full_like(lp_label, neg_inf))
    lp_blank = log_probs[..., blank_id]
    excluded = F.one_hot(labels, log_probs.size(3)).bool() & has_label.unsqueeze(3)
    excluded[..., blank_id] = True
    lp_rest = torch.logsumexp(log_probs.masked_fill(excluded, neg_inf), dim=3)
    return torch.stack([lp_label, lp_blank, lp_rest], dim=3)


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision logits (autocast) are promoted: softmax over V needs float32."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def kl_per_node(
    teacher_logits: torch.Tensor,
    student_logits: torch.Tensor,
    labels: Optional[torch.Tensor],
    has_label: Optional[torch.Tensor],
    blank_id: int,
    temperature: float,
    distribution: str,
) -> torch.Tensor:
    """KL(teacher || student) at every node, both softened by ``temperature``.

    Args:
      teacher_logits / student_logits:
        Joiner outputs on the same nodes, shape (B, T, R, V) (or any shape (..., V) with the
        full distribution: :mod:`distill.losses.ctc_kd` passes CTC outputs (B, T, V)).
      labels / has_label:
        From :func:`node_labels`; only the collapsed distribution uses them (None otherwise).
      blank_id:
        The blank id.
      temperature:
        tau.
      distribution:
        "full" or "collapsed".
    Returns:
      Tensor of the logits' shape without V, in float32 (float64 for float64 inputs).
    """
    lp_t = torch.log_softmax(at_least_float32(teacher_logits) / temperature, dim=-1)
    lp_s = torch.log_softmax(at_least_float32(student_logits) / temperature, dim=-1)
    if distribution == "collapsed":
        if labels is None or has_label is None:
            raise ValueError("the collapsed distribution needs the node labels")
        lp_t = collapsed_log_probs(lp_t, labels, has_label, blank_id)
        lp_s = collapsed_log_probs(lp_s, labels, has_label, blank_id)
    elif distribution != "full":
        raise ValueError(f"Unknown distribution {distribution!r}")
    p_t = lp_t.exp()
    # Classes the teacher gives probability 0 contribute 0 (and no NaN from 0 * -inf).
    terms = torch.where(p_t > 0, p_t * (lp_t - lp_s), torch.zeros_like(p_t))
    return terms.sum(dim=-1)


def join_on_ranges(model: Transducer, out: TransducerLossOutput, ranges: torch.Tensor) -> torch.Tensor:
    """``model``'s joiner output on the lattice nodes ``ranges``, shape (B, T, R, V).

    ``out`` is ``model``'s forward output (its encoder and predictor outputs are reused).
    """
    am, lm = k2.do_rnnt_pruning(
        am=model.joiner.encoder_proj(out.encoder_out), lm=model.joiner.decoder_proj(out.decoder_out), ranges=ranges
    )
    return model.joiner(am, lm, project_input=False)


def lattice_kd(
    teacher_logits: torch.Tensor,
    teacher_out: TransducerLossOutput,
    student: Transducer,
    student_out: TransducerLossOutput,
    ranges: torch.Tensor,
    config: KdConfig,
    student_logits: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """The distillation loss on the lattice nodes ``ranges``.

    Args:
      teacher_logits:
        The teacher's joiner output on ``ranges``, shape (B, T, R, V) (no gradient).
      teacher_out:
        ``teacher(x, x_lens, y, loss_config)``: occupancies, boundary and labels.
      student:
        The student (its joiner is evaluated on ``ranges`` unless ``student_logits``).
      student_out:
        ``student(x, x_lens, y, loss_config)`` on the same batch.
      ranges:
        Label positions per frame, shape (B, T, R).
      config:
        Temperature, weighting and distribution.
      student_logits:
        The student's joiner output on ``ranges`` when already computed.
    Returns:
      A scalar: the weighted KL summed over nodes and utterances.
    """
    if not torch.equal(teacher_out.encoder_out_lens, student_out.encoder_out_lens):
        raise ValueError("Teacher and student must have the same frame rate (subsampling by 4)")
    if student_logits is None:
        student_logits = join_on_ranges(student, student_out, ranges)
    boundary = teacher_out.boundary
    gamma = teacher_occupancy(teacher_out, student.blank_id, config.weighting)
    weights = node_weights(gamma, ranges, boundary, config.weighting)
    labels, has_label = node_labels(teacher_out.y_padded, boundary[:, 2], ranges, student.blank_id)
    kl = kl_per_node(
        teacher_logits.detach(), student_logits, labels, has_label, student.blank_id, config.temperature, config.distribution
    )
    return (weights * kl).sum() * config.temperature**2


def pruned_lattice_kd(
    teacher_out: TransducerLossOutput, student: Transducer, student_out: TransducerLossOutput, config: KdConfig
) -> torch.Tensor:
    """The distillation loss on the teacher's pruned lattice (the default).

    The teacher's logits on its own prune ranges come from its forward pass for free; so do
    the student's when it was run on the teacher's bounds (``kd.bounds: teacher``).
    """
    shared = student_out.ranges is teacher_out.ranges or torch.equal(student_out.ranges, teacher_out.ranges)
    return lattice_kd(
        teacher_out.logits, teacher_out, student, student_out, teacher_out.ranges, config,
        student_logits=student_out.logits if shared else None,
    )


def full_lattice_ranges(num_utts: int, num_frames: int, max_labels: int, device: torch.device) -> torch.Tensor:
    """Ranges that keep every label position: shape (B, T, U + 1), ``ranges[b, t, u] = u``."""
    positions = torch.arange(max_labels + 1, device=device)
    return positions[None, None, :].expand(num_utts, num_frames, max_labels + 1).contiguous()


def full_lattice_kd(
    teacher: Transducer,
    teacher_out: TransducerLossOutput,
    student: Transducer,
    student_out: TransducerLossOutput,
    config: KdConfig,
) -> torch.Tensor:
    """The same loss over the full T x (U + 1) lattice (the reference, and the benchmark's baseline).

    Args:
      teacher:
        The teacher model (its joiner is evaluated on every node).
      teacher_out / student / student_out / config:
        As for :func:`pruned_lattice_kd`.
    """
    B, T, _ = teacher_out.encoder_out.shape
    ranges = full_lattice_ranges(B, T, teacher_out.y_padded.size(1), teacher_out.encoder_out.device)
    with torch.no_grad():
        teacher_logits = join_on_ranges(teacher, teacher_out, ranges)
    return lattice_kd(teacher_logits, teacher_out, student, student_out, ranges, config)


def nbest_targets(
    teacher: Transducer, teacher_out: TransducerLossOutput, nbest: int, beam: int
) -> Tuple[List[List[List[int]]], List[List[float]]]:
    """The teacher's ``nbest`` best hypotheses per utterance and their posteriors in the n-best.

    Modified beam search (at most one symbol per frame, so a hypothesis never has more
    labels than frames) on the teacher's encoder output; empty hypotheses are dropped (a
    transducer loss needs a label); the posteriors are the softmax of the kept hypotheses'
    log-probabilities.

    Returns:
      ``(hyps, weights)``: per utterance, up to ``nbest`` token-id lists, best first, and
      their weights (summing to 1; an utterance whose hypotheses were all empty has none).
    """
    with torch.no_grad():
        beams = modified_beam_search_nbest(teacher, teacher_out.encoder_out, teacher_out.encoder_out_lens, beam)
    hyps, weights = [], []
    for beam_hyps in beams:
        kept = [(tokens, score) for tokens, score in beam_hyps if tokens][:nbest]
        scores = torch.tensor([score for _, score in kept], dtype=torch.float64)
        hyps.append([tokens for tokens, _ in kept])
        weights.append(torch.softmax(scores, 0).tolist() if kept else [])
    return hyps, weights


def nbest_kd(
    student: Transducer,
    student_out: TransducerLossOutput,
    hyps: List[List[List[int]]],
    weights: List[List[float]],
    loss_config: LossConfig,
    batch_idx_train: int,
) -> torch.Tensor:
    """Sequence-level distillation: the student's transducer loss on the teacher's hypotheses.

    For the k-th hypothesis of every utterance (k < the most any utterance has), the simple
    and pruned losses of the student's encoder output against it, per utterance, with the
    warm-up scales of :meth:`LossConfig.scales`, times the hypothesis's weight; summed.
    Utterances without a k-th hypothesis take their first one with weight 0 (it keeps the
    batch whole).

    Returns:
      A scalar tensor.
    """
    device = student_out.encoder_out.device
    keep = [b for b, h in enumerate(hyps) if h]
    if not keep:
        return student_out.encoder_out.new_zeros(())
    index = torch.tensor(keep, dtype=torch.int64, device=device)
    encoder_out = student_out.encoder_out.index_select(0, index)
    encoder_out_lens = student_out.encoder_out_lens.index_select(0, index)
    simple_scale, pruned_scale = loss_config.scales(batch_idx_train)
    no_ctc = dataclasses.replace(loss_config, ctc_scale=0.0, ctc_warm_step=0)
    total = encoder_out.new_zeros((), dtype=torch.float32)
    for k in range(max(len(hyps[b]) for b in keep)):
        targets = [hyps[b][k] if k < len(hyps[b]) else hyps[b][0] for b in keep]
        w = torch.tensor([weights[b][k] if k < len(hyps[b]) else 0.0 for b in keep], device=device)
        out = student.transducer_losses(encoder_out, encoder_out_lens, k2.RaggedTensor(targets).to(device), no_ctc, reduction="none")
        total = total + (w * (simple_scale * out.simple_loss + pruned_scale * out.pruned_loss)).sum()
    return total
