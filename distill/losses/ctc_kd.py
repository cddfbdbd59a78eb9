"""Frame-level distillation through the CTC heads (``kd.ctc_scale``).

The lattice loss (:mod:`distill.losses.lattice_kd`) reaches the student's encoder only through
its joiner. Both the teacher and the students carry an auxiliary CTC head on their encoder
output (``model.aux_ctc``), a per-frame distribution over the vocabulary: matching the
student's to the teacher's at every frame is the frame-level distillation of CTC models
(Takashima et al., 2018), and supervises the student's encoder directly with the teacher's
alignment (both encoders subsample by 4, so their frames line up).

The term is KL(teacher softened by tau || student softened by tau) at every valid frame
(t < T_b), times tau^2, summed over frames and utterances; the trainer divides every loss by
the number of frames, so it is normalized per frame, like the lattice term.
"""
from __future__ import annotations

from typing import Union

import torch

from distill.losses.lattice_kd import EncoderOutput, kl_per_node
from distill.models.conformer import make_pad_mask
from distill.models.transducer import Transducer, TransducerLossOutput


def require_ctc_head(model: Transducer, role: str) -> None:
    """Refuse a model without a CTC head: ``kd.ctc_scale`` > 0 needs one on both sides."""
    if model.ctc_output is None:
        raise ValueError(
            f"kd.ctc_scale > 0 distils through the CTC heads, but the {role} has none: "
            f"train the {role} with model.aux_ctc: true, or set kd.ctc_scale=0"
        )


def ctc_logits(model: Transducer, encoder_out: torch.Tensor) -> torch.Tensor:
    """``model``'s CTC head on ``encoder_out`` (N, T, C): (N, T, V) in float32, as its CTC loss."""
    with torch.autocast(device_type=encoder_out.device.type, enabled=False):
        return model.ctc_output(encoder_out.float())


def ctc_kd(
    teacher: Transducer,
    teacher_out: Union[TransducerLossOutput, EncoderOutput],
    student: Transducer,
    student_out: TransducerLossOutput,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Frame-level KL between the teacher's and the student's CTC posteriors.

    Args:
      teacher / teacher_out:
        The teacher and its forward output on the batch, or its encoder's alone (its encoder
        output, delayed by ``kd.teacher_delay`` when set, is what it distils from; no
        gradient reaches it).
      student / student_out:
        The student and its forward output on the same batch.
      temperature:
        tau.
    Returns:
      A scalar: the KL summed over valid frames and utterances, times tau^2.
    """
    require_ctc_head(teacher, "teacher")
    require_ctc_head(student, "student")
    if not torch.equal(teacher_out.encoder_out_lens, student_out.encoder_out_lens):
        raise ValueError("Teacher and student must have the same frame rate (subsampling by 4)")
    with torch.no_grad():
        teacher_logits = ctc_logits(teacher, teacher_out.encoder_out)
    student_logits = ctc_logits(student, student_out.encoder_out)
    kl = kl_per_node(teacher_logits, student_logits, None, None, student.blank_id, temperature, "full")  # (N, T)
    padding = make_pad_mask(student_out.encoder_out_lens, kl.size(1))
    return kl.masked_fill(padding, 0.0).sum() * temperature**2
