"""Experiment configs: YAML files, --set overrides, and errors that name their source."""
from __future__ import annotations

import pytest

from distill.train.config import load_config
from tests.conftest import REPO_ROOT

CONF = REPO_ROOT / "egs" / "librispeech" / "ASR" / "conf"


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("model:\n  encoder_dim: 64\n  nhead: 4\noptim:\n  base_lr: 0.01\n")
    config = load_config([path], ["optim.base_lr=2e-3", "train.num_epochs=3", "data.spec_augment=false", "kd.teacher_exp_dir="])
    assert config.model.encoder_dim == 64
    assert config.optim.base_lr == pytest.approx(2e-3)
    assert config.train.num_epochs == 3 and config.data.spec_augment is False
    assert config.kd.teacher_exp_dir == "" and not config.kd.enabled


def test_unknown_keys_name_their_source(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("optim:\n  base_lrr: 0.01\n")
    with pytest.raises(ValueError, match=r"typo.yaml: optim: unknown key 'base_lrr'"):
        load_config([path])
    with pytest.raises(ValueError, match="unknown section 'optimizer'"):
        load_config([], ["optimizer.base_lr=1"])
    with pytest.raises(ValueError, match="expected section.key=value"):
        load_config([], ["base_lr=1"])
    with pytest.raises(ValueError, match="kd: kd.weighting must be one of"):
        load_config([], ["kd.weighting=sometimes"])
    with pytest.raises(ValueError, match="train.num_epochs: cannot use"):
        load_config([], ["train.num_epochs=many"])


def test_recipe_configs_load():
    for name in ("teacher.yaml", "student_rnn.yaml", "student_dnn.yaml"):
        config = load_config([CONF / name])
        assert config.model.encoder in ("conformer", "lstm", "tdnn")
