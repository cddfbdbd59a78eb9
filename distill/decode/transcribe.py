"""Transcribe sound files with a trained transducer: the library behind ``local/transcribe.py``.

The front end is the one training used: audio read with soundfile (as lhotse reads it),
mixed down to one channel, resampled to 16 kHz with lhotse's sinc resampler (a port of
torchaudio's, so no torchaudio is needed), and 80-dim fbank from
:func:`distill.data.features.make_extractor` (lhotse's ``KaldifeatFbank`` with the same
config). Feature normalization lives in the model, so nothing else is needed.

Decoding methods are the ones of stage 6, by the same names (the one registry,
:mod:`distill.decode.methods`); ``greedy`` is accepted for ``greedy_search``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import soundfile
import torch
import yaml
from lhotse.augmentation.resample import resample as sinc_resample
from lhotse.features.base import FeatureExtractor

from distill.data.features import make_extractor
from distill.decode.methods import TOKEN_SEARCHES, SearchOptions, make_word_decoder, resolve_method
from distill.lang.tokenizer import Tokenizer, load_tokenizer
from distill.models.config import ModelConfig
from distill.models.registry import build_transducer
from distill.models.subsampling import MIN_INPUT_FRAMES
from distill.models.transducer import Transducer
from distill.train.checkpoint import last_epoch, load_averaged_model, read_torch_file
from distill.utils.audio import SAMPLE_RATE


class TranscribeError(RuntimeError):
    """A file, model or lang dir that cannot be used; the message names it and the fix."""


# ---------------------------------------------------------------------------------------
# Model and lang dir


def _model_from_state(state: Mapping[str, torch.Tensor], model_config: Mapping[str, Any], source: str) -> Transducer:
    """Build the transducer described by ``model_config`` and load ``state`` into it."""
    try:
        model = build_transducer(ModelConfig.from_dict(model_config))
        model.load_state_dict(state)
    except (ValueError, RuntimeError, TypeError) as err:
        raise TranscribeError(
            f"The weights in {source} do not fit their model config ({err}); pass the config.yaml "
            "of the experiment that produced them (--config)"
        ) from err
    return model


def _read_config_yaml(path: Path) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise TranscribeError(f"{path} has no 'model' section: pass the config.yaml written by training (--config)")
    return config


def load_model_file(
    checkpoint: Path, config_file: Optional[Path] = None, device: Optional[torch.device] = None
) -> Tuple[Transducer, Dict[str, Any]]:
    """Load one checkpoint or exported model file for decoding.

    Accepted contents: a checkpoint of this project (``{"model": state_dict, "config":
    {...}}``), or weights without a config (``{"model": state_dict}`` as icefall's
    ``export.py`` writes, or a bare state dict), whose config is then read from
    ``config_file`` (by default ``config.yaml`` beside the file, as training writes it).

    Args:
      checkpoint:
        The file.
      config_file:
        An experiment ``config.yaml``; it overrides the config stored in the file.
      device:
        Where to put the model (CPU by default).
    Returns:
      ``(model in eval mode, experiment config as a dict)``.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise TranscribeError(f"Model file {checkpoint} does not exist: check --checkpoint")
    try:
        content = read_torch_file(checkpoint)
    except RuntimeError as err:  # pickle and zip errors of a file that is no torch file
        raise TranscribeError(f"{checkpoint} cannot be read as a model file ({err.__cause__ or err}): pass an "
                              "epoch-N.pt or exported .pt file") from err
    if not isinstance(content, dict):
        raise TranscribeError(f"{checkpoint} holds a {type(content).__name__}, not a model state dict")
    state = content.get("model", content)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TranscribeError(f"{checkpoint} holds no model weights (no 'model' state dict)")
    if config_file is None and isinstance(content.get("config"), dict):
        config = content["config"]
    else:
        config_file = Path(config_file) if config_file is not None else checkpoint.parent / "config.yaml"
        if not config_file.is_file():
            raise TranscribeError(
                f"{checkpoint} holds no model config and {config_file} does not exist: pass the "
                "experiment's config.yaml with --config"
            )
        config = _read_config_yaml(config_file)
    if not isinstance(config.get("model"), dict):
        raise TranscribeError(f"The config of {checkpoint} has no 'model' section: pass --config")
    model = _model_from_state(state, config["model"], str(checkpoint))
    return model.to(device or torch.device("cpu")).eval(), config


