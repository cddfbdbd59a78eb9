"""distill/train/data.py: which training cuts are kept."""
from __future__ import annotations

from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut

from distill.train.config import DataConfig
from distill.train.data import original_cuts


def test_original_cuts_leave_out_the_speed_perturbed_copies():
    # An id that merely contains "_sp" (a speaker named so) is an original cut.
    cuts = CutSet.from_cuts([dummy_cut(0, duration=2.0), dummy_cut(1, duration=2.0).with_id("spk_sp3-utt")])
    with_copies = (cuts + cuts.perturb_speed(0.9) + cuts.perturb_speed(1.1)).to_eager()
    assert len(with_copies) == 6
    kept = original_cuts(with_copies)
    assert sorted(kept.ids) == sorted(cuts.ids)
    assert DataConfig().speed_perturbed  # the default trains on every copy
