"""This project's own onnxruntime search over an export folder's graphs: greedy search,
offline and streaming, for every predictor (sherpa-onnx drives stateless predictors only).

Greedy search here is the one of :func:`distill.decode.greedy.greedy_search` with one symbol
per frame (and sherpa-onnx's): at each encoder frame the joiner's best symbol is taken; a
non-blank one is emitted and read by the predictor.

Streaming (:class:`OrtStream`) takes audio as it arrives and decodes each chunk as soon as
its features are there:

* LSTM encoders (``streaming.kind`` "lstm_state"): chunks of ``T = 4 (n + R) + 3`` feature
  frames (R: ``lookahead_frames``), ``4 n`` apart, through ``encoder-streaming.onnx`` with the
  LSTM states carried; at the end of the input, the last, shorter chunk followed by ``4 R``
  frames of ``pad_feature`` (the future the offline encoder reads past an utterance's end).
  The front end's 7-frame convolutions and the look-ahead then see the same frames as on the
  whole utterance, so the result equals offline decoding exactly.
* TDNN encoders ("window"): the offline encoder on a window of the features that holds the
  chunk's frames and ``context_frames`` encoder frames each side (the stack's whole receptive
  field), keeping only the chunk's outputs: again exactly the offline outputs, for the
  latency of the right context.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np

from distill.deploy.features import FBANK_SETTINGS, fbank_options
from distill.deploy.manifest import ExportFolderError, check_onnx_metadata


def subsampled(num_frames: int) -> int:
    """Encoder frames of ``num_frames`` feature frames (two 3x3 stride-2 convolutions)."""
    return ((num_frames - 1) // 2 - 1) // 2


def _session(path: Path, num_threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise ExportFolderError(f"{path} cannot be loaded by onnxruntime ({err}): rerun the export") from err


class OrtTransducer:
    """The graphs of an export folder in onnxruntime sessions."""

    def __init__(self, export_dir: Path, manifest: Mapping[str, Any], int8: bool = False, num_threads: int = 1) -> None:
        self.manifest = manifest
        files = manifest["files"]["onnx_int8" if int8 else "onnx"]
        self.sessions = {name: _session(Path(export_dir) / file, num_threads) for name, file in files.items()}
        expected = {"vocab_size": manifest["vocab_size"], "joiner_dim": manifest["joiner_dim"],
                    "feature_dim": manifest["features"]["feature_dim"]}
        for name, session in self.sessions.items():
            check_onnx_metadata(Path(export_dir) / files[name], session.get_modelmeta().custom_metadata_map, expected)
        self.blank_id = int(manifest["blank_id"])
        self.predictor = manifest["predictor"]

    # -- graphs ------------------------------------------------------------------------

    def encode(self, features: np.ndarray) -> np.ndarray:
        """(T, F) features -> (T', joiner_dim) encoder frames, the whole utterance at once."""
        x = features[None].astype(np.float32)
        out, _ = self.sessions["encoder"].run(None, {"x": x, "x_lens": np.array([x.shape[1]], dtype=np.int64)})
        return out[0]

    def encode_chunk(self, features: np.ndarray, state: Tuple[np.ndarray, np.ndarray]) -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """One chunk of the streaming LSTM encoder."""
        out, h, c = self.sessions["encoder-streaming"].run(
            None, {"x": features[None].astype(np.float32), "h": state[0], "c": state[1]})
        return out[0], (h, c)

    def initial_encoder_state(self) -> Tuple[np.ndarray, np.ndarray]:
        s = self.manifest["streaming"]
        return (np.zeros((s["num_encoder_layers"], 1, s["d_model"]), np.float32),
                np.zeros((s["num_encoder_layers"], 1, s["rnn_hidden_size"]), np.float32))

    # -- search ------------------------------------------------------------------------

    def initial_decoder(self) -> "DecoderState":
        return DecoderState(self)

    #: Frames joined per joiner call while the predictor output stays the same.
    GREEDY_WINDOW = 8

    def greedy(self, encoder_frames: np.ndarray, decoder: "DecoderState") -> List[int]:
        """Greedy search over ``encoder_frames`` (T, joiner_dim), continuing ``decoder``;
        returns the symbols emitted (also appended to ``decoder.tokens``).

        Frame by frame, one symbol at most per frame, but the joiner runs on a window of
        frames at once: until a frame emits, the predictor output does not change, so the
        frames up to the first non-blank one are exactly what frame-by-frame search sees.
        Most frames are blank, so this makes several times fewer joiner calls.
        """
        emitted: List[int] = []
        joiner = self.sessions["joiner"]
        t, num_frames = 0, encoder_frames.shape[0]
        while t < num_frames:
            window = encoder_frames[t:t + self.GREEDY_WINDOW]
            dec = np.repeat(decoder.out, window.shape[0], axis=0)
            best = joiner.run(None, {"encoder_out": window, "decoder_out": dec})[0].argmax(axis=1)
            non_blank = np.flatnonzero(best != self.blank_id)
            if non_blank.size == 0:
                t += window.shape[0]
                continue
            token = int(best[non_blank[0]])
            decoder.read(token)
            emitted.append(token)
            t += int(non_blank[0]) + 1
        return emitted


class DecoderState:
    """The predictor's state in a search: the tokens so far and the current ``decoder_out``."""

    def __init__(self, model: OrtTransducer) -> None:
        self.model = model
        self.tokens: List[int] = []
        m = model.manifest
        if model.predictor == "stateless":
            self.context = [model.blank_id] * int(m["context_size"])
            self.out = self._run_stateless()
        else:
            shape = (m["predictor_state"]["num_layers"], 1, m["predictor_state"]["dim"])
            self.h, self.c = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
            self._run_lstm(model.blank_id)

    def _run_stateless(self) -> np.ndarray:
        y = np.array([self.context], dtype=np.int64)
        return self.model.sessions["decoder"].run(None, {"y": y})[0]

    def _run_lstm(self, token: int) -> None:
        self.out, self.h, self.c = self.model.sessions["decoder"].run(
            None, {"y": np.array([[token]], dtype=np.int64), "h": self.h, "c": self.c})

    def read(self, token: int) -> None:
        self.tokens.append(token)
        if self.model.predictor == "stateless":
            self.context = self.context[1:] + [token]
            self.out = self._run_stateless()
        else:
            self._run_lstm(token)


class OrtStream:
    """Audio in as it arrives, tokens out as soon as their chunk is decoded (see the module
    docstring for how each encoder streams)."""

    def __init__(self, model: OrtTransducer) -> None:
        import kaldi_native_fbank as knf

        streaming: Optional[Mapping[str, Any]] = model.manifest.get("streaming")
        if not streaming:
            raise ExportFolderError(f"{model.manifest['model_name']} has a {model.manifest['encoder']} encoder, which "
                                    "sees the whole utterance: it decodes offline only (drop --streaming)")
        self.model = model
        self.kind = streaming["kind"]
        self.chunk_frames = int(streaming["chunk_frames"])
        self.context = int(streaming.get("context_frames", 0))
        # Exports from before the look-ahead option have neither key: no look-ahead.
        self.lookahead = int(streaming.get("lookahead_frames", 0))
        self.pad_feature = float(streaming.get("pad_feature", 0.0))
        self.settings = model.manifest.get("features", FBANK_SETTINGS)
        self.fbank = knf.OnlineFbank(fbank_options(self.settings))
        self.frames: List[np.ndarray] = []
        self.decoder = model.initial_decoder()
        self.encoder_state = model.initial_encoder_state() if self.kind == "lstm_state" else None
        self.processed = 0  # feature frames consumed (lstm_state) / encoder frames decoded (window)
        self.finished = False

    @property
    def tokens(self) -> List[int]:
        return self.decoder.tokens

    def _pull_frames(self) -> None:
        while len(self.frames) < self.fbank.num_frames_ready:
            self.frames.append(np.asarray(self.fbank.get_frame(len(self.frames)), dtype=np.float32))

    def accept(self, samples: np.ndarray) -> List[int]:
        """Feed samples (float in [-1, 1], the export's sample rate); returns the tokens decoded now."""
        self.fbank.accept_waveform(float(self.settings["sample_rate"]), np.asarray(samples, np.float32).tolist())
        self._pull_frames()
        return self._decode_ready(final=False)

    def finish(self) -> List[int]:
        """End of input: decode what is left; returns the tokens decoded now."""
        self.fbank.input_finished()
        self._pull_frames()
        self.finished = True
        return self._decode_ready(final=True)

    def _decode_ready(self, final: bool) -> List[int]:
        return self._lstm_chunks(final) if self.kind == "lstm_state" else self._window_chunks(final)

    def _lstm_chunks(self, final: bool) -> List[int]:
        emitted: List[int] = []
        size, shift = 4 * (self.chunk_frames + self.lookahead) + 3, 4 * self.chunk_frames
        while len(self.frames) - self.processed >= size:
            out, self.encoder_state = self.model.encode_chunk(np.stack(self.frames[self.processed:self.processed + size]),
                                                               self.encoder_state)
            self.processed += shift
            emitted += self.model.greedy(out, self.decoder)
        rest = len(self.frames) - self.processed
        if final and rest >= 7:
            last = np.stack(self.frames[self.processed:])
            future = np.full((4 * self.lookahead, last.shape[1]), self.pad_feature, dtype=np.float32)
            out, self.encoder_state = self.model.encode_chunk(np.concatenate([last, future]), self.encoder_state)
            self.processed = len(self.frames)
            emitted += self.model.greedy(out, self.decoder)
        return emitted

    def _window_chunks(self, final: bool) -> List[int]:
        emitted: List[int] = []
        total = subsampled(len(self.frames)) if len(self.frames) >= 7 else 0
        while True:
            start = self.processed
            end = start + self.chunk_frames
            if final:
                end = min(end, total)
            elif end + self.context > total or total == 0:
                break  # the right context of this chunk has not arrived yet
            if end <= start:
                break
            first = max(0, start - self.context)
            last = min(total, end + self.context)
            window = np.stack(self.frames[4 * first: min(len(self.frames), 4 * last + 3)])
            out = self.model.encode(window)
            emitted += self.model.greedy(out[start - first: end - first], self.decoder)
            self.processed = end
        return emitted
