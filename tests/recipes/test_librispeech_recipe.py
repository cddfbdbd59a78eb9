"""egs/librispeech/ASR/run.sh on a tiny demo corpus: stages 0-3 and their rerun, and the README's smoke run through stage 7."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import k2
import pytest
import torch

from distill.data.manifests import load_cuts
from tests.conftest import REPO_ROOT

RUN_SH = REPO_ROOT / "egs" / "librispeech" / "ASR" / "run.sh"


def run_recipe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(RUN_SH), "--demo", "true", "--demo-size", "tiny", "--dl-dir", str(tmp_path / "download"),
        "--data-dir", str(tmp_path / "data"), "--vocab-size", "100", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_stages_0_to_3_then_rerun_skips(tmp_path):
    out = run_recipe(tmp_path, "--stage", "0", "--stop-stage", "3")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = tmp_path / "data"
    assert (tmp_path / "download" / "LibriSpeech" / "train-clean-100").is_dir()
    for part in ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"):
        assert (data / "manifests" / f"librispeech_supervisions_{part}.jsonl.gz").is_file()
        cuts = load_cuts(data / "fbank" / f"librispeech_cuts_{part}.jsonl.gz").to_eager()
        assert all(c.has_features and c.features.type == "kaldifeat-fbank" for c in cuts)
    lang = data / "lang_bpe_100"
    for name in ("bpe.model", "tokens.txt", "words.txt", "L.pt", "L_disambig.pt", "LG.pt"):
        assert (lang / name).is_file(), name
    LG = k2.Fsa.from_dict(torch.load(lang / "LG.pt"))
    assert LG.num_arcs > 0
    assert "kaldifeat" in out.stdout + out.stderr  # the log says which extractor ran

    again = run_recipe(tmp_path, "--stage", "0", "--stop-stage", "3")
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stdout + again.stderr
    for what in ("Demo corpus already complete", "Manifests already in", "Features already in", "skipping"):
        assert what in log, what
    assert log.count("skipping") >= 4


def test_single_stage_and_unknown_option(tmp_path):
    out = run_recipe(tmp_path, "--stage", "0", "--stop-stage", "0")
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (tmp_path / "data").exists()  # only stage 0 ran
    bad = run_recipe(tmp_path, "--no-such-option", "1")
    assert bad.returncode != 0 and "invalid option" in bad.stderr


def test_no_corpus_and_no_network_names_both_ways_out(tmp_path):
    cmd = [str(RUN_SH), "--dl-dir", str(tmp_path / "nothing"), "--download", "false", "--stage", "0", "--stop-stage", "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "--demo true" in out.stderr and str(tmp_path / "nothing" / "LibriSpeech") in out.stderr


def test_smoke_run_of_the_readme_goes_through_stage_7(tmp_path):
    """The README's smoke run (conf/smoke, the tiny corpus): every stage connects, every model
    is decoded with every method, the results table lists them, and every model is exported
    and decodes from its export (sherpa-onnx for the teacher, streaming for the RNN student)
    to what the PyTorch model gives."""
    out = run_recipe(tmp_path, "--conf-dir", str(RUN_SH.parent / "conf" / "smoke"), "--exp-dir", str(tmp_path / "exp"),
                     "--stage", "0", "--stop-stage", "7")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    table = (tmp_path / "exp" / "results.md").read_text()
    # The students are decoded with the running average over their last epoch (conf/smoke/demo.yaml's
    # student_use_averaged_model), the teacher with its last epoch.
    running = {"teacher": False, "student_rnn_kd": True, "student_dnn_kd": True}
    for model, use_running in running.items():
        label = ", running average" if use_running else ""
        for method in ("greedy_search", "modified_beam_search", "fast_beam_search", "fast_beam_search_nbest_LG"):
            row = next((line for line in table.splitlines() if line.startswith(f"| {model} |") and f"| {method} (" in line), "")
            assert f"| {method} (epoch 6, avg 1{label}) |" in row, (model, method, table)
            for part in ("test-clean", "test-other"):
                assert list((tmp_path / "exp" / model / method).glob(f"speakers-{part}-*.txt")), (model, method, part)
    # The conditions side by side: one row per model and method, a column per part.
    parts = ("dev-clean", "dev-other", "test-clean", "test-other")
    assert "| model | params | method | " + " | ".join(f"{p} WER (%)" for p in parts) + " |" in table
    # Stage 7: the exports, and decoding from them equals decoding the checkpoints.
    audio = sorted((tmp_path / "download" / "LibriSpeech" / "test-clean").rglob("*.flac"))[:3]
    transcribe = [sys.executable, str(REPO_ROOT / "local" / "transcribe.py")]
    for model, extra in (("teacher", ["--engine", "sherpa"]), ("student_rnn_kd", ["--streaming", "--chunk-ms", "160"]),
                         ("student_dnn_kd", ["--streaming"])):
        export = tmp_path / "exp" / model / "export"
        assert (export / "encoder.int8.onnx").is_file()
        assert json.loads((export / "export.json").read_text())["source"]["use_averaged_model"] == running[model]
        exported = subprocess.run(transcribe + ["--export-dir", str(export), *extra, *map(str, audio)],
                                  capture_output=True, text=True, timeout=300)
        assert exported.returncode == 0, exported.stderr[-2000:]
        averaging = ["--use-averaged-model"] if running[model] else []
        checkpoint = subprocess.run(transcribe + ["--exp-dir", str(tmp_path / "exp" / model), *averaging, "--lang-dir",
                                                  str(tmp_path / "data" / "lang_bpe_100"), *map(str, audio)],
                                    capture_output=True, text=True, timeout=300)
        assert checkpoint.returncode == 0, checkpoint.stderr[-2000:]
        assert exported.stdout == checkpoint.stdout, model
    # Stage 7 again: every export is of the same checkpoints and averaging, so none is redone.
    again = run_recipe(tmp_path, "--conf-dir", str(RUN_SH.parent / "conf" / "smoke"), "--exp-dir", str(tmp_path / "exp"),
                       "--stage", "7", "--stop-stage", "7")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("is newer than its last checkpoint") == 3, again.stdout + again.stderr


def test_students_side_by_side_report_a_failure_with_its_log(tmp_path):
    """Stage 5 trains the student types as background jobs (--student-jobs 2): a failing one
    stops the stage with a non-zero status and names its log, which holds train.py's error."""
    exp = tmp_path / "exp"
    out = run_recipe(tmp_path, "--exp-dir", str(exp), "--stage", "5", "--stop-stage", "5", "--student-kd", "false")
    assert out.returncode != 0
    log = out.stdout + out.stderr
    assert "student failed: see" in log, log[-3000:]
    named = log.split("student failed: see ")[1].split()[0]
    assert Path(named).parent == exp and Path(named).name in ("stage5_rnn.log", "stage5_dnn.log")
    assert "run the lang stage (stage 3) first" in Path(named).read_text()  # train.py names what is missing


@pytest.mark.parametrize("args, message", [
    (["--stage", "9"], "--stage must be a stage number from 0 to 7, got '9'"),
    (["--stage", "-1"], "--stage must be a stage number from 0 to 7, got '-1'"),
    (["--stage", "two"], "--stage must be a stage number from 0 to 7, got 'two'"),
    (["--stage", "3", "--stop-stage", "1"], "--stage 3 comes after --stop-stage 1: no stage would run"),
    (["2", "--stage", "9"], "unexpected argument '2'"),
])
def test_stage_options_that_would_run_nothing_or_everything_are_refused(tmp_path, args, message):
    out = run_recipe(tmp_path, *args)
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert "Stage" not in out.stdout and not (tmp_path / "download").exists()
