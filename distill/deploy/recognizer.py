"""The front door to an export folder: transcribe audio, offline or as a stream.

Engines:

* ``sherpa`` (sherpa-onnx, the runtime users deploy k2 transducers with): for stateless
  predictors; offline for every encoder, streaming for the LSTM encoder (its "lstm" online
  model). sherpa-onnx computes its own features (kaldi-native-fbank) and, at the end of a
  stream, needs tail padding to flush its last chunk (:data:`TAIL_PADDING_S` of silence).
* ``ort``: this project's onnxruntime loop (:mod:`distill.deploy.ort_transducer`), for every
  predictor (the LSTM predictor needs it), offline and streaming.
* ``auto``: sherpa where it can, ort otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from distill.deploy.features import compute_fbank
from distill.deploy.manifest import TOKENS_NAME, ExportFolderError, load_manifest, read_tokens
from distill.deploy.ort_transducer import OrtStream, OrtTransducer

ENGINES = ("auto", "sherpa", "ort")
#: Silence appended to a sherpa-onnx stream at its end, so that its last chunk is decoded.
TAIL_PADDING_S = 0.66


def tokens_to_text(symbols: List[str], unit: str) -> str:
    """BPE pieces joined at their word-start marks; phones (any other unit) joined by spaces."""
    if unit == "bpe":
        return "".join(symbols).replace("\u2581", " ").strip()
    return " ".join(symbols)


def choose_engine(manifest: Mapping[str, Any], engine: str, streaming: bool, where: str = "") -> str:
    """The engine that decodes an export (``sherpa`` or ``ort``) for ``engine`` (one of
    :data:`ENGINES`), from its ``export.json`` alone; an impossible choice is refused with the
    reason and the way on."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}; choose one of {ENGINES}")
    m = manifest
    if streaming and not m.get("streaming"):
        raise ExportFolderError(f"{m['model_name']} ({where}) has a {m['encoder']} encoder that sees the "
                                "whole utterance: it decodes offline only (drop --streaming)")
    sherpa_ok = bool(m["sherpa_onnx"]["online" if streaming else "offline"])
    if engine == "sherpa" and not sherpa_ok:
        why = ("its LSTM predictor is not the stateless one sherpa-onnx drives" if m["predictor"] != "stateless"
               else f"sherpa-onnx has no streaming model for a {m['encoder']} encoder")
        raise ExportFolderError(f"sherpa-onnx cannot decode {m['model_name']} ({where}) "
                                f"{'streaming' if streaming else 'offline'}: {why}; use --engine ort")
    return "sherpa" if engine == "sherpa" or (engine == "auto" and sherpa_ok) else "ort"


@dataclass
class Transcript:
    tokens: List[int]
    text: str
    partials: List[str] = field(default_factory=list)