def load_averaged(
    exp_dir: Path, epoch: int, avg: int = 1, device: Optional[torch.device] = None, use_averaged_model: bool = False
) -> Tuple[Transducer, Dict[str, Any]]:
    """The model of ``exp_dir`` averaged over epochs ``epoch-avg+1 .. epoch``, as
    ``local/decode.py`` loads it.

    Args:
      exp_dir:
        Experiment directory holding ``epoch-N.pt``.
      epoch:
        Last epoch to average; 0 means the highest in ``exp_dir``.
      avg:
        Number of epochs averaged.
      device:
        Where to put the model (CPU by default).
      use_averaged_model:
        Average the running average's snapshots of those epochs instead of their end points
        (distill/train/running_average.py).
    Returns:
      ``(model in eval mode, experiment config from config.yaml, or {} without one)``.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise TranscribeError(f"Experiment directory {exp_dir} does not exist: check --exp-dir")
    try:
        epoch = epoch or last_epoch(exp_dir)
        model = load_averaged_model(exp_dir, epoch, avg, device, use_averaged_model)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        raise TranscribeError(f"{err} (check --exp-dir, --epoch, --avg and --use-averaged-model)") from err
    config_file = exp_dir / "config.yaml"
    config = _read_config_yaml(config_file) if config_file.is_file() else {}
    return model, config


def load_lang(lang_dir: Path) -> Tokenizer:
    """The tokenizer of ``lang_dir`` (its ``bpe.model`` or ``phones.txt``)."""
    try:
        return load_tokenizer(lang_dir)
    except (FileNotFoundError, ValueError) as err:
        raise TranscribeError(f"{err}; pass the --lang-dir the model was trained with") from err


def check_model_matches_lang(model: Transducer, tokenizer: Tokenizer, lang_dir: Path,
                             model_source: str, config: Optional[Mapping[str, Any]] = None) -> None:
    """Refuse a tokenizer whose vocabulary size differs from the model's output size.

    Args:
      model:
        The transducer.
      tokenizer:
        The tokenizer of ``lang_dir`` (BPE model or phone inventory).
      lang_dir:
        Named in the message.
      model_source:
        The checkpoint or experiment directory, named in the message.
      config:
        The experiment config; its ``data.lang_dir`` is suggested when known.
    """
    num_pieces = tokenizer.get_piece_size()
    if model.vocab_size == num_pieces:
        return
    trained_with = ((config or {}).get("data") or {}).get("lang_dir")
    hint = f" (its training config names {trained_with})" if trained_with else ""
    raise TranscribeError(
        f"Model {model_source} outputs {model.vocab_size} tokens but the tokenizer of {lang_dir} has "
        f"{num_pieces}: pass the --lang-dir the model was trained with{hint}"
    )


# ---------------------------------------------------------------------------------------
# Audio and features


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Read a sound file as one channel at ``sample_rate``.

    Args:
      path:
        Any file soundfile reads (WAV, FLAC, OGG, ...), at any sample rate.
      sample_rate:
        The rate to resample to.
    Returns:
      A float32 tensor of shape (num_samples,), values in [-1, 1].
    """
    path = Path(path)
    if not path.exists():
        raise TranscribeError(f"Audio file {path} does not exist: check the path")
    if not os.access(path, os.R_OK) or path.is_dir():
        raise TranscribeError(f"Audio file {path} is not a readable file: check the path and its permissions")
    try:
        # float32 and (frames, channels), as lhotse reads audio for feature extraction.
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError) as err:  # soundfile's LibsndfileError is a RuntimeError
        raise TranscribeError(
            f"Audio file {path} cannot be read ({err}): give a sound file that soundfile reads "
            "(WAV, FLAC, OGG...), or convert it first, e.g. `sox in.mp3 -r 16000 -c 1 out.wav`"
        ) from err
    samples = torch.from_numpy(data).mean(dim=1)  # mix channels down to mono
    if rate != sample_rate:
        samples = sinc_resample(samples, rate, sample_rate)
    return samples.contiguous()


def compute_features(samples: torch.Tensor, extractor: Optional[FeatureExtractor] = None) -> torch.Tensor:
    """Fbank features of 16 kHz audio, exactly as the training features were computed.

    Args:
      samples:
        A tensor of shape (num_samples,) at 16 kHz.
      extractor:
        The extractor; :func:`make_extractor` (kaldifeat) by default.
    Returns:
      A float32 tensor of shape (T, 80), 100 frames per second.
    """
    extractor = extractor or make_extractor("kaldifeat")
    feats = extractor.extract(samples.numpy(), SAMPLE_RATE)
    return torch.as_tensor(feats, dtype=torch.float32)


