"""Write a trained transducer as an export folder: ONNX, TorchScript and int8 graphs,
``tokens.txt`` and ``export.json``, each graph checked against PyTorch on a real batch.

Layout of ``exp/<model>/export/`` (all graphs take and give the joiner's dimension, see
:mod:`distill.export.wrappers`)::

    encoder.onnx decoder.onnx joiner.onnx            fp32, offline (sherpa-onnx's offline transducer)
    encoder.int8.onnx decoder.int8.onnx joiner.int8.onnx   onnxruntime dynamic quantization
    encoder-streaming.onnx encoder-streaming.int8.onnx     LSTM encoders only: sherpa-onnx's "lstm" online model
    encoder.pt decoder.pt joiner.pt (encoder-streaming.pt)  TorchScript (traced), fp32
    *.int8.pt                                            TorchScript after torch dynamic quantization
    tokens.txt export.json

The ONNX files carry the metadata sherpa-onnx reads (decoder: ``vocab_size``,
``context_size``; streaming encoder: ``model_type`` "lstm", ``num_encoder_layers``, ``T``,
``decode_chunk_len``, ``rnn_hidden_size``, ``d_model``), as icefall's ``export-onnx.py``
files write them. The folder is written under a temporary name and renamed into place
once every file is written and checked, with ``export.json`` (which runtimes require)
written last: a killed export leaves nothing a runtime would load.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from distill import __version__
from distill.deploy.features import FBANK_SETTINGS
from distill.deploy.manifest import FORMAT_VERSION, MANIFEST_NAME, TOKENS_NAME, sha256_of
from distill.export.wrappers import (
    ExportError,
    JoinerGraph,
    LstmDecoderGraph,
    OfflineEncoder,
    StatelessDecoderGraph,
    StreamingLstmEncoder,
)
from distill.models.conformer import ConformerEncoder
from distill.models.decoder import StatelessDecoder
from distill.models.lstm_encoder import LOOKAHEAD_PAD_FEATURE, LstmEncoder
from distill.models.lstm_predictor import LstmPredictor
from distill.models.subsampling import SUBSAMPLING_FACTOR, subsampled_lengths
from distill.models.tdnn_encoder import TdnnEncoder
from distill.models.transducer import Transducer
from distill.utils.io import _umask, atomic_write_json, atomic_write_text

OPSET = 13
#: Largest |ONNX or TorchScript fp32 - PyTorch| accepted at export time.
FP32_TOLERANCE = 1e-3
#: Largest |int8 - PyTorch| accepted, relative to the largest |PyTorch output| (int8 weights
#: round to 1/127 of each tensor's range; a wrong graph differs by about 1).
INT8_RELATIVE_TOLERANCE = 0.25
#: ONNX ops that onnxruntime's dynamic quantization turns to int8 (the 1-D convolutions over
#: time are MatMul in the export, see :class:`~distill.export.wrappers.TimeDelayMatMul`; Conv:
#: any other but those :func:`_convs_kept_in_float` keeps).
INT8_OP_TYPES = ["MatMul", "LSTM", "Gemm", "Gather", "Conv"]
#: Encoder frames per streaming chunk by default (320 ms at 40 ms a frame).
DEFAULT_CHUNK_FRAMES = 8

ENCODER_KINDS = {ConformerEncoder: "conformer", LstmEncoder: "lstm", TdnnEncoder: "tdnn"}


def encoder_kind(model: Transducer) -> str:
    for cls, name in ENCODER_KINDS.items():
        if isinstance(model.encoder, cls):
            return name
    raise ExportError(f"Unknown encoder {type(model.encoder).__name__}: export knows {sorted(ENCODER_KINDS.values())}")


def predictor_kind(model: Transducer) -> str:
    if isinstance(model.decoder, StatelessDecoder):
        return "stateless"
    if isinstance(model.decoder, LstmPredictor):
        return "lstm"
    raise ExportError(f"Unknown predictor {type(model.decoder).__name__}: export knows stateless and lstm")


def tdnn_context(encoder: TdnnEncoder) -> int:
    """Encoder frames each side that one output frame of the TDNN stack depends on."""
    total = 0
    for layer in encoder.layers:
        conv = layer.conv
        total += conv.dilation[0] * (conv.kernel_size[0] - 1) // 2
    return total


# ---------------------------------------------------------------------------------------
# The graphs and their example inputs


def _graphs(model: Transducer, chunk_frames: int) -> Dict[str, Tuple[nn.Module, Tuple[torch.Tensor, ...], List[str], List[str], Dict[str, Dict[int, str]]]]:
    """name -> (module, example inputs, input names, output names, dynamic axes)."""
    joiner_dim = model.joiner.output_linear.in_features
    num_features = model.encoder.subsampling.in_dim
    x = torch.zeros(2, 4 * 25 + 3, num_features)
    x_lens = torch.tensor([x.size(1), x.size(1) - 20], dtype=torch.int64)
    graphs: Dict[str, Any] = {
        "encoder": (OfflineEncoder(model), (x, x_lens), ["x", "x_lens"], ["encoder_out", "encoder_out_lens"],
                    {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "encoder_out": {0: "N", 1: "T_out"},
                     "encoder_out_lens": {0: "N"}}),
        "joiner": (JoinerGraph(model), (torch.zeros(2, joiner_dim), torch.zeros(2, joiner_dim)),
                   ["encoder_out", "decoder_out"], ["logit"],
                   {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}}),
    }
    if predictor_kind(model) == "stateless":
        context_size = model.decoder.context_size
        graphs["decoder"] = (StatelessDecoderGraph(model), (torch.zeros(2, context_size, dtype=torch.int64),), ["y"],
                             ["decoder_out"], {"y": {0: "N"}, "decoder_out": {0: "N"}})
    else:
        h, c = model.decoder.init_state(2, torch.device("cpu"))
        graphs["decoder"] = (LstmDecoderGraph(model), (torch.zeros(2, 1, dtype=torch.int64), h, c), ["y", "h", "c"],
                             ["decoder_out", "next_h", "next_c"],
                             {"y": {0: "N"}, "h": {1: "N"}, "c": {1: "N"}, "decoder_out": {0: "N"},
                              "next_h": {1: "N"}, "next_c": {1: "N"}})
    if encoder_kind(model) == "lstm":
        streaming = StreamingLstmEncoder(model)
        h, c = streaming_init_state(model, 2)
        graphs["encoder-streaming"] = (
            streaming, (torch.zeros(2, streaming_chunk_size(model, chunk_frames), num_features), h, c), ["x", "h", "c"],
            ["encoder_out", "next_h", "next_c"],
            # T is dynamic so that a runtime can feed the shorter last chunk of an utterance.
            {"x": {0: "N", 1: "T"}, "h": {1: "N"}, "c": {1: "N"}, "encoder_out": {0: "N", 1: "T_out"},
             "next_h": {1: "N"}, "next_c": {1: "N"}})
    for module, *_ in graphs.values():
        module.eval()
    return graphs


def streaming_chunk_size(model: Transducer, chunk_frames: int) -> int:
    """Feature frames of one chunk of the streaming LSTM encoder graph, ``4 (n + R) + 3``
    for ``n`` encoder frames out and R frames of look-ahead."""
    return SUBSAMPLING_FACTOR * (chunk_frames + model.encoder.lookahead_frames) + 3


def streaming_init_state(model: Transducer, batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Zero ``(h, c)`` of the streaming LSTM encoder graph."""
    encoder: LstmEncoder = model.encoder
    lstm = encoder.layers[0].lstm
    num_layers = len(encoder.layers)
    return (torch.zeros(num_layers, batch_size, encoder.output_dim),
            torch.zeros(num_layers, batch_size, lstm.hidden_size))


