#!/usr/bin/env python3
"""What deploying each model costs and gives: size, speed, memory and WER of the teacher and
the students as PyTorch fp32, ONNX fp32, ONNX int8 and TorchScript int8, and streaming, in
one process, printed as one table.

For every exp dir (each needs its stage-7 export, ``<exp-dir>/export``):
  - size: the files a runtime loads (PyTorch fp32: 4 bytes a parameter);
  - RTF at 1 and 2 threads (decoding time over audio time, fbank included; greedy search),
    the best of ``--rounds`` rounds that visit every variant in turn; and at 1 thread with the
    fbank's own time taken off (the model and its search: PyTorch computes the fbank with
    kaldifeat, every other variant with kaldi-native-fbank, about 4x slower; each front end
    is timed alone on the same audio);
  - peak memory: the growth of the process's RSS while the variant loads and decodes
    (sampled every 2 ms; memory a previous variant freed and the allocator kept is not
    counted, so it is a lower bound);
  - WER (PER for phones) on each cut set, at 1 thread;
  - streaming (causal students, ONNX fp32 and int8): WER, compute time per chunk, and the
    latency streaming adds (the chunk, the look-ahead of the front end and of a TDNN's right
    context, and the chunk's compute).
The runtimes are the deployment ones (:mod:`distill.deploy`): sherpa-onnx for stateless
predictors, this project's onnxruntime loop otherwise (the "engine" column).

Usage (from a recipe directory, after stage 7):
  python $DISTILL_ROOT/benchmarks/deploy.py --exp-dirs exp/teacher exp/student_rnn_kd exp/student_dnn_kd \
      --cuts data/fbank/timit_cuts_DEV.jsonl.gz data/fbank/timit_cuts_TEST.jsonl.gz [--max-cuts 100] [--rounds 2]
Ends with one line of the goals' ratios (int8/fp32 size and what the int8 files hold, ONNX int8 vs PyTorch fp32 speed with
and without the fbank, streaming - offline WER).
"""
from __future__ import annotations

import argparse
import gc
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch

from distill.data.features import make_extractor
from distill.data.manifests import load_cuts
from distill.decode.scoring import word_errors
from distill.decode.transcribe import compute_features, decode_features
from distill.deploy.features import compute_fbank
from distill.deploy.manifest import TOKENS_NAME, load_manifest, read_tokens
from distill.deploy.recognizer import Recognizer, choose_engine, tokens_to_text
from distill.train.checkpoint import last_epoch, load_averaged_model

Utterance = Tuple[str, np.ndarray, str]  # id, samples, reference


class RssSampler:
    """The largest resident set size seen while it runs (sampled every 2 ms by a thread):
    ``with RssSampler() as s: ...`` then ``s.growth`` is the peak minus the RSS at the start.
    (The kernel's own peak, VmHWM, cannot be reset in every container.)"""

    def __enter__(self) -> "RssSampler":
        self.start = self.peak = _status_kb("VmRSS") * 1024
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _status_kb("VmRSS") * 1024)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kb("VmRSS") * 1024)

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def load_utterances(cuts_path: Path, max_cuts: int) -> List[Utterance]:
    out = []
    for cut in load_cuts(cuts_path):
        if len(out) == max_cuts:
            break
        samples = cut.load_audio()[0].astype(np.float32)
        out.append((cut.id, samples, " ".join(s.text for s in cut.supervisions)))
    return out


# ---------------------------------------------------------------------------------------
# Decoders: samples -> text


def pytorch_decoder(exp_dir: Path, text_of: Callable[[List[int]], str]) -> Callable[[np.ndarray], str]:
    model = load_averaged_model(exp_dir, last_epoch(exp_dir), 1)
    extractor = make_extractor("kaldifeat")

    def decode(samples: np.ndarray) -> str:  # the training front end and greedy search, as local/transcribe.py
        return text_of(decode_features(model, compute_features(torch.from_numpy(samples), extractor)))

    return decode


