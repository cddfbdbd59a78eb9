"""Nothing stale is trusted: stages 1-3 redo themselves when what they read has changed
(done-markers carry a fingerprint of their inputs), and skip when it has not."""
from __future__ import annotations

import logging

from lhotse import load_manifest

from distill.data.corpora.librispeech import prepare_librispeech_manifests
from distill.data.features import compute_fbank
from distill.lang.prepare_lang import prepare_lang_bpe

PARTS = ["train-clean-100", "dev-clean"]


def run_stages_1_to_3(corpus, data):
    prepare_librispeech_manifests(corpus, PARTS, data / "manifests")
    compute_fbank(data / "manifests", "librispeech", PARTS, data / "fbank")
    prepare_lang_bpe(data / "manifests" / "librispeech_supervisions_train-clean-100.jsonl.gz", data / "lang", 100)


def test_changed_transcripts_redo_stages_1_to_3(corpus_copy, tmp_path, caplog):
    data = tmp_path / "data"
    run_stages_1_to_3(corpus_copy, data)
    words_before = (data / "lang" / "words.txt").read_text()
    with caplog.at_level(logging.INFO):
        run_stages_1_to_3(corpus_copy, data)  # nothing changed: every stage skips
    assert "redoing" not in caplog.text and "Features already in" in caplog.text
    caplog.clear()

    # A corrected corpus: a new word in a training transcript.
    trans = next((corpus_copy / "train-clean-100").rglob("*.trans.txt"))
    lines = trans.read_text().splitlines()
    utt_id, text = lines[0].split(maxsplit=1)
    lines[0] = f"{utt_id} {text} ZYZZYVA"
    trans.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.INFO):
        run_stages_1_to_3(corpus_copy, data)
    for stage in ("manifests", "fbank", "lang_bpe"):
        assert f"The inputs of stage '{stage}' changed" in caplog.text, stage
    sups = load_manifest(data / "manifests" / "librispeech_supervisions_train-clean-100.jsonl.gz")
    assert sups[utt_id].text.endswith("ZYZZYVA")
    assert "ZYZZYVA" in (data / "lang" / "words.txt").read_text() and "ZYZZYVA" not in words_before


def test_a_copied_data_dir_reads_its_own_features(corpus_copy, tmp_path):
    """Cut manifests name their feature archives relative to themselves: a copy of the data
    dir, read from anywhere, reads the copy's archives (and works after the original is gone)."""
    import shutil

    from distill.data.manifests import load_cuts

    data = tmp_path / "data"
    prepare_librispeech_manifests(corpus_copy, ["dev-clean"], data / "manifests")
    compute_fbank(data / "manifests", "librispeech", ["dev-clean"], data / "fbank")
    copy = tmp_path / "elsewhere" / "data"
    shutil.copytree(data, copy)
    shutil.rmtree(data)
    cuts = load_cuts(copy / "fbank" / "librispeech_cuts_dev-clean.jsonl.gz").to_eager()
    for cut in cuts:
        assert cut.features.storage_path.startswith(str(copy / "fbank"))
        assert cut.load_features().shape[1] == 80