# ---------------------------------------------------------------------------------------
# ONNX


def _add_onnx_metadata(path: Path, metadata: Dict[str, Any]) -> None:
    """Set the file's metadata to ``metadata``; also drops the shape annotations
    (``value_info``) the quantizer adds: onnxruntime infers them again, and in the int8 files
    of small models they were 3% of the bytes."""
    import onnx

    model = onnx.load(str(path))
    del model.graph.value_info[:]
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.save(model, str(path))


def _export_onnx(module: nn.Module, inputs, input_names, output_names, dynamic_axes, path: Path) -> None:
    # The tracer's warnings (Python-side shape checks frozen, shape inference of constants)
    # are expected here; the check of every graph on a batch of other shapes is what counts.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True)
    module.eval()  # torch.onnx.export restores the mode it found; keep eval for the checks


def _convs_kept_in_float(path: Path) -> List[str]:
    """Conv nodes left in float: the front end (it runs at the 100 Hz input rate, where
    onnxruntime's int8 convolution cost more time than it saved: measured on the TIMIT
    students, RTF 0.0019 against 0.0014) and grouped (depthwise) convolutions, whose few
    weights are not worth it. (The TDNN layers and the Conformer's pointwise convolutions
    are matrix products in the export, quantized as MatMul.)"""
    import onnx

    kept = []
    for node in onnx.load(str(path)).graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if "subsampling" in node.name or group > 1:
            kept.append(node.name)
    return kept