def torchscript_decoder(export_dir: Path, manifest: Dict[str, Any], text_of: Callable[[List[int]], str]) -> Callable[[np.ndarray], str]:
    """Greedy search over the int8 TorchScript graphs (one symbol per frame)."""
    files = manifest["files"]["torchscript_int8"]
    encoder, decoder, joiner = (torch.jit.load(str(export_dir / files[n])) for n in ("encoder", "decoder", "joiner"))
    blank, stateless = manifest["blank_id"], manifest["predictor"] == "stateless"

    @torch.no_grad()
    def decode(samples: np.ndarray) -> str:
        x = torch.from_numpy(compute_fbank(samples, manifest["features"])).unsqueeze(0)
        enc, _ = encoder(x, torch.tensor([x.size(1)]))
        tokens: List[int] = []
        if stateless:
            context = [blank] * manifest["context_size"]
            dec = decoder(torch.tensor([context]))
        else:
            shape = (manifest["predictor_state"]["num_layers"], 1, manifest["predictor_state"]["dim"])
            h, c = torch.zeros(shape), torch.zeros(shape)
            dec, h, c = decoder(torch.tensor([[blank]]), h, c)
        for t in range(enc.size(1)):
            token = int(joiner(enc[:, t], dec).argmax())
            if token == blank:
                continue
            tokens.append(token)
            if stateless:
                context = context[1:] + [token]
                dec = decoder(torch.tensor([context]))
            else:
                dec, h, c = decoder(torch.tensor([[token]]), h, c)
        return text_of(tokens)

    return decode


