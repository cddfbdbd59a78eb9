"""Export (ONNX, TorchScript, int8) and the deployment runtime: equivalence with PyTorch,
sherpa-onnx decoding the exports offline and streaming, streaming equal to offline, and the
bad inputs (a model that cannot stream, a killed export, files of different exports)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
import soundfile
import torch

from distill.data.features import make_extractor
from distill.decode.greedy import greedy_search
from distill.deploy.features import compute_fbank, read_audio
from distill.deploy.manifest import MANIFEST_NAME, ExportFolderError, load_manifest
from distill.deploy.recognizer import TAIL_PADDING_S, Recognizer
from distill.export import exporter
from distill.export.exporter import ExportError, export_model
from distill.export.wrappers import PositionsInGraph, TimeDelayMatMul
from distill.models.conformer import PositionalEncoding
from distill.models.registry import build_transducer
from distill.models.transducer import Transducer
from distill.train.config import load_config
from tests.conftest import REPO_ROOT

SMOKE = REPO_ROOT / "egs" / "librispeech" / "ASR" / "conf" / "smoke"
VOCAB = 100
SYMBOLS = ["<blk>"] + [f"\u2581t{i}" for i in range(1, VOCAB)]

#: name -> (smoke config, overrides)
MODELS = {
    "teacher": ("teacher", []),
    "teacher_absolute": ("teacher", ["model.positional_encoding=absolute"]),  # the TIMIT teacher's sinusoids
    "rnn_lstm": ("student_rnn", []),
    "rnn_stateless": ("student_rnn", ["model.decoder=stateless", "model.context_size=2"]),
    # 2 frames of look-ahead before the LSTMs: chunks of 4 (n + 2) + 3 frames, padded at the end
    "rnn_lookahead_stateless": ("student_rnn", ["model.decoder=stateless", "model.context_size=2", "model.lookahead_frames=2"]),
    "dnn_lstm": ("student_dnn", []),
    "dnn_stateless": ("student_dnn", ["model.decoder=stateless", "model.context_size=2"]),
}


pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


def emitting_model(name: str) -> Transducer:
    """A random model of the smoke config ``name`` that emits many tokens: the output bias
    (the blank prior) is zeroed and the joiner's output sharpened, so that every frame's
    argmax matters and two decoders agree only if they compute the same thing."""
    config, overrides = MODELS[name]
    model_config = load_config([SMOKE / f"{config}.yaml"], overrides).model
    model_config.vocab_size = VOCAB
    torch.manual_seed(3)
    model = build_transducer(model_config).eval()
    with torch.no_grad():
        model.joiner.output_linear.bias.zero_()
        model.joiner.output_linear.weight.mul_(4.0)
    return model


@pytest.fixture(scope="module")
def audio_files(tiny_corpus_dl_dir) -> List[Path]:
    files = sorted((tiny_corpus_dl_dir / "LibriSpeech" / "test-clean").rglob("*.flac"))[:2]
    assert len(files) == 2
    return files


@pytest.fixture(scope="module")
def exports(tmp_path_factory, audio_files):
    """Every model of MODELS exported once: name -> (model, export dir)."""
    root = tmp_path_factory.mktemp("exports")
    extractor = make_extractor("kaldifeat")
    feats = [torch.from_numpy(extractor.extract(read_audio(f, 16000), 16000)) for f in audio_files]
    lens = torch.tensor([f.size(0) for f in feats])
    batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    torch.set_num_threads(1)
    out = {}
    for name in MODELS:
        model = emitting_model(name)
        export_model(model, SYMBOLS, root / name / "export", batch, lens, name, chunk_frames=4)
        out[name] = (model, root / name / "export")
    return out


def torch_greedy(model: Transducer, samples: np.ndarray, streaming: Optional[Dict[str, int]] = None) -> List[int]:
    """PyTorch greedy search on the audio; with a manifest's ``streaming`` layout, on the
    encoder frames of the whole chunks only (sherpa-onnx decodes no partial chunk)."""
    feats = torch.from_numpy(make_extractor("kaldifeat").extract(samples, 16000)).unsqueeze(0)
    with torch.no_grad():
        enc, lens = model.encode(feats, torch.tensor([feats.size(1)]))
        if streaming is not None:
            shift = streaming["decode_chunk_len"]
            chunks = (feats.size(1) - streaming["T"]) // shift + 1
            lens = lens.clamp(max=chunks * shift // 4)
        return greedy_search(model, enc, lens)[0]


def test_kaldi_native_fbank_matches_training_features(audio_files):
    for path in audio_files:
        samples = read_audio(path, 16000)
        ours = compute_fbank(samples)
        training = make_extractor("kaldifeat").extract(samples, 16000)
        assert ours.shape == training.shape
        assert np.abs(ours - training).max() < 1e-3


def test_export_folder_contents(exports):
    for name, (model, export_dir) in exports.items():
        manifest = load_manifest(export_dir)
        names = {p.name for p in export_dir.iterdir()}
        for graph in ("encoder", "decoder", "joiner"):
            assert {f"{graph}.onnx", f"{graph}.int8.onnx", f"{graph}.pt", f"{graph}.int8.pt"} <= names
        assert ("encoder-streaming.onnx" in names) == name.startswith("rnn")
        assert manifest["vocab_size"] == VOCAB and manifest["num_parameters"] == sum(p.numel() for p in model.parameters())
        assert all(diff < 1e-3 for f, diff in manifest["checks_max_abs_diff"].items() if "int8" not in f)
        assert manifest["sherpa_onnx"]["offline"] == name.endswith("stateless") or name.startswith("teacher")
        # int8 files are smaller (these smoke models are tiny, so the graphs' structure and
        # the float biases, norms and scales weigh more than in real ones: benchmarks/deploy.py
        # reports the real ratio)
        fp32 = sum((export_dir / f"{g}.onnx").stat().st_size for g in ("encoder", "decoder", "joiner"))
        int8 = sum((export_dir / f"{g}.int8.onnx").stat().st_size for g in ("encoder", "decoder", "joiner"))
        assert int8 < fp32


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_greedy_equals_pytorch(exports, audio_files, name):
    model, export_dir = exports[name]
    recognizer = Recognizer(export_dir, engine="ort")
    for path in audio_files:
        samples = read_audio(path, 16000)
        expected = torch_greedy(model, samples)
        assert len(expected) > 5
        assert recognizer.transcribe(samples).tokens == expected


@pytest.mark.parametrize("name", ["teacher", "rnn_stateless", "rnn_lookahead_stateless", "dnn_stateless"])
def test_sherpa_onnx_offline_decodes_like_pytorch(exports, audio_files, name):
    model, export_dir = exports[name]
    recognizer = Recognizer(export_dir, engine="sherpa")
    for path in audio_files:
        samples = read_audio(path, 16000)
        result = recognizer.transcribe(samples)
        assert result.tokens == torch_greedy(model, samples)
        assert result.text == " ".join(SYMBOLS[t][1:] for t in result.tokens)


@pytest.mark.parametrize("name", ["rnn_stateless", "rnn_lookahead_stateless"])
def test_sherpa_onnx_online_decodes_the_streaming_student(exports, audio_files, name):
    """sherpa-onnx's streaming recognizer (its "lstm" model) on the audio gives what our
    PyTorch greedy search gives on the same audio with the tail padding sherpa needs."""
    model, export_dir = exports[name]
    recognizer = Recognizer(export_dir, engine="sherpa", streaming=True)
    for path in audio_files:
        samples = read_audio(path, 16000)
        result = recognizer.transcribe(samples, chunk_samples=3000)
        padded = np.concatenate([samples, np.zeros(int(TAIL_PADDING_S * 16000), np.float32)])
        assert result.tokens == torch_greedy(model, padded, load_manifest(export_dir)["streaming"])
        assert len(result.partials) > 3 and result.partials[-1] == result.text


@pytest.mark.parametrize("name", ["rnn_lstm", "rnn_stateless", "rnn_lookahead_stateless", "dnn_lstm"])
@pytest.mark.parametrize("int8", [False, True])
def test_streaming_equals_offline(exports, audio_files, name, int8):
    _, export_dir = exports[name]
    offline = Recognizer(export_dir, engine="ort", int8=int8)
    online = Recognizer(export_dir, engine="ort", int8=int8, streaming=True)
    for path in audio_files:
        samples = read_audio(path, 16000)
        streamed = online.transcribe(samples, chunk_samples=2000)
        if int8:  # dynamic int8 quantizes activations per call: a chunk is scaled unlike the whole
            assert len(streamed.tokens) > 5
        else:
            assert streamed.tokens == offline.transcribe(samples).tokens
        # partial results grow as audio arrives
        lengths = [len(p) for p in streamed.partials]
        assert lengths == sorted(lengths) and lengths[0] < lengths[-1]


def test_streaming_layout_of_a_lookahead_student(exports):
    """The look-ahead widens each chunk by 4 R feature frames, not its shift, and the manifest
    and sherpa-onnx's metadata say so."""
    for name, lookahead in (("rnn_stateless", 0), ("rnn_lookahead_stateless", 2)):
        manifest = load_manifest(exports[name][1])
        streaming = manifest["streaming"]
        assert streaming["lookahead_frames"] == lookahead
        assert streaming["T"] == 4 * (4 + lookahead) + 3 and streaming["decode_chunk_len"] == 16
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(exports[name][1] / "encoder-streaming.onnx")).metadata_props}
        assert meta["T"] == str(streaming["T"]) and meta["decode_chunk_len"] == "16"