def file_features(path: Path, extractor: Optional[FeatureExtractor] = None) -> torch.Tensor:
    """:func:`read_audio` then :func:`compute_features`, refusing audio too short to decode.

    Returns:
      A tensor of shape (T, 80), T >= the encoder's minimum.
    """
    feats = compute_features(read_audio(path), extractor)
    if feats.size(0) < MIN_INPUT_FRAMES:
        raise TranscribeError(
            f"Audio file {path} is too short ({feats.size(0)} frames of 10 ms; the model needs at "
            f"least {MIN_INPUT_FRAMES}): give a longer recording"
        )
    return feats


# ---------------------------------------------------------------------------------------
# Decoding


@torch.no_grad()
def encode_features(model: Transducer, features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The encoder output of one utterance's features (T, 80): shapes (1, T', C) and (1,)."""
    device = next(model.parameters()).device
    x = features.unsqueeze(0).to(device)  # (1, T, 80)
    x_lens = torch.tensor([features.size(0)], dtype=torch.int64, device=device)
    return model.encode(x, x_lens)


def decode_features(
    model: Transducer,
    features: torch.Tensor,
    method: str = "greedy_search",
    options: Optional[SearchOptions] = None,
) -> List[int]:
    """Decode the features of one utterance to token ids.

    Args:
      model:
        The transducer, in eval mode.
      features:
        A tensor of shape (T, 80).
      method:
        A method of :data:`distill.decode.methods.TOKEN_SEARCHES` (the k2 methods give
        words: use :func:`transcribe_files`).
      options:
        The search options (defaults: stage 6's).
    Returns:
      The decoded token ids.
    """
    method = resolve_method(method)
    if method not in TOKEN_SEARCHES:
        raise ValueError(f"{method} gives words, not token ids: decode with transcribe_files / transcribe_each")
    encoder_out, encoder_out_lens = encode_features(model, features)
    return TOKEN_SEARCHES[method](model, encoder_out, encoder_out_lens, options or SearchOptions())[0]


def transcribe_files(
    model: Transducer,
    tokenizer: Tokenizer,
    paths: Sequence[Path],
    method: str = "greedy_search",
    extractor: Optional[FeatureExtractor] = None,
    options: Optional[SearchOptions] = None,
    lang_dir: Optional[Path] = None,
) -> List[str]:
    """Transcribe sound files one at a time (so any length fits in memory).

    The method and every file are checked before any decoding, so a typo in the last
    path fails at once.

    Args:
      model:
        The transducer, in eval mode.
      tokenizer:
        Its tokenizer (see :func:`check_model_matches_lang`).
      paths:
        Sound files.
      method:
        A method of :data:`distill.decode.methods.METHODS`, as stage 6 names them.
      extractor:
        The feature extractor; :func:`make_extractor` (kaldifeat) by default.
      options:
        The search options (defaults: stage 6's).
      lang_dir:
        The lang dir, for ``fast_beam_search_nbest_LG`` (its LG.pt and words.txt).
    Returns:
      One transcript per file, in order.
    """
    resolve_method(method)
    for path in paths:
        if not Path(path).exists():
            raise TranscribeError(f"Audio file {path} does not exist: check the path")
    transcripts = []
    for path, text, error in transcribe_each(model, tokenizer, paths, method, extractor, options, lang_dir):
        if error is not None:
            raise TranscribeError(error)
        transcripts.append(text)
    return transcripts


def transcribe_each(
    model: Transducer,
    tokenizer: Tokenizer,
    paths: Sequence[Path],
    method: str = "greedy_search",
    extractor: Optional[FeatureExtractor] = None,
    options: Optional[SearchOptions] = None,
    lang_dir: Optional[Path] = None,
) -> Iterator[Tuple[Path, Optional[str], Optional[str]]]:
    """Transcribe sound files one at a time, yielding ``(path, transcript, None)`` as each is
    decoded, or ``(path, None, reason)`` for a file that cannot be (missing, unreadable, too
    short): one bad file does not hide the transcripts of the others.

    Args: as :func:`transcribe_files`.
    """
    decode = make_word_decoder(method, model, tokenizer, lang_dir, options or SearchOptions())
    extractor = extractor or make_extractor("kaldifeat")
    for path in paths:
        path = Path(path)
        try:
            features = file_features(path, extractor)
        except TranscribeError as err:
            yield path, None, str(err)
            continue
        with torch.no_grad():
            words = decode(*encode_features(model, features))[0]
        yield path, " ".join(words), None
