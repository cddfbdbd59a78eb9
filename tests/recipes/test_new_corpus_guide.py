"""docs/new_corpus.md, path A, followed literally: copy egs/TEMPLATE, set its six values for a
corpus in Kaldi's format, run stages 0-6 (tiny models), and check the results table."""
from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from distill.synth.kaldi_demo import generate_kaldi_demo, tiny_config
from distill.testing import TINY_RECIPE_CONFIGS
from tests.conftest import REPO_ROOT

GUIDE = REPO_ROOT / "docs" / "new_corpus.md"
TEMPLATE_RUN_SH = REPO_ROOT / "egs" / "TEMPLATE" / "ASR" / "run.sh"


def guide_block(step: str) -> str:
    """The first fenced code block after the guide's numbered step ``step`` of path A."""
    text = GUIDE.read_text()
    path_a = text[text.index("## Path A"):text.index("## Path B")]
    after = path_a[path_a.index(f"\n{step}. "):]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1)


def set_values(run_sh: Path, values: dict) -> None:
    """Step 2: replace the value of each ``name=`` line between the marked lines."""
    text = run_sh.read_text()
    for name, value in values.items():
        text, count = re.subn(rf"^{name}=\S*", f"{name}={value}", text, count=1, flags=re.M)
        assert count == 1, name
    run_sh.write_text(text)


def test_template_is_short_and_holds_no_stage_logic():
    lines = TEMPLATE_RUN_SH.read_text().splitlines()
    assert len(lines) < 40
    assert not any(re.search(r"python|stage\s*-le|local/\w+\.py", line) for line in lines)


@pytest.fixture
def recipe_copy():
    """Step 1 of the guide, inside the repository (path.sh is a relative link); removed after."""
    name = f"guide_test_{uuid.uuid4().hex[:8]}"
    command = guide_block("1").strip()
    assert command == "cp -r egs/TEMPLATE egs/mycorpus"
    subprocess.run(command.replace("mycorpus", name), shell=True, cwd=REPO_ROOT, check=True)
    yield REPO_ROOT / "egs" / name / "ASR"
    shutil.rmtree(REPO_ROOT / "egs" / name)


def test_guide_path_a_trains_distills_and_decodes(recipe_copy, tmp_path):
    corpus_dir = generate_kaldi_demo(tmp_path / "download", tiny_config(seed=5), num_jobs=2)
    # Step 2, with the guide's values but this corpus's folder.
    step2 = dict(line.split("#")[0].strip().split("=", 1) for line in guide_block("2").strip().splitlines())
    assert set(step2) == {"corpus", "corpus_dir", "train_part", "dev_parts", "test_parts", "unit"}
    step2["corpus_dir"] = str(corpus_dir)
    set_values(recipe_copy / "run.sh", step2)
    conf = tmp_path / "conf"
    conf.mkdir()
    for name, text in TINY_RECIPE_CONFIGS.items():
        (conf / name).write_text(text)
    # Step 3: the guide's command, with tiny models, a small BPE and the fast decoders.
    command = guide_block("3").strip().splitlines()[1].split("#")[0].split()
    assert command == ["./run.sh", "--stage", "0", "--stop-stage", "6"]
    out = subprocess.run(
        command + ["--vocab-size", "60", "--conf-dir", str(conf), "--students", "rnn",
                   "--decode-methods", "greedy_search fast_beam_search"],
        cwd=recipe_copy, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    for part in ("train", "dev", "test"):
        assert (recipe_copy / "data" / "fbank" / f"kaldi_cuts_{part}.jsonl.gz").is_file()
    table = (recipe_copy / "exp" / "results.md").read_text()
    for what in ("teacher", "student_rnn_kd", "greedy_search", "fast_beam_search", "WER (%)", "### test"):
        assert what in table, what


def test_worked_example_prepares_its_kaldi_format_demo(tmp_path):
    """egs/kaldi_demo/ASR, stages 0-3 (stages 4-6 are the same code as the guide test's)."""
    run_sh = REPO_ROOT / "egs" / "kaldi_demo" / "ASR" / "run.sh"
    corpus_dir = tmp_path / "download" / "kaldi_demo" / "data"
    out = subprocess.run(
        [str(run_sh), "--demo", "true", "--demo-size", "tiny", "--corpus-dir", str(corpus_dir),
         "--data-dir", str(tmp_path / "data"), "--stage", "0", "--stop-stage", "3"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    wav_scp = (corpus_dir / "train" / "wav.scp").read_text().splitlines()
    assert any(line.endswith("|") for line in wav_scp) and any(not line.endswith("|") for line in wav_scp)
    assert (corpus_dir / "train" / "segments").is_file()
    assert (tmp_path / "data" / "lang_bpe_100" / "LG.pt").is_file()
