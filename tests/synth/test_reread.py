"""The re-read diagnostic: a part's sentences synthesized again by chosen voices."""
from __future__ import annotations

import os

import pytest
import soundfile
from lhotse import load_manifest

from distill.synth.reread import parse_voice, reread_cuts


def test_parse_voice_accepts_labels_and_names_the_fix():
    spk = parse_voice("festival:ked_diphone,250,1.08", 9000)
    assert (spk.voice.engine, spk.voice.name, spk.pitch_cents, spk.tempo) == ("festival", "ked_diphone", 250, 1.08)
    assert parse_voice("espeak:en-us", 9001).pitch_cents == 0
    for bad in ("en-us", "sapi:david", "flite:", "flite:awb,250"):
        with pytest.raises(ValueError, match="engine:name"):
            parse_voice(bad, 9000)


def test_reread_reads_the_same_sentences_with_each_voice(tiny_data_dir, tmp_path):
    dev = load_manifest(tiny_data_dir / "fbank" / "librispeech_cuts_dev-clean.jsonl.gz")
    texts = [c.supervisions[0].text for c in dev][::3]
    out = reread_cuts(dev, ["flite:kal16", "piper:joe,200,1.05"], tmp_path / "reread", every=3)
    cuts = load_manifest(out)
    assert len(cuts) == 2 * len(texts)
    assert [c.supervisions[0].text for c in cuts] == texts + texts
    assert {c.supervisions[0].speaker for c in cuts} == {"9000", "9001"}
    for cut in cuts:
        assert cut.has_features and cut.load_features().shape[1] == 80
        assert soundfile.info(cut.recording.sources[0].source).samplerate == 16000
    # Rerunning reuses the audio already written.
    flac = cuts[0].recording.sources[0].source
    mtime = os.path.getmtime(flac)
    reread_cuts(dev, ["flite:kal16", "piper:joe,200,1.05"], tmp_path / "reread", every=3)
    assert os.path.getmtime(flac) == mtime


def test_piper_voice_reads_aloud(tmp_path):
    """The neural voice that a package ships: loaded once, speech of a plausible length."""
    from distill.synth.render import piper_read, piper_voice

    wav = tmp_path / "joe.wav"
    piper_read("joe", "the eagle makes her nest on high", wav)
    info = soundfile.info(str(wav))
    assert 1.0 < info.duration < 5.0
    assert piper_voice("joe") is piper_voice("joe")
    with pytest.raises(ValueError, match="Unknown piper voice"):
        piper_voice("nobody")


def test_cli_names_a_missing_manifest_and_a_bad_voice(tiny_data_dir, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    script = str(REPO_ROOT / "local" / "demo_reread.py")
    missing = subprocess.run([sys.executable, script, "--cuts", str(tmp_path / "nope.jsonl.gz"), "--out-dir",
                              str(tmp_path / "o"), "--voices", "flite:awb"], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.jsonl.gz: no such file" in missing.stderr
    dev = str(tiny_data_dir / "fbank" / "librispeech_cuts_dev-clean.jsonl.gz")
    bad = subprocess.run([sys.executable, script, "--cuts", dev, "--out-dir", str(tmp_path / "o"),
                          "--voices", "flite"], capture_output=True, text=True)
    assert bad.returncode == 2 and "engine:name" in bad.stderr
    assert not (tmp_path / "o" / "cuts_reread.jsonl.gz").exists()
