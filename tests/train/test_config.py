"""Experiment configs: YAML files, --set overrides, and errors that name their source."""
from __future__ import annotations

import pytest

from distill.train.config import load_config, recipe_config_files
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
    for name in ("teacher", "student_rnn", "student_dnn"):
        config = load_config(recipe_config_files(CONF, name))
        assert config.model.encoder in ("conformer", "lstm", "tdnn")


def test_recipe_configs_are_layered_without_restating_defaults():
    """Every recipe's configs: common.yaml holds what all models share, the model files the
    rest; no file restates a dataclass default (defaults live in the dataclasses only)."""
    import yaml

    from distill.train.config import ExperimentConfig

    defaults = ExperimentConfig().to_dict()
    for conf in (CONF, CONF / "smoke", REPO_ROOT / "egs" / "timit" / "ASR" / "conf"):
        assert (conf / "common.yaml").is_file(), conf
        for path in sorted(conf.glob("*.yaml")):
            layers = yaml.safe_load(path.read_text()) or {}
            if path.name == "demo.yaml":  # an overlay: its teacher and students sections are layers
                layers = {s: v for part in ("teacher", "students") for s, v in (layers.get(part) or {}).items()}
            for section, values in layers.items():
                for key, value in values.items():
                    if section == "kd":
                        continue  # the students' distillation settings are read where they are
                    default = defaults[section][key]
                    assert value != default, (path, section, key)


def test_demo_overlay_is_one_more_layer_under_the_command_line(tmp_path):
    """conf/demo.yaml's teacher/students sections go after the model's files and before --set;
    the LibriSpeech demo budget: the teacher 3 epochs on the speed-perturbed cuts, the students 6 on the original cuts,
    without SpecAugment."""
    demo = CONF / "demo.yaml"
    teacher = load_config(recipe_config_files(CONF, "teacher"), overlays=[(demo, "teacher")])
    assert teacher.train.num_epochs == 3 and teacher.data.speed_perturbed and teacher.data.spec_augment
    for name in ("student_rnn", "student_dnn"):
        student = load_config(recipe_config_files(CONF, name), overlays=[(demo, "students")])
        before = load_config(recipe_config_files(CONF, name), ["train.num_epochs=6", "data.speed_perturbed=false",
                                                                 "data.spec_augment=false"])
        assert student.to_dict() == before.to_dict(), name
    wins = load_config(recipe_config_files(CONF, "teacher"), ["train.num_epochs=1"], [(demo, "teacher")])
    assert wins.train.num_epochs == 1
    bad = tmp_path / "demo.yaml"
    bad.write_text("teachers:\n  train:\n    num_epochs: 1\n")
    with pytest.raises(ValueError, match=r"demo.yaml: unknown overlay section\(s\) 'teachers'"):
        load_config([], overlays=[(bad, "teacher")])
    bad.write_text("students:\n  train:\n    num_epoch: 1\n")
    with pytest.raises(ValueError, match=r"demo.yaml \(students\): train: unknown key 'num_epoch'"):
        load_config([], overlays=[(bad, "students")])
