"""When a model emits its tokens, against a reference model: the emission-timing offset.

A causal (streaming) student has to hear a sound before it can name it, so it emits later
than a full-context teacher; frame-level distillation then asks it to emit where the teacher
does (which ``kd.teacher_delay`` corrects). To measure the lag, both models are decoded
greedily with the frame of each emission; their token sequences are aligned (the longest
matching blocks, :class:`difflib.SequenceMatcher`), and for every token both emitted the
offset is the model's frame minus the reference's (positive: later).
"""
from __future__ import annotations

import difflib
from typing import List, Sequence, Tuple

#: A hypothesis with timing: ``(token id, encoder frame)`` pairs, as
#: :func:`distill.decode.greedy.greedy_search_timed` returns.
TimedHyp = Sequence[Tuple[int, int]]


def emission_offsets(reference: TimedHyp, hyp: TimedHyp) -> List[int]:
    """Frame offsets (``hyp`` minus ``reference``) of the tokens the two hypotheses share.

    Args:
      reference:
        The reference model's timed hypothesis of an utterance.
      hyp:
        The other model's, of the same utterance.
    Returns:
      One offset per matched token, in order.
    """
    ref_tokens = [token for token, _ in reference]
    hyp_tokens = [token for token, _ in hyp]
    matcher = difflib.SequenceMatcher(a=ref_tokens, b=hyp_tokens, autojunk=False)
    offsets = []
    for a, b, size in matcher.get_matching_blocks():
        offsets.extend(hyp[b + i][1] - reference[a + i][1] for i in range(size))
    return offsets