def test_torchscript_exports_run(exports, audio_files):
    model, export_dir = exports["rnn_lstm"]
    feats = torch.from_numpy(make_extractor("kaldifeat").extract(read_audio(audio_files[0], 16000), 16000)).unsqueeze(0)
    lens = torch.tensor([feats.size(1)])
    with torch.no_grad():
        expected, _ = model.encode(feats, lens)
        expected = model.joiner.encoder_proj(expected)
        for name, tol in (("encoder.pt", 1e-4), ("encoder.int8.pt", 0.3)):
            out, out_lens = torch.jit.load(str(export_dir / name))(feats, lens)
            assert out_lens.tolist() == lens.div(4, rounding_mode="floor").sub(1).tolist() or out.shape == expected.shape
            assert (out - expected).abs().max() < tol * max(1.0, float(expected.abs().max()))


@pytest.mark.parametrize("kernel_size,dilation,bias", [(3, 1, True), (3, 3, True), (5, 2, False), (1, 1, True)])
def test_time_delay_matmul_computes_the_convolution(kernel_size, dilation, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 5, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2, bias=bias)
    matmul = TimeDelayMatMul(conv)
    for num_frames in (1, 4, 29):  # shorter than the padding, and longer
        x = torch.randn(2, 6, num_frames)
        with torch.no_grad():
            assert torch.allclose(matmul(x), conv(x), atol=1e-5)


