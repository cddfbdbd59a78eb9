"""local/export.py on a trained tiny model, then benchmarks/deploy.py (small) prints its table
and its ratio line."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_export_then_deploy_benchmark(tiny_teacher_exp, tiny_data_dir, tmp_path):
    exp = tmp_path / "teacher"
    shutil.copytree(tiny_teacher_exp, exp)
    cuts = [tiny_data_dir / "fbank" / f"librispeech_cuts_{p}.jsonl.gz" for p in ("dev-clean", "test-clean")]
    export = subprocess.run([sys.executable, str(REPO_ROOT / "local" / "export.py"), "--exp-dir", str(exp),
                             "--lang-dir", str(tiny_data_dir / "lang_bpe_100"), "--cuts", str(cuts[0])],
                            capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr[-3000:]
    assert "check onnx_int8 encoder: max |difference| to PyTorch" in export.stderr
    manifest = json.loads((exp / "export" / "export.json").read_text())
    assert manifest["unit"] == "bpe" and manifest["source"]["exp_dir"] == str(exp)
    out = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "deploy.py"), "--exp-dirs", str(exp),
                          "--cuts", *map(str, cuts), "--max-cuts", "3", "--rounds", "1", "--speed-cuts", "2"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| teacher |")]
    assert [line.split(" | ")[1] for line in table] == ["PyTorch fp32", "ONNX fp32", "ONNX int8", "TorchScript int8"]
    # the same greedy search on the same audio: the ONNX fp32 WERs are PyTorch's
    wers = {line.split(" | ")[1]: line.split(" | ")[8:10] for line in table}
    assert wers["ONNX fp32"] == wers["PyTorch fp32"]
    ratios = re.fullmatch(r"RATIOS teacher: int8/fp32 size (\S+) \(8-bit tensors (\S+), float tensors (\S+), graph (\S+)\), test-clean WER int8-fp32 \S+, "
                        r"PyTorch fp32 / ONNX int8 time \S+x \(fbank excluded \S+x\)", out.stdout.strip().splitlines()[-1])
    assert ratios, out.stdout[-2000:]
    total, *parts = map(float, ratios.groups())
    assert all(p > 0 for p in parts) and abs(sum(parts) - total) < 2e-3  # the parts add up to the int8 files
    assert parts[0] < 0.25  # 8-bit weights: at most a quarter of the fp32 file (a quarter of its weights)
    assert re.search(r"the fbank alone: kaldifeat \d\.\d{4}, kaldi-native-fbank \d\.\d{4}\)", out.stdout)


def test_export_refuses_a_lang_dir_of_another_size(tiny_teacher_exp, tiny_data_dir, tmp_path):
    from distill.lang.tokenizer import PHONES_NAME

    lang = tmp_path / "lang_phone"
    lang.mkdir()
    (lang / PHONES_NAME).write_text("".join(f"{p} {i}\n" for i, p in enumerate(["<blk>", "a", "b"])))
    out = subprocess.run([sys.executable, str(REPO_ROOT / "local" / "export.py"), "--exp-dir", str(tiny_teacher_exp),
                          "--lang-dir", str(lang), "--cuts", str(tmp_path / "none.jsonl.gz")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert f"{lang} is not the lang dir {tiny_teacher_exp} was trained with" in out.stderr
    assert not (tiny_teacher_exp / "export").exists()
