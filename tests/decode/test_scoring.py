"""Scoring: WER, CER, token precision/recall/F1, icefall's recogs/errs files, results table."""
from __future__ import annotations

import pytest

from distill.decode.scoring import (
    ErrorStats,
    ResultRow,
    align_tokens,
    char_errors,
    error_stats_text,
    mean_over_seeds,
    real_time_factor,
    results_table,
    save_results,
    side_by_side_table,
    speaker_error_rates_text,
    to_chars,
    word_errors,
)

# Two utterances, scored by hand below:
#   u2: A B C D -> A X C   : A, C hits; B->X sub; D deleted.
#   u1: E F     -> E F G   : E, F hits; G inserted.
RESULTS = [("u2", "A B C D", "A X C"), ("u1", "E F", "E F G")]


def close(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


def test_wer_precision_recall_f1_by_hand():
    one = word_errors([("A B C D", "A X C")])
    assert (one.hits, one.substitutions, one.deletions, one.insertions, one.ref_words) == (2, 1, 1, 0, 4)
    assert close(one.wer, 50.0)
    assert close(one.precision, 2 / 3)  # 2 / (2 + 1 sub + 0 ins)
    assert close(one.recall, 2 / 4)  # 2 / (2 + 1 sub + 1 del)
    assert close(one.f1, 4 / 7)  # 2 * (2/3) * (1/2) / (2/3 + 1/2)

    both = word_errors([(r, h) for _, r, h in RESULTS])
    assert (both.hits, both.substitutions, both.deletions, both.insertions, both.ref_words) == (4, 1, 1, 1, 6)
    assert close(both.wer, 50.0)
    assert close(both.precision, 4 / 6) and close(both.recall, 4 / 6) and close(both.f1, 4 / 6)
    assert str(both) == "WER 50.00% [3 / 6, 1 ins, 1 del, 1 sub]"


def test_empty_hypothesis_and_empty_reference():
    no_hyp = word_errors([("A B", "")])
    assert (no_hyp.deletions, no_hyp.hits, no_hyp.hyp_words) == (2, 0, 0)
    assert close(no_hyp.wer, 100.0)
    # Precision is 0/0: nothing false was said, so 1.0; nothing found, so recall and F1 are 0.
    assert (no_hyp.precision, no_hyp.recall, no_hyp.f1) == (1.0, 0.0, 0.0)

    no_ref = word_errors([("", "A")])
    assert (no_ref.insertions, no_ref.ref_words) == (1, 0)
    assert close(no_ref.wer, 100.0)  # an empty reference counts as one word
    assert (no_ref.precision, no_ref.recall, no_ref.f1) == (0.0, 1.0, 0.0)

    nothing = word_errors([("", "")])
    assert (nothing.wer, nothing.precision, nothing.recall, nothing.f1) == (0.0, 1.0, 1.0, 1.0)
    assert char_errors([("", "")]).wer == 0.0
    assert close(char_errors([("AB", "")]).wer, 100.0)


def test_cer_removes_spaces_by_default():
    # One wrong letter out of 4 (spaces removed) or 5 (the space counts).
    assert close(char_errors([("AB CD", "AB CE")]).wer, 25.0)
    assert close(char_errors([("AB CD", "AB CE")], keep_spaces=True).wer, 20.0)
    # Only the word boundary moved: 2 word substitutions, no character error without spaces.
    pair = [("A BC", "AB C")]
    assert close(word_errors(pair).wer, 100.0)
    assert char_errors(pair).wer == 0.0
    assert close(char_errors(pair, keep_spaces=True).wer, 50.0)
    assert to_chars("  A  BC ") == ["A", "B", "C"]
    assert to_chars("  A  BC ", keep_spaces=True) == ["A", " ", "B", "C"]
    stats = char_errors([("ABCD", "ABXDE")])  # 3 hits, 1 sub, 1 ins
    assert (stats.hits, stats.substitutions, stats.insertions, stats.ref_words) == (3, 1, 1, 4)
    assert close(stats.precision, 3 / 5) and close(stats.recall, 3 / 4)


def test_a_literal_star_is_a_word_not_a_gap():
    stats = word_errors([("A * B", "A B")])
    assert (stats.deletions, stats.hits, stats.insertions) == (1, 2, 0)
    assert align_tokens(["A", "B"], ["A"]) == [("A", "A"), ("B", "*")]


def test_error_stats_add_up():
    a, b = word_errors([RESULTS[0][1:]]), word_errors([RESULTS[1][1:]])
    assert a + b == word_errors([r[1:] for r in RESULTS])
    assert ErrorStats() + a == a


def test_recogs_and_errs_files(tmp_path):
    stats = save_results(tmp_path / "greedy", "test-clean-epoch-4-avg-2", RESULTS)
    assert stats == word_errors([r[1:] for r in RESULTS])
    recogs = (tmp_path / "greedy" / "recogs-test-clean-epoch-4-avg-2.txt").read_text()
    assert recogs == (
        "u1:\tref=['E', 'F']\n"
        "u1:\thyp=['E', 'F', 'G']\n"
        "u2:\tref=['A', 'B', 'C', 'D']\n"
        "u2:\thyp=['A', 'X', 'C']\n"
    )
    errs = (tmp_path / "greedy" / "errs-test-clean-epoch-4-avg-2.txt").read_text()
    assert errs == (
        "%WER = 50.00\n"
        "Errors: 1 insertions, 1 deletions, 1 substitutions, over 6 reference words (4 correct)\n"
        "Search below for sections starting with PER-UTT DETAILS:, SUBSTITUTIONS:, DELETIONS:, "
        "INSERTIONS:, PER-WORD STATS:\n"
        "\n"
        "PER-UTT DETAILS: corr or (ref->hyp)  \n"
        "u1:\tE F (*->G)\n"
        "u2:\tA (B->X) C (D->*)\n"
        "\n"
        "SUBSTITUTIONS: count ref -> hyp\n"
        "1   B -> X\n"
        "\n"
        "DELETIONS: count ref\n"
        "1   D\n"
        "\n"
        "INSERTIONS: count hyp\n"
        "1   G\n"
        "\n"
        "PER-WORD STATS: word  corr tot_errs count_in_ref count_in_hyp\n"
        "B   0 1 1 0\n"
        "D   0 1 1 0\n"
        "G   0 1 0 1\n"
        "X   0 1 0 1\n"
        "A   1 0 1 1\n"
        "C   1 0 1 1\n"
        "E   1 0 1 1\n"
        "F   1 0 1 1\n"
    )
    # Written through a temporary file that was renamed: nothing else is left behind.
    assert sorted(p.name for p in (tmp_path / "greedy").iterdir()) == [
        "errs-test-clean-epoch-4-avg-2.txt", "recogs-test-clean-epoch-4-avg-2.txt"]


def test_errs_merges_adjacent_errors_and_counts_frequencies():
    text, stats = error_stats_text([
        ("a", "A B C", "X Y C"), ("b", "A B C", "C"), ("c", "A B", "A B"), ("d", "B", "Y")])
    details = text.split("PER-UTT DETAILS: corr or (ref->hyp)  \n")[1].split("\n\n")[0].splitlines()
    assert details == ["a:\t(A B->X Y) C", "b:\t(A B->*) C", "c:\tA B", "d:\t(B->Y)"]
    subs = text.split("SUBSTITUTIONS: count ref -> hyp\n")[1].split("\n\n")[0].splitlines()
    assert subs == ["2   B -> Y", "1   A -> X"]  # most frequent first
    assert (stats.substitutions, stats.deletions, stats.hits, stats.ref_words) == (3, 2, 4, 9)

    cer_text, cer = error_stats_text([("a", "AB CD", "AB CE")], char_level=True)
    assert cer_text.startswith("%CER = 25.00\n") and "over 4 reference characters (3 correct)" in cer_text
    assert "a:\tA B C (D->E)" in cer_text
    assert cer == char_errors([("AB CD", "AB CE")])


def test_results_table():
    rows = [
        ResultRow("teacher", 12_345_678, "greedy", wer=5.123, cer=2.5, f1=0.95, rtf=0.0412),
        ResultRow("student_rnn_kd", 2_200_000, "greedy", wer=9.0, cer=None, f1=0.9, rtf=None),
        ResultRow("tiny", 950, "greedy"),
    ]
    assert results_table(rows) == (
        "| model | params | method | WER (%) | CER (%) | F1 | RTF |\n"
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |\n"
        "| teacher | 12.35 M | greedy | 5.12 | 2.50 | 0.950 | 0.041 |\n"
        "| student_rnn_kd | 2.20 M | greedy | 9.00 | - | 0.900 | - |\n"
        "| tiny | 950 | greedy | - | - | - | - |\n"
    )


def test_side_by_side_table_has_a_column_per_part_and_matches_rows_by_model_and_method():
    tables = {
        "dev-clean": [ResultRow("teacher", 5_000_000, "greedy", wer=12.5), ResultRow("student", 800_000, "greedy", wer=20.0)],
        "dev-other": [ResultRow("student", 800_000, "greedy", wer=70.0), ResultRow("teacher", 5_000_000, "greedy", wer=55.25)],
        "test-clean": [ResultRow("teacher", 5_000_000, "greedy", wer=11.0), ResultRow("teacher", 5_000_000, "beam", wer=10.0)],
    }
    assert side_by_side_table(tables) == (
        "| model | params | method | dev-clean WER (%) | dev-other WER (%) | test-clean WER (%) |\n"
        "| --- | ---: | --- | ---: | ---: | ---: |\n"
        "| teacher | 5.00 M | greedy | 12.50 | 55.25 | 11.00 |\n"
        "| student | 800.0 k | greedy | 20.00 | 70.00 | - |\n"
        "| teacher | 5.00 M | beam | - | - | 10.00 |\n"
    )
    assert "dev-clean PER (%)" in side_by_side_table(tables, "PER")


def test_mean_over_seeds():
    rows = [
        ResultRow("teacher", 100, "greedy", wer=5.0, f1=0.9, rtf=0.1),
        ResultRow("student_rnn_kd_seed1", 20, "greedy", wer=10.0, f1=0.8, rtf=0.02),
        ResultRow("student_rnn_kd_seed2", 20, "greedy", wer=13.0, f1=0.7, rtf=None),
        ResultRow("student_rnn_kd_seed1", 20, "beam", wer=9.0),
        ResultRow("student_rnn_alone_seed1", 20, "greedy", wer=12.0),
        ResultRow("student_rnn_alone_seed7", 20, "greedy", wer=16.0),
        ResultRow("student_rnn_alone_seed7x", 20, "greedy", wer=1.0),
    ]
    means = mean_over_seeds(rows)
    assert [(m.model, m.method) for m in means] == [
        ("student_rnn_kd (mean of 2 seeds)", "greedy"),
        ("student_rnn_alone (mean of 2 seeds)", "greedy"),
    ]
    kd, alone = means
    assert close(kd.wer, 11.5) and close(kd.f1, 0.75) and kd.rtf is None and kd.cer is None
    assert kd.params == 20
    assert close(alone.wer, 14.0)
    assert mean_over_seeds(rows[:2]) == []


def test_real_time_factor():
    assert close(real_time_factor(3.0, 60.0), 0.05)
    assert real_time_factor(0.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="audio_seconds"):
        real_time_factor(1.0, 0.0)
    with pytest.raises(ValueError, match="decode_seconds"):
        real_time_factor(-1.0, 1.0)


def test_speaker_error_rates_worst_first():
    text = speaker_error_rates_text([
        ("84-121-0001", "A B", "A B"),
        ("84-121-0002", "C D", "C X"),
        ("1272-128-0000", "E F", "G"),
        ("2035_147960_000002", "H", "H"),
    ])
    assert text.splitlines() == [
        "1272\t1 utts\tWER 100.00% [2 / 2, 0 ins, 1 del, 1 sub]",
        "84\t2 utts\tWER 25.00% [1 / 4, 0 ins, 0 del, 1 sub]",
        "2035\t1 utts\tWER 0.00% [0 / 1, 0 ins, 0 del, 0 sub]",
        "all\t4 utts\tWER 42.86% [3 / 7, 0 ins, 1 del, 2 sub]",
    ]
