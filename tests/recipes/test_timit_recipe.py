"""egs/timit/ASR/run.sh: stages 0-6 on the tiny TIMIT-layout demo corpus with tiny models, and
a missing corpus."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from lhotse import load_manifest

from distill.testing import TINY_RECIPE_CONFIGS
from tests.conftest import REPO_ROOT

RUN_SH = REPO_ROOT / "egs" / "timit" / "ASR" / "run.sh"



def run_recipe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(RUN_SH), "--dl-dir", str(tmp_path / "download"), "--data-dir", str(tmp_path / "data"),
           "--exp-dir", str(tmp_path / "exp"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_stages_0_to_7_on_the_tiny_demo(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    for name, text in TINY_RECIPE_CONFIGS.items():
        (conf / name).write_text(text)
    out = run_recipe(tmp_path, "--demo", "true", "--demo-size", "tiny", "--conf-dir", str(conf),
                     "--students", "rnn", "--decode-methods", "greedy_search fast_beam_search_nbest_LG",
                     "--student-avg", "3", "--stage", "0", "--stop-stage", "7")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    data, exp = tmp_path / "data", tmp_path / "exp"
    assert (tmp_path / "download" / "TIMIT" / "data" / "TRAIN").is_dir()
    phones = {line.split()[0] for line in (data / "lang_phone" / "phones.txt").read_text().splitlines()}
    for part in ("TRAIN", "DEV", "TEST"):
        sups = load_manifest(data / "manifests" / f"timit_supervisions_{part}.jsonl.gz")
        assert len(sups) > 0
        for sup in sups:  # texts are 39-set phone sequences starting and ending with silence
            assert sup.text.split()[0] == sup.text.split()[-1] == "sil"
            assert set(sup.text.split()) <= phones
    assert len(phones) <= 40  # 39 phones + <blk> at most
    # run.sh's stage 5: each student alone and distilled, seeds 1 and 2.
    students = [f"student_rnn_{kind}_seed{seed}" for kind in ("alone", "kd") for seed in (1, 2)]
    assert sorted(d.name for d in exp.glob("student_*")) == sorted(students)
    for name in ["teacher"] + students:
        summaries = [json.loads(p.read_text()) for p in (exp / name).glob("*/summary-*.json")]
        assert {s["method"] for s in summaries} == {"greedy_search", "fast_beam_search_nbest_LG"}
        assert all(s["error_name"] == "PER" and s["cer"] is None for s in summaries)
        # --student-avg 3 on students of 2 epochs averages both, with the running average
        # (run.sh's --student-use-averaged-model); the teacher keeps --avg 1, its end point.
        assert {s["avg"] for s in summaries} == {1 if name == "teacher" else 2}, name
        assert {s["use_averaged_model"] for s in summaries} == {name != "teacher"}, name
    for name in students:  # alone: no teacher; distilled: the stage-4 teacher; the run's seed
        config = yaml.safe_load((exp / name / "config.yaml").read_text())
        assert config["kd"]["teacher_exp_dir"] == ("" if "alone" in name else str(exp / "teacher"))
        assert config["train"]["seed"] == int(name[-1])
    table = (exp / "results.md").read_text()
    assert "PER (%)" in table and "CER" not in table
    assert "TEST, mean over seeds" in table
    assert "student_rnn_kd (mean of 2 seeds)" in table and "student_rnn_alone (mean of 2 seeds)" in table
    # Stage 7: every model exported, phones as units, the causal student streamable.
    for name in ["teacher"] + students:
        manifest = json.loads((exp / name / "export" / "export.json").read_text())
        assert manifest["unit"] == "phone" and manifest["vocab_size"] == len(phones)
        assert (manifest["streaming"] is None) == (name == "teacher")
        assert manifest["source"]["avg"] == (1 if name == "teacher" else 2), name
        assert manifest["source"]["use_averaged_model"] == (name != "teacher"), name


def test_missing_corpus_says_it_is_never_downloaded(tmp_path):
    out = run_recipe(tmp_path, "--corpus-dir", str(tmp_path / "nowhere"), "--stage", "0", "--stop-stage", "0")
    assert out.returncode != 0
    assert "never downloaded" in out.stderr and str(tmp_path / "nowhere" / "data" / "TRAIN") in out.stderr
