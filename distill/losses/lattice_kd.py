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

Options: uniform weights instead of occupancies (ablation: every kept valid node of a frame
gets ``1 / (number of valid kept nodes at that frame)``); the collapsed distributions of
Panchapagesan et al. (2021) over {correct next label, blank, rest} instead of the full
vocabulary; tau; and the weight of this term against the student's own pruned loss.

Padding frames (t >= T_b) and positions beyond an utterance's labels (u > U_b) get weight 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import k2
import torch
import torch.nn.functional as F

from distill.models.transducer import Transducer, TransducerLossOutput

WEIGHTINGS = ("occupancy", "uniform")
DISTRIBUTIONS = ("full", "collapsed")


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
      weighting: "occupancy" (the teacher's node posteriors) or "uniform" (ablation).
      distribution: "full" (whole vocabulary) or "collapsed" ({label, blank, rest}).
      during_ctc_warmup: distill during the student's CTC warm-up (``loss.ctc_warm_step``)
        too. Off by default: the distillation term supervises the transducer lattice, so it
        joins when the transducer losses do. From the first batch, on the TIMIT demo, it
        held the RNN student on the blank-only plateau (egs/timit/ASR/RESULTS.md).
    """

    teacher_exp_dir: str = ""
    teacher_epoch: int = 0
    teacher_avg: int = 1
    scale: float = 1.0
    temperature: float = 1.0
    weighting: str = "occupancy"
    distribution: str = "full"
    during_ctc_warmup: bool = False

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"kd.weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"kd.distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        if self.temperature <= 0:
            raise ValueError(f"kd.temperature must be positive, got {self.temperature}")

    @property
    def enabled(self) -> bool:
        return bool(self.teacher_exp_dir)


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


def node_weights(
    px_grad: torch.Tensor, py_grad: torch.Tensor, ranges: torch.Tensor, boundary: torch.Tensor, weighting: str
) -> torch.Tensor:
    """The weight of each kept node, shape (B, T, R) (see the module docstring)."""
    valid = valid_nodes(ranges, boundary)
    if weighting == "occupancy":
        gamma = node_occupancy(px_grad, py_grad).transpose(1, 2)  # (B, T, U + 1)
        weights = torch.gather(gamma, 2, ranges)
    elif weighting == "uniform":
        per_frame = valid.sum(dim=2, keepdim=True).clamp(min=1)
        weights = torch.ones_like(ranges, dtype=py_grad.dtype) / per_frame
    else:
        raise ValueError(f"Unknown weighting {weighting!r}")
    return torch.where(valid, weights, torch.zeros_like(weights)).detach()


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
    labels: torch.Tensor,
    has_label: torch.Tensor,
    blank_id: int,
    temperature: float,
    distribution: str,
) -> torch.Tensor:
    """KL(teacher || student) at every node, both softened by ``temperature``.

    Args:
      teacher_logits / student_logits:
        Joiner outputs on the same nodes, shape (B, T, R, V).
      labels / has_label:
        From :func:`node_labels` (used by the collapsed distribution).
      blank_id:
        The blank id.
      temperature:
        tau.
      distribution:
        "full" or "collapsed".
    Returns:
      Tensor of shape (B, T, R), in float32 (float64 for float64 inputs).
    """
    lp_t = torch.log_softmax(at_least_float32(teacher_logits) / temperature, dim=-1)
    lp_s = torch.log_softmax(at_least_float32(student_logits) / temperature, dim=-1)
    if distribution == "collapsed":
        lp_t = collapsed_log_probs(lp_t, labels, has_label, blank_id)
        lp_s = collapsed_log_probs(lp_s, labels, has_label, blank_id)
    elif distribution != "full":
        raise ValueError(f"Unknown distribution {distribution!r}")
    p_t = lp_t.exp()
    # Classes the teacher gives probability 0 contribute 0 (and no NaN from 0 * -inf).
    terms = torch.where(p_t > 0, p_t * (lp_t - lp_s), torch.zeros_like(p_t))
    return terms.sum(dim=-1)


def lattice_kd(
    teacher_logits: torch.Tensor,
    teacher_out: TransducerLossOutput,
    student: Transducer,
    student_out: TransducerLossOutput,
    ranges: torch.Tensor,
    config: KdConfig,
) -> torch.Tensor:
    """The distillation loss on the lattice nodes ``ranges``.

    Args:
      teacher_logits:
        The teacher's joiner output on ``ranges``, shape (B, T, R, V) (no gradient).
      teacher_out:
        ``teacher(x, x_lens, y, loss_config)``: occupancies, boundary and labels.
      student:
        The student (its joiner is evaluated on ``ranges``).
      student_out:
        ``student(x, x_lens, y, loss_config)`` on the same batch.
      ranges:
        Label positions per frame, shape (B, T, R).
      config:
        Temperature, weighting and distribution.
    Returns:
      A scalar: the weighted KL summed over nodes and utterances.
    """
    if not torch.equal(teacher_out.encoder_out_lens, student_out.encoder_out_lens):
        raise ValueError("Teacher and student must have the same frame rate (subsampling by 4)")
    am, lm = k2.do_rnnt_pruning(
        am=student.joiner.encoder_proj(student_out.encoder_out),
        lm=student.joiner.decoder_proj(student_out.decoder_out),
        ranges=ranges,
    )
    student_logits = student.joiner(am, lm, project_input=False)
    boundary = teacher_out.boundary
    weights = node_weights(teacher_out.px_grad, teacher_out.py_grad, ranges, boundary, config.weighting)
    labels, has_label = node_labels(teacher_out.y_padded, boundary[:, 2], ranges, student.blank_id)
    kl = kl_per_node(
        teacher_logits.detach(), student_logits, labels, has_label, student.blank_id, config.temperature, config.distribution
    )
    return (weights * kl).sum() * config.temperature**2


def pruned_lattice_kd(
    teacher_out: TransducerLossOutput, student: Transducer, student_out: TransducerLossOutput, config: KdConfig
) -> torch.Tensor:
    """The distillation loss on the teacher's pruned lattice (the default).

    The teacher's logits on its own prune ranges come from its forward pass for free.
    """
    return lattice_kd(teacher_out.logits, teacher_out, student, student_out, teacher_out.ranges, config)


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
        am, lm = k2.do_rnnt_pruning(
            am=teacher.joiner.encoder_proj(teacher_out.encoder_out),
            lm=teacher.joiner.decoder_proj(teacher_out.decoder_out),
            ranges=ranges,
        )
        teacher_logits = teacher.joiner(am, lm, project_input=False)
    return lattice_kd(teacher_logits, teacher_out, student, student_out, ranges, config)
