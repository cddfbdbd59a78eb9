"""local/decode.py: greedy decoding of cut sets with epoch averaging, and WER scoring."""
from __future__ import annotations

import re
import subprocess
import sys

from distill.decode.scoring import word_errors

from tests.conftest import REPO_ROOT


def test_word_errors_by_hand():
    stats = word_errors([("A B C D", "A X C"), ("E F", "E F G")])
    # sub B->X, del D; ins G: 3 errors over 6 reference words.
    assert (stats.substitutions, stats.deletions, stats.insertions, stats.ref_words) == (1, 1, 1, 6)
    assert abs(stats.wer - 50.0) < 1e-9
    assert word_errors([("A B", "A B")]).wer == 0.0


def test_decode_cli_writes_recogs_and_wer(tiny_teacher_exp, tiny_data_dir):
    cuts = tiny_data_dir / "fbank" / "librispeech_cuts_test-clean.jsonl.gz"
    cmd = [sys.executable, str(REPO_ROOT / "local" / "decode.py"), "--exp-dir", str(tiny_teacher_exp),
           "--epoch", "0", "--avg", "2", "--lang-dir", str(tiny_data_dir / "lang_bpe_100"), "--cuts", str(cuts)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    recogs = (tiny_teacher_exp / "greedy" / "recogs-test-clean-epoch-4-avg-2.txt").read_text().splitlines()
    wer = (tiny_teacher_exp / "greedy" / "wer-test-clean-epoch-4-avg-2.txt").read_text()
    n_cuts = sum(1 for _ in __import__("lhotse").CutSet.from_file(cuts))
    assert len(recogs) == 2 * n_cuts
    assert all(re.match(r"^\S+:\t(ref|hyp)=", line) for line in recogs)
    assert re.match(r"WER \d+\.\d+% \[\d+ / \d+", wer)
