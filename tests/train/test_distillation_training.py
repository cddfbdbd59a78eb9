"""Training a student with lattice distillation from a trained (tiny) teacher."""
from __future__ import annotations

import torch

from distill.train import checkpoint as ckpt
from distill.train.trainer import Trainer, parameter_checksum

from tests.train.helpers import tiny_config


def test_student_distills_from_teacher(tiny_data_dir, tiny_teacher_exp, tmp_path):
    torch.set_num_threads(1)
    teacher_before = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tiny_teacher_exp, 4))["model"]
    student = [
        "model.encoder_dim=16", "model.dim_feedforward=32", "model.decoder_dim=16", "model.joiner_dim=16",
        f"kd.teacher_exp_dir={tiny_teacher_exp}", "kd.teacher_avg=2", "kd.temperature=2.0", "kd.scale=0.5",
        "train.num_epochs=3",
    ]
    trainer = Trainer(tiny_config(tiny_data_dir, tmp_path / "student", student))
    start = parameter_checksum(trainer.model)
    trainer.train()
    assert parameter_checksum(trainer.model) != start
    log = (tmp_path / "student" / "log" / "train-rank0.log").read_text()
    assert "Teacher:" in log and "avg 2" in log
    # The teacher on disk is untouched, and the student's checkpoint records the kd settings.
    after = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tiny_teacher_exp, 4))["model"]
    assert all(torch.equal(teacher_before[k], after[k]) for k in teacher_before)
    saved = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tmp_path / "student", 3))
    assert saved["config"]["kd"]["teacher_exp_dir"] == str(tiny_teacher_exp)
    valid = [float(line.split("\t")[3]) for line in (tmp_path / "student" / "metrics.tsv").read_text().splitlines()
             if line.startswith("valid\t")]
    assert len(valid) == 3 and valid[-1] < valid[0]