def file_size(paths: Sequence[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def onnx_bytes_by_kind(paths: Sequence[Path]) -> Dict[str, int]:
    """What ONNX files hold, in bytes: 8-bit tensors (quantized weights), float tensors (what the
    quantizer left float: biases, norms, scales, unquantized layers) and the rest (the graph: nodes,
    names, shapes, metadata). Says how far an int8 export can get below 1/4 of the fp32 one:
    only its 8-bit tensors are 4x smaller."""
    import onnx
    from onnx import numpy_helper

    kinds = {"8bit": 0, "float": 0, "graph": 0}
    for path in paths:
        graph = onnx.load(str(path)).graph
        tensors = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
        for t in tensors:
            array = numpy_helper.to_array(t)
            if array.dtype.itemsize == 1:
                kinds["8bit"] += array.nbytes
            elif array.dtype.kind == "f":
                kinds["float"] += array.nbytes
        kinds["graph"] += path.stat().st_size
    kinds["graph"] -= kinds["8bit"] + kinds["float"]
    return kinds


# ---------------------------------------------------------------------------------------


def run_variant(decode: Callable[[np.ndarray], str], utterances: Sequence[Utterance]) -> Tuple[List[str], float]:
    start = time.perf_counter()
    hyps = [decode(samples) for _, samples, _ in utterances]
    return hyps, time.perf_counter() - start


def front_end_rtfs(utterances: Sequence[Utterance], audio_s: float, rounds: int) -> Dict[str, float]:
    """RTF at 1 thread of each front end alone: kaldifeat (the PyTorch variant's) and
    kaldi-native-fbank (the exports'; sherpa-onnx runs the same C++ code without this
    process's Python list conversion, so its figure is a little high for sherpa)."""
    torch.set_num_threads(1)
    extractor = make_extractor("kaldifeat")
    front_ends = {"kaldifeat": lambda x: compute_features(torch.from_numpy(x), extractor), "knf": compute_fbank}
    return {name: min(run_variant(compute, utterances)[1] for _ in range(rounds)) / audio_s
            for name, compute in front_ends.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dirs", type=Path, nargs="+", required=True)
    parser.add_argument("--cuts", type=Path, nargs="+", required=True, help="dev then test cut manifests")
    parser.add_argument("--max-cuts", type=int, default=100, help="utterances per cut set")
    parser.add_argument("--rounds", type=int, default=2, help="speed rounds; the best is kept")
    parser.add_argument("--speed-cuts", type=int, default=30, help="utterances of the first cut set timed at 2 threads")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()

    for exp_dir in args.exp_dirs:  # every export checked before anything is measured
        load_manifest(exp_dir / "export")
    sets = {p.name.split("_cuts_")[-1].split(".")[0]: load_utterances(p, args.max_cuts) for p in args.cuts}
    all_utts = [u for utts in sets.values() for u in utts]
    audio_s = {name: sum(u[1].size for u in utts) / 16000 for name, utts in sets.items()}
    speed_utts = next(iter(sets.values()))[: args.speed_cuts]
    speed_audio = sum(u[1].size for u in speed_utts) / 16000
    fbank_rtf = front_end_rtfs(speed_utts, speed_audio, args.rounds)
    print(json.dumps({"front_end_rtf_1": fbank_rtf}), flush=True)
    rows: List[Dict[str, Any]] = []
    int8_bytes: Dict[str, Dict[str, int]] = {}  # model -> what its int8 ONNX files hold (bytes)
    names = [d.name for d in args.exp_dirs]
    # a model's label: its exp dir's name, with the parent's where two share a name
    labels = {d: (d.name if names.count(d.name) == 1 else f"{d.parent.name}/{d.name}") for d in args.exp_dirs}
    for exp_dir in args.exp_dirs:
        export_dir = exp_dir / "export"
        manifest = load_manifest(export_dir)
        files = manifest["files"]
        variants: List[Tuple[str, str, Callable[[int], Callable[[np.ndarray], str]], float]] = []
        symbols = read_tokens(export_dir / TOKENS_NAME)
        text_of = lambda tokens: tokens_to_text([symbols[t] for t in tokens], manifest["unit"])  # noqa: E731
        variants.append(("PyTorch fp32", "torch", lambda n: pytorch_decoder(exp_dir, text_of),
                         4 * manifest["num_parameters"] / 1e6))
        onnx_paths = {key: [export_dir / files[key][g] for g in ("encoder", "decoder", "joiner")] for key in ("onnx", "onnx_int8")}
        int8_bytes[labels[exp_dir]] = onnx_bytes_by_kind(onnx_paths["onnx_int8"])
        for int8 in (False, True):
            key = "onnx_int8" if int8 else "onnx"
            engine = choose_engine(manifest, "auto", streaming=False)
            variants.append((f"ONNX {'int8' if int8 else 'fp32'}", engine,
                             lambda n, i=int8: Recognizer(export_dir, int8=i, num_threads=n).transcribe_text,
                             file_size(onnx_paths[key])))
        variants.append(("TorchScript int8", "torch", lambda n: torchscript_decoder(export_dir, manifest, text_of),
                         file_size([export_dir / files["torchscript_int8"][g] for g in ("encoder", "decoder", "joiner")])))
        if manifest.get("streaming"):
            for int8 in (False, True):
                variants.append((f"ONNX {'int8' if int8 else 'fp32'} streaming",
                                 choose_engine(manifest, "auto", streaming=True),
                                 lambda n, i=int8: Recognizer(export_dir, int8=i, num_threads=n, streaming=True).transcribe_text,
                                 float("nan")))
        for name, engine, make, size in variants:
            row: Dict[str, Any] = {"model": labels[exp_dir], "variant": name, "engine": engine, "size_mb": size}
            gc.collect()
            torch.set_num_threads(1)
            with RssSampler() as rss:  # loading the model and decoding every utterance
                decode = make(1)
                hyps, _ = run_variant(decode, all_utts)
            row["peak_mb"] = rss.growth / 1e6
            i = 0
            for set_name, utts in sets.items():
                pairs = [(u[2], h) for u, h in zip(utts, hyps[i:i + len(utts)])]
                row[f"wer_{set_name}"] = word_errors(pairs).wer
                i += len(utts)
            for threads in (1, 2):
                torch.set_num_threads(threads)
                decode = make(threads)
                best = min(run_variant(decode, speed_utts)[1] for _ in range(args.rounds))
                row[f"rtf_{threads}"] = best / speed_audio
            row["rtf_1_model"] = row["rtf_1"] - fbank_rtf["kaldifeat" if name == "PyTorch fp32" else "knf"]
            if "streaming" in name:
                s = manifest["streaming"]
                chunk_ms = 40 * s["chunk_frames"]
                chunks = sum(int(np.ceil(u[1].size / 16000 * 1000 / chunk_ms)) for u in speed_utts)
                row["chunk_ms"] = chunk_ms
                row["compute_per_chunk_ms"] = 1000 * row["rtf_1"] * speed_audio / chunks
                # The front end's 3 frames; a TDNN's right context or an LSTM encoder's look-ahead.
                lookahead_ms = 30 + 40 * (s.get("context_frames", 0) + s.get("lookahead_frames", 0))
                row["latency_ms"] = chunk_ms + lookahead_ms + row["compute_per_chunk_ms"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    torch.set_num_threads(1)
    set_names = list(sets)
    header = ["model", "variant", "engine", "size (MB)", "RTF 1 thr", "RTF 2 thr", "RTF 1 thr w/o fbank", "peak mem (MB)"] + \
        [f"{s} WER (%)" for s in set_names] + ["chunk compute (ms)", "added latency (ms)"]
    print("\n| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + " |")
    for r in rows:
        cells = [r["model"], r["variant"], r["engine"], "" if np.isnan(r["size_mb"]) else f"{r['size_mb']:.2f}",
                 f"{r['rtf_1']:.4f}", f"{r['rtf_2']:.4f}", f"{r['rtf_1_model']:.4f}", f"{r['peak_mb']:.0f}"] + \
            [f"{r[f'wer_{s}']:.2f}" for s in set_names] + \
            ([f"{r['compute_per_chunk_ms']:.1f}", f"{r['latency_ms']:.0f}"] if "latency_ms" in r else ["", ""])
        print("| " + " | ".join(cells) + " |")
    print(f"\n(audio: {', '.join(f'{k} {v / 60:.1f} min' for k, v in audio_s.items())}; RTF on the first "
          f"{len(speed_utts)} utterances of {set_names[0]}, {speed_audio:.0f} s, best of {args.rounds}; the fbank "
          f"alone: kaldifeat {fbank_rtf['kaldifeat']:.4f}, kaldi-native-fbank {fbank_rtf['knf']:.4f})")
    ratios = []
    scored = set_names[1:] or set_names  # the WER differences on the test sets (the first set is the dev one)

    def wer_diffs(label: str, a: Dict[str, Any], b: Dict[str, Any]) -> str:
        return ", ".join(f"{s} WER {label} {a[f'wer_{s}'] - b[f'wer_{s}']:+.2f}" for s in scored)

    for model in dict.fromkeys(r["model"] for r in rows):
        by = {r["variant"]: r for r in rows if r["model"] == model}
        fp32, int8 = by["ONNX fp32"], by["ONNX int8"]
        parts = {kind: n / (fp32["size_mb"] * 1e6) for kind, n in int8_bytes[model].items()}  # over the fp32 files
        part = (f"{model}: int8/fp32 size {int8['size_mb'] / fp32['size_mb']:.3f} (8-bit tensors {parts['8bit']:.3f}, "
                f"float tensors {parts['float']:.3f}, graph {parts['graph']:.3f}), {wer_diffs('int8-fp32', int8, fp32)}, "
                f"PyTorch fp32 / ONNX int8 time {by['PyTorch fp32']['rtf_1'] / int8['rtf_1']:.2f}x "
                f"(fbank excluded {by['PyTorch fp32']['rtf_1_model'] / int8['rtf_1_model']:.2f}x)")
        if "ONNX fp32 streaming" in by:
            part += f", {wer_diffs('streaming-offline', by['ONNX fp32 streaming'], fp32)}"
        ratios.append(part)
    print("RATIOS " + " | ".join(ratios))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