class Recognizer:
    """An export folder loaded for decoding.

    Args:
      export_dir:
        ``exp/<model>/export``.
      int8:
        Use the int8 graphs.
      num_threads:
        Threads of each onnxruntime session.
      engine:
        One of :data:`ENGINES`.
      streaming:
        Decode as a stream (:meth:`stream`); the teacher (full-context encoder) refuses.
    """

    def __init__(self, export_dir: Path, int8: bool = False, num_threads: int = 1, engine: str = "auto",
                 streaming: bool = False) -> None:
        self.export_dir = Path(export_dir)
        self.manifest = load_manifest(self.export_dir)
        self.symbols = read_tokens(self.export_dir / TOKENS_NAME)
        self.streaming = streaming
        self.int8 = int8
        self.num_threads = num_threads
        # sherpa-onnx gives BPE pieces with their word-start mark turned into a space
        self._index = {s.replace("\u2581", " "): i for i, s in enumerate(self.symbols)}
        self._index.update({s: i for i, s in enumerate(self.symbols)})
        m = self.manifest
        self.engine = choose_engine(m, engine, streaming, str(self.export_dir))
        self.sample_rate = int(m["features"]["sample_rate"])
        self._sherpa: Any = None
        self._ort: Optional[OrtTransducer] = None
        if self.engine == "sherpa":
            self._sherpa = self._make_sherpa()
        else:
            self._ort = OrtTransducer(self.export_dir, m, int8=int8, num_threads=num_threads)

    # -- sherpa-onnx ---------------------------------------------------------------------

    def _file(self, name: str) -> str:
        files = self.manifest["files"]["onnx_int8" if self.int8 else "onnx"]
        return str(self.export_dir / files[name])

    def _make_sherpa(self):
        import sherpa_onnx

        common: Dict[str, Any] = dict(decoder=self._file("decoder"), joiner=self._file("joiner"),
                                      tokens=str(self.export_dir / TOKENS_NAME), num_threads=self.num_threads,
                                      sample_rate=self.sample_rate,
                                      feature_dim=int(self.manifest["features"]["feature_dim"]),
                                      decoding_method="greedy_search")
        if self.streaming:
            return sherpa_onnx.OnlineRecognizer.from_transducer(encoder=self._file("encoder-streaming"), **common)
        return sherpa_onnx.OfflineRecognizer.from_transducer(encoder=self._file("encoder"), **common)

    def _ids(self, symbols: List[str]) -> List[int]:
        return [self._index[s] for s in symbols]

    # -- decoding ------------------------------------------------------------------------

    def text_of(self, tokens: List[int]) -> str:
        return tokens_to_text([self.symbols[t] for t in tokens], self.manifest["unit"])

    def transcribe(self, samples: np.ndarray, chunk_samples: int = 0) -> Transcript:
        """Decode one utterance (float samples in [-1, 1] at :attr:`sample_rate`).

        Streaming recognizers get the audio in pieces of ``chunk_samples`` (0: 320 ms) and
        record the partial transcript after each piece.
        """
        samples = np.asarray(samples, dtype=np.float32)
        if not self.streaming:
            if self.engine == "sherpa":
                stream = self._sherpa.create_stream()
                stream.accept_waveform(self.sample_rate, samples)
                self._sherpa.decode_stream(stream)
                tokens = self._ids(list(stream.result.tokens))
            else:
                features = compute_fbank(samples, self.manifest["features"])
                if features.shape[0] < int(self.manifest["min_input_frames"]):
                    raise ExportFolderError(f"{samples.size / self.sample_rate:.3f} s of audio is too short to decode")
                tokens = self._ort.greedy(self._ort.encode(features), self._ort.initial_decoder())
            return Transcript(tokens, self.text_of(tokens))
        chunk_samples = chunk_samples or int(0.32 * self.sample_rate)
        partials: List[str] = []
        if self.engine == "sherpa":
            recognizer = self._sherpa
            stream = recognizer.create_stream()
            pieces = [samples[i:i + chunk_samples] for i in range(0, samples.size, chunk_samples)]
            pieces.append(np.zeros(int(TAIL_PADDING_S * self.sample_rate), np.float32))
            for i, piece in enumerate(pieces):
                stream.accept_waveform(self.sample_rate, piece)
                if i == len(pieces) - 1:
                    stream.input_finished()
                while recognizer.is_ready(stream):
                    recognizer.decode_stream(stream)
                partials.append(self._sherpa_text(recognizer, stream))
            tokens = self._ids(list(self._sherpa_tokens(recognizer, stream)))
        else:
            stream = OrtStream(self._ort)
            for i in range(0, samples.size, chunk_samples):
                stream.accept(samples[i:i + chunk_samples])
                partials.append(self.text_of(stream.tokens))
            stream.finish()
            tokens = list(stream.tokens)
            partials.append(self.text_of(tokens))
        return Transcript(tokens, self.text_of(tokens), partials)

    def transcribe_text(self, samples: np.ndarray) -> str:
        """:meth:`transcribe`'s text (for benchmarks and scoring)."""
        return self.transcribe(samples).text

    def _sherpa_tokens(self, recognizer, stream) -> List[str]:
        result = recognizer.get_result_all(stream) if hasattr(recognizer, "get_result_all") else None
        if result is not None and hasattr(result, "tokens"):
            return list(result.tokens)
        raise ExportFolderError("this sherpa-onnx has no get_result_all(): install the version in requirements.txt")

    def _sherpa_text(self, recognizer, stream) -> str:
        return self.text_of(self._ids(self._sherpa_tokens(recognizer, stream)))


def describe_engines(manifest: Mapping[str, Any]) -> str:
    """What decodes this export, offline and streaming (for logs and --help)."""
    s = manifest["sherpa_onnx"]
    online = "sherpa-onnx" if s["online"] else ("ort" if manifest.get("streaming") else "none (offline only)")
    return f"offline: {'sherpa-onnx' if s['offline'] else 'ort'}; streaming: {online}"