def _quantize_onnx(src: Path, dst: Path) -> None:
    """onnxruntime dynamic quantization: int8 weights, uint8 activations quantized at run time.

    ``reduce_range`` keeps the weights to 7 bits. On x86 CPUs without VNNI (AVX2 only, e.g.
    AMD Zen 2) onnxruntime multiplies uint8 by int8 with an instruction that saturates pairs of
    products at int16, so full-range weights can overflow: on such a CPU the tiny test RNN
    student's int8 encoder differed from PyTorch by 0.46 with 8 bits and by 0.045 with 7 (its
    TorchScript int8, 0.049). One file must be right on every CPU it is deployed to.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), op_types_to_quantize=INT8_OP_TYPES, weight_type=QuantType.QInt8, reduce_range=True,
                     nodes_to_exclude=_convs_kept_in_float(src))


def _onnx_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------------------
# TorchScript


def _export_torchscript(module: nn.Module, inputs, path: Path, int8: bool) -> nn.Module:
    """Trace ``module`` (dynamic-quantized first with ``int8``) and save it; returns the traced module.

    Tracing, not scripting: the graphs are fixed data flow once the shapes are known (the
    Python-side checks become no-ops), and the check on a batch of other shapes below
    catches any shape a trace would have frozen.
    """
    if int8:
        module = torch.quantization.quantize_dynamic(module, {nn.Linear, nn.LSTM}, dtype=torch.qint8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, inputs, check_trace=False)
    traced.save(str(path))
    return torch.jit.load(str(path))


# ---------------------------------------------------------------------------------------
# Checks


def _max_diff(outputs: Sequence[np.ndarray], reference: Sequence[torch.Tensor], valid: Optional[np.ndarray]) -> Tuple[float, float]:
    """(max |difference|, max |reference|) over the float outputs; ``valid`` masks the encoder's padding frames."""
    worst, scale = 0.0, 0.0
    for out, ref in zip(outputs, reference):
        ref_np = ref.detach().numpy()
        out = np.asarray(out)
        if out.shape != ref_np.shape:
            raise ExportError(f"shape {out.shape} against PyTorch's {ref_np.shape}")
        if not np.issubdtype(ref_np.dtype, np.floating):
            if not np.array_equal(out, ref_np):
                raise ExportError(f"integer output differs from PyTorch's: {out.tolist()} vs {ref_np.tolist()}")
            continue
        diff = np.abs(out - ref_np)
        if valid is not None and diff.ndim == 3:
            diff = diff[valid]
            ref_np = ref_np[valid]
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
        scale = max(scale, float(np.abs(ref_np).max()) if ref_np.size else 0.0)
    return worst, scale


def _check_inputs(model: Transducer, encoder_graph: nn.Module, features: torch.Tensor, feature_lens: torch.Tensor,
                  chunk_frames: int) -> Dict[str, Tuple[torch.Tensor, ...]]:
    """Inputs of each graph from a real batch: the encoder on the features, the predictor on
    tokens the model emits (argmax of the joiner), the joiner on those outputs."""
    with torch.no_grad():
        encoder_out, _ = encoder_graph(features, feature_lens)
    n = features.size(0)
    frames = encoder_out[:, : min(4, encoder_out.size(1))].reshape(-1, encoder_out.size(2))
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, model.vocab_size, (frames.size(0), 2), generator=generator)
    inputs: Dict[str, Tuple[torch.Tensor, ...]] = {"encoder": (features, feature_lens)}
    if predictor_kind(model) == "stateless":
        y = torch.randint(0, model.vocab_size, (frames.size(0), model.decoder.context_size), generator=generator)
        inputs["decoder"] = (y,)
        with torch.no_grad():
            decoder_out = StatelessDecoderGraph(model).eval()(y)
    else:
        h = torch.randn(model.decoder.num_layers, frames.size(0), model.decoder.output_dim, generator=generator) * 0.5
        c = torch.randn(h.shape, generator=generator) * 0.5
        inputs["decoder"] = (tokens[:, :1], h, c)
        with torch.no_grad():
            decoder_out = LstmDecoderGraph(model).eval()(tokens[:, :1], h, c)[0]
    inputs["joiner"] = (frames, decoder_out)
    if encoder_kind(model) == "lstm":
        chunk = features[:, : streaming_chunk_size(model, chunk_frames)]
        h, c = streaming_init_state(model, n)
        inputs["encoder-streaming"] = (chunk, h, c)
    return inputs


