"""Training a student with lattice distillation from a trained (tiny) teacher."""
from __future__ import annotations

import math
import re

import k2
import pytest
import torch

from distill.losses.lattice_kd import KdConfig, pruned_lattice_kd
from distill.models.registry import build_transducer
from distill.testing import TINY_MODEL, tiny_training_config
from distill.train import checkpoint as ckpt
from distill.train.config import load_config
from distill.train.losses import load_teacher, make_loss_fn
from distill.train.trainer import Trainer, parameter_checksum

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


def test_student_distills_from_teacher(tiny_data_dir, tiny_teacher_exp, tmp_path):
    teacher_before = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tiny_teacher_exp, 4))["model"]
    student = [
        "model.encoder_dim=16", "model.dim_feedforward=32", "model.decoder_dim=16", "model.joiner_dim=16",
        f"kd.teacher_exp_dir={tiny_teacher_exp}", "kd.teacher_avg=2", "kd.temperature=2.0", "kd.scale=0.5",
        "train.num_epochs=3",
    ]
    trainer = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "student", student))
    start = parameter_checksum(trainer.model)
    trainer.train()
    assert parameter_checksum(trainer.model) != start
    log = (tmp_path / "student" / "log" / "train-rank0.log").read_text()
    assert "Teacher:" in log and "avg 2" in log
    # The merged config is printed at the start, as stored: the --set values in it.
    assert "Config of this run" in log and "  scale: 0.5\n  temperature: 2.0\n" in log
    # The teacher on disk is untouched, and the student's checkpoint records the kd settings.
    after = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tiny_teacher_exp, 4))["model"]
    assert all(torch.equal(teacher_before[k], after[k]) for k in teacher_before)
    saved = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tmp_path / "student", 3))
    assert saved["config"]["kd"]["teacher_exp_dir"] == str(tiny_teacher_exp)
    valid = [float(line.split("\t")[3]) for line in (tmp_path / "student" / "metrics.tsv").read_text().splitlines()
             if line.startswith("valid\t")]
    assert len(valid) == 3 and valid[-1] < valid[0]


def test_distillation_waits_for_the_ctc_warmup(tiny_teacher_exp):
    """During the student's CTC warm-up the distillation term is left out (and the teacher
    not run) unless kd.during_ctc_warmup; afterwards it is in the loss."""
    torch.manual_seed(0)
    config = load_config([], TINY_MODEL + ["model.aux_ctc=true", "loss.ctc_warm_step=3", "loss.model_warm_step=0"])
    config.model.vocab_size = 100
    student = build_transducer(config.model)
    x = torch.randn(2, 60, 80)
    x_lens = torch.tensor([60, 48])
    y = k2.RaggedTensor([[5, 9, 13], [7, 2]])

    def kd_metric(batch_idx: int, during: bool) -> float:
        kd_config = KdConfig(teacher_exp_dir=str(tiny_teacher_exp), during_ctc_warmup=during)
        loss_fn = make_loss_fn(config.loss, kd_config, torch.device("cpu"))
        _, metrics, _ = loss_fn(student, (x, x_lens, y), batch_idx)
        return metrics["kd_loss"]

    assert kd_metric(2, during=False) == 0.0
    assert kd_metric(2, during=True) > 0.0
    assert kd_metric(3, during=False) > 0.0


def test_teacher_sees_clean_features_when_asked(tiny_teacher_exp):
    """kd.teacher_input: clean runs the teacher on the features before augmentation (the 4th
    input) while the student sees the augmented ones."""
    torch.manual_seed(0)
    config = load_config([], TINY_MODEL + ["model.dropout=0.0", "loss.model_warm_step=0"])
    config.model.vocab_size = 100
    student = build_transducer(config.model).eval()
    x_clean = torch.randn(2, 60, 80)
    x_aug = x_clean.clone()
    x_aug[:, 10:40] = 0.0  # time masks
    x_aug[:, :, 20:50] = 0.0  # a frequency mask
    x_lens = torch.tensor([60, 48])
    y = k2.RaggedTensor([[5, 9, 13], [7, 2]])
    kd_config = KdConfig(teacher_exp_dir=str(tiny_teacher_exp), teacher_input="clean")
    teacher = load_teacher(kd_config, torch.device("cpu"))
    with torch.no_grad():
        _, clean_metrics, _ = make_loss_fn(config.loss, kd_config, torch.device("cpu"))(student, (x_aug, x_lens, y, x_clean), 0)
        _, aug_metrics, _ = make_loss_fn(config.loss, KdConfig(teacher_exp_dir=str(tiny_teacher_exp)), torch.device("cpu"))(
            student, (x_aug, x_lens, y, x_clean), 0
        )
        teacher_out = teacher(x_clean, x_lens, y, config.loss)
        expected = pruned_lattice_kd(teacher_out, student, student(x_aug, x_lens, y, config.loss), kd_config)
    assert clean_metrics["kd_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert aug_metrics["kd_loss"] != clean_metrics["kd_loss"]  # (the tiny teacher barely listens: a small change)


def test_every_distillation_option_trains(tiny_data_dir, tiny_teacher_exp, tmp_path):
    """All the options of the ablation at once, through the real trainer and data."""
    options = [
        "model.encoder=lstm", "model.decoder=lstm", "model.encoder_dim=16", "model.dim_feedforward=32",
        "model.decoder_dim=16", "model.joiner_dim=16",
        f"kd.teacher_exp_dir={tiny_teacher_exp}", "kd.weighting=pruned_occupancy", "kd.bounds=teacher",
        "kd.distribution=collapsed", "kd.temperature=2.0", "kd.teacher_input=clean", "kd.nbest=2", "kd.nbest_beam=3",
        "train.num_epochs=1",
    ]
    trainer = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "student", options))
    start = parameter_checksum(trainer.model)
    trainer.train()
    assert parameter_checksum(trainer.model) != start
    rows = [line.split("\t") for line in (tmp_path / "student" / "metrics.tsv").read_text().splitlines()[1:]]
    assert rows and all(math.isfinite(float(row[3])) for row in rows)
    log = (tmp_path / "student" / "log" / "train-rank0.log").read_text()
    assert re.search(r"kd \d+\.\d+, nbest \d+\.\d+\)", log), log[-2000:]


def test_without_spec_augment_the_teacher_runs_once_per_cut(tiny_data_dir, tiny_teacher_exp, tmp_path):
    """kd.cache_teacher: without SpecAugment the teacher's input for a cut is the same every
    epoch, so its encoder runs in the first epoch only; with SpecAugment on every batch."""
    student = ["model.encoder_dim=16", "model.dim_feedforward=32", "model.decoder_dim=16", "model.joiner_dim=16",
               f"kd.teacher_exp_dir={tiny_teacher_exp}", "train.num_epochs=2", "loss.model_warm_step=0"]
    trainer = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "cached", student + ["data.spec_augment=false"]))
    trainer.train()
    cache = trainer.teacher_cache
    num_cuts = len(trainer.train_loader.sampler.cuts[0])
    assert len(cache) == num_cuts
    assert (cache.misses, cache.hits) == (num_cuts, num_cuts)  # each cut through the teacher in epoch 1, from memory in 2
    log = (tmp_path / "cached" / "log" / "train-rank0.log").read_text()
    assert f"Teacher cache after epoch 2: {num_cuts} cuts" in log

    augmented = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "augmented", student))
    assert augmented.teacher_cache is None
    log = (tmp_path / "augmented" / "log" / "train-rank0.log").read_text()
    assert "The teacher runs on every batch (kd.cache_teacher is set, but data.spec_augment is on" in log
