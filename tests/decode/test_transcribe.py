"""Transcribing sound files: the training front end, any sample rate, clear errors, the CLI."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from lhotse import CutSet
from lhotse.augmentation.resample import resample as sinc_resample

from distill.data.features import make_extractor
from distill.data.manifests import load_cuts
from distill.decode.decode_cuts import decode_cuts
from distill.decode.methods import METHODS, resolve_method
from distill.decode.transcribe import (
    TranscribeError,
    check_model_matches_lang,
    decode_features,
    file_features,
    load_averaged,
    load_lang,
    load_model_file,
    read_audio,
    transcribe_files,
)
from distill.models.config import ModelConfig
from distill.models.registry import build_transducer
from distill.train.checkpoint import save_checkpoint
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def whole_cuts(tiny_data_dir):
    """Two test-clean cuts, each covering a whole FLAC file."""
    cuts = load_cuts(tiny_data_dir / "fbank" / "librispeech_cuts_test-clean.jsonl.gz").to_eager()
    chosen = [c for c in cuts if c.start == 0 and abs(c.duration - c.recording.duration) < 1e-6][:2]
    assert len(chosen) == 2
    return chosen


@pytest.fixture(scope="module")
def teacher(tiny_teacher_exp):
    """The tiny model averaged over epochs 3 and 4, with its experiment config."""
    return load_averaged(tiny_teacher_exp, 0, 2)


@pytest.fixture(scope="module")
def tokenizer(tiny_data_dir):
    return load_lang(tiny_data_dir / "lang_bpe_100")


def flac_of(cut) -> Path:
    return Path(cut.recording.sources[0].source)


@pytest.fixture(scope="module")
def probe(teacher, tmp_path_factory):
    """An untrained model of the teacher's shape, seeded, saved as a checkpoint file.

    The tiny trained teacher still sits on the blank-only plateau (it transcribes everything
    as ""), so equal transcripts from it prove little; this model's output follows its
    input, so equal transcripts mean equal model inputs.
    """
    torch.manual_seed(0)
    model = build_transducer(ModelConfig.from_dict(teacher[1]["model"])).eval()
    path = tmp_path_factory.mktemp("probe") / "probe.pt"
    save_checkpoint(path, model, {"model": teacher[1]["model"]}, {"epoch": 0})
    return model, path


def test_features_and_transcripts_match_the_precomputed_ones(whole_cuts, teacher, probe, tokenizer):
    extractor = make_extractor()
    probe_model = probe[0]
    from_files = {}
    for cut in whole_cuts:
        feats = file_features(flac_of(cut), extractor)
        # The same front end as stage 2, before storage: equal up to float rounding.
        training = torch.as_tensor(extractor.extract(cut.load_audio(), 16000))
        assert feats.shape == training.shape == (cut.num_frames, 80)
        assert torch.allclose(feats, training, atol=1e-4)
        # The stored features went through lilcom's lossy compression: close, not equal.
        stored = torch.as_tensor(cut.load_features())
        assert (feats - stored).abs().max() < 0.05
        text = tokenizer.decode(decode_features(probe_model, feats))
        assert text == tokenizer.decode(decode_features(probe_model, stored))
        from_files[cut.id] = text
    texts = list(from_files.values())
    assert all(texts) and texts[0] != texts[1]  # the check has teeth
    files = [flac_of(c) for c in whole_cuts]
    assert transcribe_files(probe_model, tokenizer, files) == texts
    # ... and local/decode.py's decoding of the stored features agrees, for both models.
    cuts = CutSet.from_cuts(whole_cuts)
    assert {i: hyp for i, _, hyp in decode_cuts(probe_model, cuts, tokenizer)[0]} == from_files
    teacher_texts = dict(zip(from_files, transcribe_files(teacher[0], tokenizer, files)))
    assert {i: hyp for i, _, hyp in decode_cuts(teacher[0], cuts, tokenizer)[0]} == teacher_texts


def test_other_sample_rates_and_channels(whole_cuts, probe, tokenizer, tmp_path):
    model = probe[0]
    flac = flac_of(whole_cuts[0])
    audio, rate = soundfile.read(str(flac), dtype="float32")
    assert rate == 16000
    reference = file_features(flac)
    for new_rate in (8000, 22050):
        resampled = sinc_resample(torch.from_numpy(audio), 16000, new_rate).numpy()
        path = tmp_path / f"utt-{new_rate}.wav"
        soundfile.write(str(path), resampled, new_rate, subtype="FLOAT")
        assert abs(len(read_audio(path)) - len(audio)) <= 2
        feats = file_features(path)
        assert feats.shape == reference.shape
        # Below about 3.3 kHz (the lower 50 mel bins) both rates keep the signal; 22.05 kHz
        # keeps it all. (A model's transcript is no test here: an untrained one flips on
        # differences this small.)
        assert (feats[:, :50] - reference[:, :50]).abs().mean() < 0.02
        if new_rate > 16000:
            assert (feats - reference).abs().mean() < 0.1
        assert transcribe_files(model, tokenizer, [path])[0]
    # Two identical channels mix down to the mono signal.
    stereo = tmp_path / "stereo.wav"
    soundfile.write(str(stereo), np.stack([audio, audio], axis=1), 16000, subtype="FLOAT")
    assert torch.allclose(read_audio(stereo), torch.from_numpy(audio))


def test_missing_and_unreadable_files(teacher, tokenizer, tmp_path):
    model, _ = teacher
    missing = tmp_path / "nowhere.flac"
    with pytest.raises(TranscribeError, match=f"{missing} does not exist"):
        transcribe_files(model, tokenizer, [missing])
    text = tmp_path / "x.wav"
    text.write_text("not audio at all\n")
    with pytest.raises(TranscribeError) as err:
        transcribe_files(model, tokenizer, [text])
    assert str(text) in str(err.value) and "cannot be read" in str(err.value) and "sox" in str(err.value)
    short = tmp_path / "short.wav"
    soundfile.write(str(short), np.zeros(400, dtype=np.float32), 16000)
    with pytest.raises(TranscribeError, match="too short"):
        transcribe_files(model, tokenizer, [short])


def test_model_and_lang_mismatch(teacher, tokenizer, tiny_data_dir, tmp_path):
    model, config = teacher
    lang_dir = tiny_data_dir / "lang_bpe_100"
    check_model_matches_lang(model, tokenizer, lang_dir, "teacher", config)  # the right pair passes
    other = dict(config["model"], vocab_size=50)
    path = tmp_path / "other.pt"
    save_checkpoint(path, build_transducer(ModelConfig.from_dict(other)),
                    {"model": other, "data": {"lang_dir": "data/lang_bpe_50"}}, {"epoch": 1})
    small, small_config = load_model_file(path)
    with pytest.raises(TranscribeError) as err:
        check_model_matches_lang(small, tokenizer, lang_dir, str(path), small_config)
    msg = str(err.value)
    assert str(path) in msg and str(lang_dir) in msg
    assert "50" in msg and "100" in msg and "--lang-dir" in msg and "data/lang_bpe_50" in msg
    with pytest.raises(TranscribeError, match="bpe.model nor .*phones.txt exists"):
        load_lang(tmp_path)


def test_weights_only_file_needs_a_config(probe, tiny_teacher_exp, tmp_path):
    model = probe[0]
    feats = torch.randn(60, 80)
    expected = decode_features(model, feats)
    assert expected  # the probe says something, so equal outputs mean equal weights
    # As icefall's export.py writes it, and as a bare state dict.
    for name, content in (("pretrained.pt", {"model": model.state_dict()}), ("bare.pt", model.state_dict())):
        exported = tmp_path / name
        torch.save(content, exported)
        with pytest.raises(TranscribeError, match="--config"):
            load_model_file(exported)
        loaded, _ = load_model_file(exported, tiny_teacher_exp / "config.yaml")
        assert decode_features(loaded, feats) == expected
    # A config.yaml beside the file is found without --config.
    (tmp_path / "config.yaml").write_text((tiny_teacher_exp / "config.yaml").read_text())
    assert decode_features(load_model_file(tmp_path / "bare.pt")[0], feats) == expected
    with pytest.raises(TranscribeError, match="does not exist"):
        load_model_file(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(TranscribeError, match="junk.pt cannot be read"):
        load_model_file(tmp_path / "junk.pt")
    with pytest.raises(TranscribeError, match="does not exist"):
        load_averaged(tmp_path / "no-exp", 0, 1)


def test_method_registry(teacher, tokenizer, whole_cuts, tiny_data_dir):
    """One registry (stage 6's names) for decode.py and transcribe; `greedy` is an alias."""
    assert resolve_method("greedy") == "greedy_search" and resolve_method("fast_beam_search") == "fast_beam_search"
    with pytest.raises(ValueError, match="choose one of greedy_search, modified_beam_search"):
        resolve_method("beam_of_light")
    with pytest.raises(ValueError, match="Unknown decoding method"):
        transcribe_files(teacher[0], tokenizer, [Path("not-read.wav")], method="beam_of_light")
    flac = flac_of(whole_cuts[0])
    for method in METHODS:  # every method of stage 6 transcribes a file
        text = transcribe_files(teacher[0], tokenizer, [flac], method=method, lang_dir=tiny_data_dir / "lang_bpe_100")[0]
        assert isinstance(text, str)
    assert transcribe_files(teacher[0], tokenizer, [flac], method="greedy") == transcribe_files(teacher[0], tokenizer, [flac])


def _load_cli():
    spec = importlib.util.spec_from_file_location("transcribe_cli", REPO_ROOT / "local" / "transcribe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_in_process(whole_cuts, tiny_data_dir, tiny_teacher_exp, teacher, tokenizer, tmp_path, monkeypatch, capfd):
    cli = _load_cli()
    help_text = cli.get_parser().format_help()
    for option in ("--exp-dir", "--checkpoint", "--epoch", "--avg", "--config", "--lang-dir", "--method", "SOUND_FILE"):
        assert option in help_text
    base = ["transcribe.py", "--exp-dir", str(tiny_teacher_exp), "--avg", "2",
            "--lang-dir", str(tiny_data_dir / "lang_bpe_100")]
    flac = flac_of(whole_cuts[0])
    monkeypatch.setattr(sys, "argv", base + [str(flac)])
    cli.main()
    assert capfd.readouterr().out == f"{flac} {transcribe_files(teacher[0], tokenizer, [flac])[0]}\n"

    missing = tmp_path / "missing.wav"
    monkeypatch.setattr(sys, "argv", base + [str(flac), str(missing)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    out, err = capfd.readouterr()  # the CLI sets up its own logging, to stderr
    # the good file before the bad one is still transcribed; the failure is reported at the end
    assert out == f"{flac} {transcribe_files(teacher[0], tokenizer, [flac])[0]}\n"
    assert "ERROR" in err and f"{missing} does not exist" in err and "1 of 2 file(s) failed" in err


def test_cli_prints_path_and_transcript(whole_cuts, probe, tokenizer, tiny_data_dir):
    model, checkpoint = probe
    files = [flac_of(c) for c in whole_cuts]
    cmd = [sys.executable, str(REPO_ROOT / "local" / "transcribe.py"), "--checkpoint", str(checkpoint),
           "--lang-dir", str(tiny_data_dir / "lang_bpe_100"), "--method", "greedy", *map(str, files)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    expected = transcribe_files(model, tokenizer, files)
    assert all(expected)
    assert out.stdout.splitlines() == [f"{path} {text}" for path, text in zip(files, expected)]
