"""Audio and fbank features for exported models, without torch: soundfile and
kaldi-native-fbank (the feature code of sherpa-onnx).

:data:`FBANK_SETTINGS` are the settings training used (lhotse's ``KaldifeatFbank`` with 80
bins, :mod:`distill.data.features`); ``tests/deploy/test_features.py`` checks that the two
libraries give the same features with them on real audio, rather than assuming it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
import soundfile

from distill.utils.audio import SAMPLE_RATE

#: The fbank settings of training, as the export records them (export.json "features").
FBANK_SETTINGS: Dict[str, Any] = {
    "sample_rate": SAMPLE_RATE,
    "feature_dim": 80,
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "dither": 0.0,
    "preemph_coeff": 0.97,
    "remove_dc_offset": True,
    "window_type": "povey",
    "snip_edges": False,
    "low_freq": 20.0,
    "high_freq": -400.0,
    "samples": "float in [-1, 1]",
}


class AudioError(RuntimeError):
    """A sound file that cannot be decoded; the message names it and the fix."""


def fbank_options(settings: Dict[str, Any] = FBANK_SETTINGS):
    """kaldi-native-fbank options for ``settings`` (an export's "features" entry)."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(settings["sample_rate"])
    opts.frame_opts.frame_length_ms = float(settings["frame_length_ms"])
    opts.frame_opts.frame_shift_ms = float(settings["frame_shift_ms"])
    opts.frame_opts.dither = float(settings["dither"])
    opts.frame_opts.preemph_coeff = float(settings["preemph_coeff"])
    opts.frame_opts.remove_dc_offset = bool(settings["remove_dc_offset"])
    opts.frame_opts.window_type = str(settings["window_type"])
    opts.frame_opts.snip_edges = bool(settings["snip_edges"])
    opts.mel_opts.num_bins = int(settings["feature_dim"])
    opts.mel_opts.low_freq = float(settings["low_freq"])
    opts.mel_opts.high_freq = float(settings["high_freq"])
    return opts


def read_audio(path: Path, sample_rate: int) -> np.ndarray:
    """One channel of float32 samples in [-1, 1] at ``sample_rate``.

    Several channels are averaged (as training's front end does). Another sample rate is
    refused: resample the file first (``sox in.wav -r 16000 out.wav``); sherpa-onnx's own
    streams resample, but this runtime keeps the features bit-exact with training's.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"Sound file {path} does not exist")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise AudioError(f"{path} cannot be read as audio ({err}): pass a WAV or FLAC file") from err
    if samples.shape[0] == 0:
        raise AudioError(f"{path} holds no samples")
    if rate != sample_rate:
        raise AudioError(f"{path} is sampled at {rate} Hz; the model needs {sample_rate} Hz: resample it first "
                         f"(e.g. sox {path} -r {sample_rate} out.wav)")
    return samples.mean(axis=1).astype(np.float32)


def compute_fbank(samples: np.ndarray, settings: Dict[str, Any] = FBANK_SETTINGS) -> np.ndarray:
    """Fbank features, shape (num_frames, feature_dim), of a whole utterance."""
    import kaldi_native_fbank as knf

    fbank = knf.OnlineFbank(fbank_options(settings))
    fbank.accept_waveform(float(settings["sample_rate"]), samples.tolist())
    fbank.input_finished()
    frames = [fbank.get_frame(i) for i in range(fbank.num_frames_ready)]
    return np.asarray(frames, dtype=np.float32).reshape(len(frames), int(settings["feature_dim"]))