def _valid_mask(name: str, model: Transducer, inputs: Tuple[torch.Tensor, ...]) -> Optional[np.ndarray]:
    if name != "encoder":
        return None
    x, x_lens = inputs
    lens = subsampled_lengths(x_lens)
    t_out = subsampled_lengths(x.size(1))
    return (np.arange(t_out)[None, :] < lens.numpy()[:, None])


def _check(name: str, kind: str, run: Callable[..., Sequence[Any]], module: nn.Module, inputs, model: Transducer, int8: bool) -> float:
    with torch.no_grad():
        reference = module(*inputs)
    reference = reference if isinstance(reference, tuple) else (reference,)
    outputs = run(*inputs)
    worst, scale = _max_diff(outputs, reference, _valid_mask(name, model, inputs))
    limit = INT8_RELATIVE_TOLERANCE * max(scale, 1.0) if int8 else FP32_TOLERANCE
    logging.info(f"check {kind} {name}: max |difference| to PyTorch {worst:.2e} (limit {limit:.2e})")
    if not worst <= limit:
        raise ExportError(f"The {kind} {name} graph differs from PyTorch by {worst:.3g} (limit {limit:.3g}) on a real "
                          "batch: the export is wrong for this model (report it with the model's config)")
    return worst


# ---------------------------------------------------------------------------------------
# The folder


def write_tokens(symbols: Sequence[str], path: Path) -> None:
    """sherpa-onnx's ``tokens.txt``: ``symbol id`` per line, ids 0..V-1."""
    for symbol in symbols:
        if not symbol or any(ch.isspace() for ch in symbol):
            raise ExportError(f"Token {symbol!r} is empty or holds white space: sherpa-onnx's tokens.txt cannot hold it")
    atomic_write_text(path, "".join(f"{s} {i}\n" for i, s in enumerate(symbols)))