def test_positions_in_graph_equal_the_table():
    table = PositionalEncoding(8, 0.0).eval()
    computed = PositionsInGraph(table).eval()
    for num_frames in (1, 7, 2100):  # 2100: past the precomputed 2000 positions
        x = torch.randn(2, num_frames, 8)
        assert torch.allclose(computed(x), table(x), atol=1e-6), num_frames


def test_absolute_positions_are_computed_in_the_graph(exports):
    """The positional table is not stored in the file (it was 1.5 MB of the TIMIT teacher's),
    and the encoder takes inputs longer than the table had positions."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model, export_dir = exports["teacher_absolute"]
    graph = onnx.load(str(export_dir / "encoder.onnx")).graph
    tensors = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute]
    d_model = model.encoder.output_dim
    assert max(numpy_helper.to_array(t).size for t in tensors) < 2000 * d_model
    x = torch.randn(1, 4 * 2010, 80)  # 2009 encoder frames
    lens = torch.tensor([x.size(1)])
    session = ort.InferenceSession(str(export_dir / "encoder.onnx"), providers=["CPUExecutionProvider"])
    out, out_lens = session.run(None, {"x": x.numpy(), "x_lens": lens.numpy()})
    with torch.no_grad():
        enc, enc_lens = model.encoder(x, lens)
        expected = model.joiner.encoder_proj(enc)
    assert out_lens.tolist() == enc_lens.tolist() and out.shape[1] > 2000
    assert np.abs(out - expected.numpy()).max() < 1e-3 * max(1.0, float(expected.abs().max()))


def test_time_delay_matmul_refuses_other_convolutions():
    for conv in (torch.nn.Conv1d(4, 4, 3, padding=1, stride=2), torch.nn.Conv1d(4, 4, 3, padding=0),
                 torch.nn.Conv1d(4, 4, 3, padding=1, groups=2)):
        with pytest.raises(ExportError, match="TimeDelayMatMul"):
            TimeDelayMatMul(conv)


def test_convolutions_over_time_are_integer_matrix_products_in_int8(exports):
    """onnxruntime's integer 1-D convolution was slower than fp32 (RESULTS.md, Deployment):
    the int8 graphs of the TDNN and of the Conformer (pointwise convolutions) multiply integer
    matrices and have no integer convolution; the models themselves keep their convolutions."""
    import onnx

    for name in ("dnn_lstm", "teacher"):
        model, export_dir = exports[name]
        ops = [n.op_type for n in onnx.load(str(export_dir / "encoder.int8.onnx")).graph.node]
        assert "ConvInteger" not in ops, name
        convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv1d) and m.groups == 1]
        assert convs and ops.count("MatMulInteger") >= len(convs), name


def test_teacher_cannot_stream(exports):
    _, export_dir = exports["teacher"]
    with pytest.raises(ExportFolderError, match="offline only"):
        Recognizer(export_dir, streaming=True)


def test_lstm_predictor_refused_by_sherpa_with_the_reason(exports):
    _, export_dir = exports["rnn_lstm"]
    with pytest.raises(ExportFolderError, match="LSTM predictor.*--engine ort"):
        Recognizer(export_dir, engine="sherpa")


def test_unknown_encoder_is_refused(tmp_path):
    model = emitting_model("teacher")
    model.encoder = torch.nn.Identity()
    with pytest.raises(ExportError, match="Unknown encoder Identity"):
        export_model(model, SYMBOLS, tmp_path / "export", torch.zeros(1, 50, 80), torch.tensor([50]), "odd")


def test_wrong_number_of_tokens_is_refused(tmp_path):
    with pytest.raises(ExportError, match="99 tokens for a model with 100 outputs"):
        export_model(emitting_model("dnn_lstm"), SYMBOLS[:-1], tmp_path / "export", torch.zeros(1, 50, 80),
                     torch.tensor([50]), "dnn")


def test_killed_export_leaves_the_old_folder_and_nothing_loadable(tmp_path, exports, monkeypatch):
    _, good = exports["dnn_lstm"]
    target = tmp_path / "export"
    shutil.copytree(good, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(exporter, "write_tokens", die)  # dies after every graph was written
    with pytest.raises(KeyboardInterrupt):
        export_model(emitting_model("dnn_lstm"), SYMBOLS, target, torch.zeros(1, 60, 80), torch.tensor([60]), "dnn")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no half-written folder left beside it
    fresh = tmp_path / "new"
    with pytest.raises(KeyboardInterrupt):
        export_model(emitting_model("dnn_lstm"), SYMBOLS, fresh, torch.zeros(1, 60, 80), torch.tensor([60]), "dnn")
    assert not fresh.exists()
    with pytest.raises(ExportFolderError, match="does not exist"):
        Recognizer(fresh)


def test_files_of_different_exports_are_refused(tmp_path, exports):
    mixed = tmp_path / "mixed"
    shutil.copytree(exports["rnn_stateless"][1], mixed)
    shutil.copy(exports["dnn_stateless"][1] / "decoder.onnx", mixed / "decoder.onnx")
    with pytest.raises(ExportFolderError, match="decoder.onnx is not the file exported with the others"):
        Recognizer(mixed)
    # a tokens.txt of another lang dir
    shutil.copytree(exports["teacher"][1], tmp_path / "tok")
    (tmp_path / "tok" / "tokens.txt").write_text("".join(f"a{i} {i}\n" for i in range(50)))
    with pytest.raises(ExportFolderError, match="tokens.txt"):
        Recognizer(tmp_path / "tok")
    # an export folder without export.json (an unfinished one)
    shutil.copytree(exports["teacher"][1], tmp_path / "unfinished")
    (tmp_path / "unfinished" / MANIFEST_NAME).unlink()
    with pytest.raises(ExportFolderError, match="not a finished export"):
        Recognizer(tmp_path / "unfinished")


def test_metadata_mismatch_is_refused(tmp_path, exports):
    """Files whose hashes were re-recorded but whose metadata disagree (e.g. a decoder of a
    model with another vocabulary) are still refused, naming the key."""
    import onnx

    folder = tmp_path / "meta"
    shutil.copytree(exports["dnn_lstm"][1], folder)
    decoder = onnx.load(str(folder / "decoder.onnx"))
    for prop in decoder.metadata_props:
        if prop.key == "vocab_size":
            prop.value = "500"
    onnx.save(decoder, str(folder / "decoder.onnx"))
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    from distill.deploy.manifest import sha256_of

    manifest["sha256"]["decoder.onnx"] = sha256_of(folder / "decoder.onnx")
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ExportFolderError, match="vocab_size=500"):
        Recognizer(folder, engine="ort")


def test_streaming_export_needs_global_feature_norm():
    from distill.export.wrappers import StreamingLstmEncoder

    config, overrides = MODELS["rnn_lstm"]
    model_config = load_config([SMOKE / f"{config}.yaml"], overrides + ["model.feature_norm=utterance"]).model
    model_config.vocab_size = VOCAB
    with pytest.raises(ExportError, match="feature_norm 'global'"):
        StreamingLstmEncoder(build_transducer(model_config))


def test_cli_decodes_without_torch_and_reports_failures_at_the_end(exports, audio_files, tmp_path):
    """distill-transcribe (local/transcribe.py --export-dir) prints each good file, reports the
    bad one at the end with its reason and exits 1, and never imports torch."""
    import subprocess
    import sys

    _, export_dir = exports["rnn_lstm"]
    bad = tmp_path / "bad.wav"
    soundfile.write(str(bad), np.zeros(800, np.float32), 8000)
    code = ("import sys\nfrom distill.deploy.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    assert 'torch' not in sys.modules, 'torch imported'\n    raise\n")
    args = ["--export-dir", str(export_dir), "--streaming", "--chunk-ms", "200", str(audio_files[0]), str(bad),
            str(audio_files[1])]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 1, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [str(audio_files[0]), str(audio_files[1])]
    assert f"{bad}: {bad} is sampled at 8000 Hz" in out.stderr and "1 of 3 file(s) failed" in out.stderr
    assert f"{audio_files[0]} [200 ms]" in out.stderr  # partial results as the audio arrives
    via_local = subprocess.run([sys.executable, str(REPO_ROOT / "local" / "transcribe.py"), *args],
                               capture_output=True, text=True, timeout=120)
    assert via_local.returncode == 1 and via_local.stdout == out.stdout
