"""local/decode.py: greedy decoding of cut sets with epoch averaging, and WER scoring."""
from __future__ import annotations

import re
import subprocess
import sys

from distill.data.manifests import load_cuts
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
           "--epoch", "0", "--avg", "2", "--lang-dir", str(tiny_data_dir / "lang_bpe_100"), "--cuts", str(cuts),
           "--method", "greedy_search", "modified_beam_search", "fast_beam_search", "fast_beam_search_nbest_LG"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    out_dir = tiny_teacher_exp / "greedy_search"
    recogs = (out_dir / "recogs-test-clean-greedy_search-epoch-4-avg-2.txt").read_text().splitlines()
    wer = (out_dir / "wer-test-clean-greedy_search-epoch-4-avg-2.txt").read_text()
    assert (out_dir / "errs-test-clean-greedy_search-epoch-4-avg-2.txt").is_file()
    n_cuts = sum(1 for _ in __import__("lhotse").CutSet.from_file(cuts))
    assert len(recogs) == 2 * n_cuts
    assert all(re.match(r"^\S+:\t(ref|hyp)=", line) for line in recogs)
    assert re.match(r"WER \d+\.\d+% \[\d+ / \d+.*CER \d+\.\d+%, token F1 [\d.]+, RTF [\d.]+", wer), wer

    # Every method wrote its files; the results table collects them.
    for method in ("modified_beam_search", "fast_beam_search", "fast_beam_search_nbest_LG"):
        assert len(list((tiny_teacher_exp / method).glob("errs-test-clean-*-epoch-4-avg-2.txt"))) == 1, method
    table = tiny_teacher_exp / "results.md"
    cmd = [sys.executable, str(REPO_ROOT / "local" / "results_table.py"), "--exp-dirs", str(tiny_teacher_exp), "--out", str(table)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in table.read_text().splitlines() if line.startswith(f"| {tiny_teacher_exp.name} |")]
    assert len(rows) == 4 and any("fast_beam_search_nbest_LG" in row for row in rows)

    # A method decoded again with other options: both rows stay, each labeled with its options.
    cmd = [sys.executable, str(REPO_ROOT / "local" / "decode.py"), "--exp-dir", str(tiny_teacher_exp),
           "--epoch", "0", "--avg", "2", "--lang-dir", str(tiny_data_dir / "lang_bpe_100"), "--cuts", str(cuts),
           "--method", "fast_beam_search", "--beam", "8"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    cmd = [sys.executable, str(REPO_ROOT / "local" / "results_table.py"), "--exp-dirs", str(tiny_teacher_exp), "--out", str(table)]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=60).returncode == 0
    rows = [line for line in table.read_text().splitlines() if line.startswith(f"| {tiny_teacher_exp.name} |")]
    labels = {row.split("|")[3].strip() for row in rows}
    assert {"fast_beam_search_beam_4_max_contexts_4_max_states_8 (epoch 4, avg 2)",
            "fast_beam_search_beam_8_max_contexts_4_max_states_8 (epoch 4, avg 2)",
            "greedy_search (epoch 4, avg 2)"} <= labels, labels
    assert len(rows) == 5


def test_a_cut_too_short_for_the_encoder_is_scored_empty_not_fatal(tiny_teacher_exp, tiny_data_dir, tmp_path):
    """A 0.05 s utterance in a decoded part: the others are decoded, it is scored as an empty
    hypothesis (its words count as deletions) and named in the log."""
    from lhotse import CutSet

    cuts = load_cuts(tiny_data_dir / "fbank" / "librispeech_cuts_test-clean.jsonl.gz").to_eager()
    first = cuts[0]
    short = first.truncate(duration=0.05)
    short.id = "short-cut"
    mixed = CutSet.from_cuts([short] + list(cuts)[1:3])
    path = tmp_path / "librispeech_cuts_short.jsonl.gz"
    mixed.to_file(path)
    exp = tmp_path / "exp"
    __import__("shutil").copytree(tiny_teacher_exp, exp)
    cmd = [sys.executable, str(REPO_ROOT / "local" / "decode.py"), "--exp-dir", str(exp), "--epoch", "0",
           "--avg", "1", "--lang-dir", str(tiny_data_dir / "lang_bpe_100"), "--cuts", str(path),
           "--method", "greedy_search"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 cut(s) are shorter than the 7 frames" in out.stderr and "short-cut" in out.stderr
    recogs = next((exp / "greedy_search").glob("recogs-short-*.txt")).read_text()
    assert "short-cut:\thyp=[]" in recogs or "short-cut:\thyp=" in recogs
    assert recogs.count("hyp=") == 3


def test_a_lang_dir_of_another_corpus_is_refused(tiny_teacher_exp, tiny_data_dir, tmp_path):
    """Same number of tokens, other tokens: decoding refuses it, naming both lang dirs."""
    from distill.lang.tokenizer import LANG_ID_NAME, PHONES_NAME, lang_identity

    assert (tiny_teacher_exp / LANG_ID_NAME).read_text().split()[0] == lang_identity(tiny_data_dir / "lang_bpe_100")
    other = tmp_path / "lang_other"
    other.mkdir()
    (other / PHONES_NAME).write_text("<blk> 0\n" + "".join(f"p{i} {i}\n" for i in range(1, 100)))
    cuts = tiny_data_dir / "fbank" / "librispeech_cuts_test-clean.jsonl.gz"
    for script, extra in (("decode.py", ["--epoch", "0", "--cuts", str(cuts)]),
                          ("transcribe.py", [str(next((tiny_data_dir.parent).rglob("*.flac"), cuts))])):
        out = subprocess.run([sys.executable, str(REPO_ROOT / "local" / script), "--exp-dir", str(tiny_teacher_exp),
                              "--lang-dir", str(other), *extra], capture_output=True, text=True, timeout=300)
        assert out.returncode == 1, (script, out.stderr[-2000:])
        assert f"{other} is not the lang dir {tiny_teacher_exp} was trained with" in out.stderr, script
        assert str(tiny_data_dir / "lang_bpe_100") in out.stderr