def export_model(
    model: Transducer,
    symbols: Sequence[str],
    out_dir: Path,
    features: torch.Tensor,
    feature_lens: torch.Tensor,
    model_name: str,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    unit: str = "bpe",
    extra: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Export ``model`` into ``out_dir`` (replaced as a whole when complete).

    Args:
      model:
        A trained transducer, any encoder and predictor of this project.
      symbols:
        The token of each output id (``symbols[0]`` is blank), written to tokens.txt.
      out_dir:
        The export folder, e.g. ``exp/student_rnn/export``.
      features / feature_lens:
        A real batch (N, T, F) and its lengths, for the checks.
      model_name:
        Recorded in export.json (e.g. ``student_rnn_kd``).
      chunk_frames:
        Encoder frames per streaming chunk (LSTM encoders; 8 = 320 ms).
      unit:
        ``bpe`` or ``phone``: how a runtime joins tokens into text.
      extra:
        More entries for export.json (e.g. the checkpoint it came from).
    Returns:
      The manifest written to ``export.json``.
    Raises:
      ExportError: a model this exporter cannot export, or an export that does not match PyTorch.
    """
    model = model.to("cpu").eval()
    if len(symbols) != model.vocab_size:
        raise ExportError(f"{len(symbols)} tokens for a model with {model.vocab_size} outputs: pass the lang dir the "
                          f"model {model_name} was trained with")
    if chunk_frames < 1:
        raise ExportError(f"chunk_frames must be >= 1, got {chunk_frames}")
    kind, predictor = encoder_kind(model), predictor_kind(model)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        graphs = _graphs(model, chunk_frames)
        check_inputs = _check_inputs(model, graphs["encoder"][0], features, feature_lens, chunk_frames)
        joiner_dim = model.joiner.output_linear.in_features
        meta_common = {"vocab_size": model.vocab_size, "joiner_dim": joiner_dim, "model_name": model_name,
                       "distill_version": __version__, "feature_dim": FBANK_SETTINGS["feature_dim"]}
        graph_meta: Dict[str, Dict[str, Any]] = {
            "encoder": {"model_type": f"distill_{kind}", "subsampling_factor": SUBSAMPLING_FACTOR},
            "decoder": {"context_size": model.decoder.context_size if predictor == "stateless" else 1,
                        "predictor": predictor},
            "joiner": {},
        }
        streaming: Optional[Dict[str, Any]] = None
        if kind == "lstm":
            encoder: LstmEncoder = model.encoder
            streaming = {"kind": "lstm_state", "chunk_frames": chunk_frames,
                         "T": streaming_chunk_size(model, chunk_frames), "decode_chunk_len": SUBSAMPLING_FACTOR * chunk_frames,
                         "num_encoder_layers": len(encoder.layers), "d_model": encoder.output_dim,
                         "rnn_hidden_size": encoder.layers[0].lstm.hidden_size,
                         "lookahead_frames": encoder.lookahead_frames, "pad_feature": LOOKAHEAD_PAD_FEATURE}
            graph_meta["encoder-streaming"] = {"model_type": "lstm", **{k: v for k, v in streaming.items()
                                                                         if k not in ("kind", "chunk_frames", "pad_feature")}}
        elif kind == "tdnn":
            streaming = {"kind": "window", "chunk_frames": chunk_frames, "context_frames": tdnn_context(model.encoder)}
        checks: Dict[str, float] = {}
        files: Dict[str, Dict[str, str]] = {"onnx": {}, "onnx_int8": {}, "torchscript": {}, "torchscript_int8": {}}
        for name, (module, example, input_names, output_names, axes) in graphs.items():
            fp32 = tmp / f"{name}.onnx"
            _export_onnx(module, example, input_names, output_names, axes, fp32)
            _add_onnx_metadata(fp32, {**meta_common, **graph_meta[name]})
            int8 = tmp / f"{name}.int8.onnx"
            _quantize_onnx(fp32, int8)
            _add_onnx_metadata(int8, {**meta_common, **graph_meta[name]})
            for path, is_int8, key in ((fp32, False, "onnx"), (int8, True, "onnx_int8")):
                session = _onnx_session(path)
                feed_names = [i.name for i in session.get_inputs()]
                run = lambda *xs, s=session, n=feed_names: s.run(None, {k: v.numpy() for k, v in zip(n, xs)})  # noqa: E731
                checks[f"{path.name}"] = _check(name, key, run, module, check_inputs[name], model, is_int8)
                files[key][name] = path.name
            for is_int8, key in ((False, "torchscript"), (True, "torchscript_int8")):
                path = tmp / (f"{name}.int8.pt" if is_int8 else f"{name}.pt")
                traced = _export_torchscript(module, example, path, is_int8)
                run = lambda *xs, t=traced: [o.numpy() for o in (lambda r: r if isinstance(r, tuple) else (r,))(t(*xs))]  # noqa: E731
                with torch.no_grad():
                    checks[path.name] = _check(name, key, run, module, check_inputs[name], model, is_int8)
                files[key][name] = path.name
        write_tokens(symbols, tmp / TOKENS_NAME)
        manifest: Dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "model_name": model_name,
            "encoder": kind,
            "predictor": predictor,
            "vocab_size": model.vocab_size,
            "blank_id": model.blank_id,
            "context_size": model.decoder.context_size if predictor == "stateless" else None,
            "predictor_state": ({"num_layers": model.decoder.num_layers, "dim": model.decoder.output_dim}
                                if predictor == "lstm" else None),
            "joiner_dim": joiner_dim,
            "subsampling_factor": SUBSAMPLING_FACTOR,
            "min_input_frames": 7,
            "unit": unit,
            "features": dict(FBANK_SETTINGS),
            "streaming": streaming,
            "sherpa_onnx": {"offline": predictor == "stateless", "online": predictor == "stateless" and kind == "lstm"},
            "files": files,
            "checks_max_abs_diff": checks,
            "num_parameters": sum(p.numel() for p in model.parameters()),
            **(extra or {}),
        }
        manifest["sha256"] = {p.name: sha256_of(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        atomic_write_json(tmp / MANIFEST_NAME, manifest)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; give it a plain mkdir's mode
        _replace_dir(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    logging.info(f"Exported {model_name} to {out_dir}")
    return manifest


def _replace_dir(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; an existing ``target`` is moved aside first and removed after."""
    old: Optional[Path] = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
