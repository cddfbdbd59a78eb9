"""Frame-level distillation through the CTC heads (``kd.ctc_scale``) against a per-frame reference."""
from __future__ import annotations

import dataclasses

import k2
import pytest
import torch

from distill.losses.ctc_kd import ctc_kd
from distill.losses.lattice_kd import KdConfig, pruned_lattice_kd
from distill.models.config import LossConfig, ModelConfig
from distill.models.registry import build_transducer
from distill.testing import tiny_training_config
from distill.train.losses import load_teacher, make_loss_fn
from distill.train.trainer import Trainer

V = 7

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


def tiny_model(dim: int, seed: int, aux_ctc: bool = True):
    torch.manual_seed(seed)
    config = ModelConfig(encoder_dim=dim, nhead=2, num_encoder_layers=1, dim_feedforward=2 * dim, cnn_module_kernel=3,
                         subsampling_channels=4, decoder_dim=dim, joiner_dim=dim, vocab_size=V, dropout=0.0, aux_ctc=aux_ctc)
    return build_transducer(config).eval()


def outputs(student_aux_ctc: bool = True):
    """A teacher and a student on two utterances of T' = 9 and 6 frames."""
    teacher, student = tiny_model(16, 1), tiny_model(8, 2, student_aux_ctc)
    torch.manual_seed(0)
    x = torch.randn(2, 40, 80)
    x_lens = torch.tensor([40, 28])
    y = k2.RaggedTensor([[3, 1, 5], [2, 6]])
    loss_config = LossConfig(prune_range=3)
    with torch.no_grad():
        t_out = teacher(x, x_lens, y, loss_config)
    return teacher, student, t_out, student(x, x_lens, y, loss_config)


def per_frame_reference(teacher, student, t_out, s_out, tau: float) -> torch.Tensor:
    """One valid frame at a time, in float64."""
    total = torch.zeros((), dtype=torch.float64)
    for b, T_b in enumerate(s_out.encoder_out_lens.tolist()):
        for t in range(T_b):
            p_t = torch.softmax(teacher.ctc_output(t_out.encoder_out[b, t]).double() / tau, -1)
            p_s = torch.softmax(student.ctc_output(s_out.encoder_out[b, t]).double() / tau, -1)
            total = total + sum(p_t[c] * (torch.log(p_t[c]) - torch.log(p_s[c])) for c in range(V))
    return total * tau**2


@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_ctc_kd_equals_per_frame_reference(tau):
    teacher, student, t_out, s_out = outputs()
    assert s_out.encoder_out_lens.tolist() == [9, 6]  # padding frames exist and must not count
    loss = ctc_kd(teacher, t_out, student, s_out, tau)
    expected = per_frame_reference(teacher, student, t_out, s_out, tau)
    assert float(loss) > 0
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


def test_ctc_kd_trains_the_student_only_and_vanishes_on_the_teacher_itself():
    teacher, student, t_out, s_out = outputs()
    ctc_kd(teacher, t_out, student, s_out).backward()
    assert student.ctc_output.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.encoder.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    with torch.no_grad():
        assert float(ctc_kd(teacher, t_out, teacher, t_out)) == pytest.approx(0.0, abs=1e-6)


def test_ctc_kd_refuses_a_student_without_a_ctc_head():
    teacher, student, t_out, s_out = outputs(student_aux_ctc=False)
    with pytest.raises(ValueError, match="the student has none: train the student with model.aux_ctc: true"):
        ctc_kd(teacher, t_out, student, s_out)
    with pytest.raises(ValueError, match="kd.ctc_scale must be >= 0"):
        KdConfig(ctc_scale=-1.0)


@pytest.fixture(scope="module")
def ctc_teacher_exp(tiny_data_dir, tmp_path_factory):
    """A tiny teacher with a CTC head, trained on the tiny corpus (seconds). Read-only."""
    exp = tmp_path_factory.mktemp("ctc_teacher")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    Trainer(tiny_training_config(tiny_data_dir, exp, ["model.aux_ctc=true", "loss.ctc_scale=0.3"])).train()
    torch.set_num_threads(threads)
    return exp


def student_and_batch():
    """A tiny student with a CTC head (vocabulary of the tiny corpus) and a batch for it."""
    torch.manual_seed(3)
    student = build_transducer(ModelConfig(
        encoder_dim=8, nhead=2, num_encoder_layers=1, dim_feedforward=16, cnn_module_kernel=3, subsampling_channels=4,
        decoder_dim=8, joiner_dim=8, vocab_size=100, dropout=0.0, aux_ctc=True)).eval()
    torch.manual_seed(0)
    x, x_lens = torch.randn(2, 60, 80), torch.tensor([60, 48])
    return student, (x, x_lens, k2.RaggedTensor([[5, 9, 13], [7, 2]]))


def test_the_training_loss_adds_ctc_scale_times_the_term(tiny_data_dir, ctc_teacher_exp, tmp_path):
    """Through make_loss_fn: the loss with kd.ctc_scale 2 is the loss without it plus twice the
    logged ``ctc_kd_loss``, which equals :func:`ctc_kd` on the same batch; a student without a
    CTC head is refused when its trainer is made, a teacher without one by name when the loss is."""
    teacher_exp = ctc_teacher_exp
    student, (x, x_lens, y) = student_and_batch()
    loss_config = LossConfig(prune_range=3)
    cpu = torch.device("cpu")
    with torch.no_grad():
        plain_fn = make_loss_fn(loss_config, KdConfig(teacher_exp_dir=str(teacher_exp)), cpu)
        plain, plain_metrics, _ = plain_fn(student, (x, x_lens, y), 0)
        kd_config = KdConfig(teacher_exp_dir=str(teacher_exp), ctc_scale=2.0)
        both_fn = make_loss_fn(loss_config, kd_config, cpu)
        both, metrics, _ = both_fn(student, (x, x_lens, y), 0)
    assert "ctc_kd_loss" not in plain_metrics and metrics["ctc_kd_loss"] > 0
    assert metrics["kd_loss"] == pytest.approx(plain_metrics["kd_loss"])
    assert float(both) == pytest.approx(float(plain) + 2.0 * metrics["ctc_kd_loss"], rel=1e-5)
    teacher = load_teacher(kd_config, cpu)
    with torch.no_grad():
        t_out, s_out = teacher(x, x_lens, y, loss_config), student(x, x_lens, y, loss_config)
        assert metrics["ctc_kd_loss"] == pytest.approx(float(ctc_kd(teacher, t_out, student, s_out)), rel=1e-5)
        assert metrics["kd_loss"] == pytest.approx(float(pruned_lattice_kd(t_out, student, s_out, kd_config)), rel=1e-5)

    student_overrides = [f"kd.teacher_exp_dir={teacher_exp}", "kd.ctc_scale=1"]
    with pytest.raises(ValueError, match="the student has none: train the student with model.aux_ctc: true"):
        Trainer(tiny_training_config(tiny_data_dir, tmp_path / "student", student_overrides))
    assert not (tmp_path / "student" / "epoch-1.pt").exists()
    no_head = tmp_path / "teacher_no_ctc"
    Trainer(tiny_training_config(tiny_data_dir, no_head, [])).train()
    with pytest.raises(ValueError, match=f"the teacher in {no_head} has none"):
        make_loss_fn(loss_config, dataclasses.replace(kd_config, teacher_exp_dir=str(no_head)), cpu)


def test_the_ctc_head_term_can_start_with_the_ctc_warmup(ctc_teacher_exp):
    """During the CTC warm-up: no distillation term by default; with kd.ctc_during_warmup the
    CTC-head term alone (the lattice term still waits; the teacher's encoder alone runs, and
    gives the term its full forward would), added to the warm-up's own loss;
    after the warm-up both terms, as without the option. The option needs kd.ctc_scale > 0."""
    student, batch = student_and_batch()
    loss_config = LossConfig(prune_range=3, ctc_scale=0.3, ctc_warm_step=3, model_warm_step=0)
    cpu = torch.device("cpu")

    def run(batch_idx: int, **kd):
        loss_fn = make_loss_fn(loss_config, KdConfig(teacher_exp_dir=str(ctc_teacher_exp), ctc_scale=2.0, **kd), cpu)
        with torch.no_grad():
            loss, metrics, _ = loss_fn(student, batch, batch_idx)
        return float(loss), metrics

    plain, plain_metrics = run(2)
    early, early_metrics = run(2, ctc_during_warmup=True)
    assert "ctc_kd_loss" not in plain_metrics and plain_metrics["kd_loss"] == 0.0
    assert early_metrics["kd_loss"] == 0.0 and early_metrics["ctc_kd_loss"] > 0
    assert early == pytest.approx(plain + 2.0 * early_metrics["ctc_kd_loss"], rel=1e-5)
    late, late_metrics = run(3, ctc_during_warmup=True)
    assert late_metrics["kd_loss"] > 0 and late_metrics["ctc_kd_loss"] == pytest.approx(early_metrics["ctc_kd_loss"])
    assert (late, late_metrics) == run(3)
    # The warm-up runs the teacher's encoder alone: the same (delayed) frames as its full forward.
    delayed_early = run(2, ctc_during_warmup=True, teacher_delay=2)[1]["ctc_kd_loss"]
    assert delayed_early == pytest.approx(run(3, teacher_delay=2)[1]["ctc_kd_loss"]) and delayed_early != early_metrics["ctc_kd_loss"]
    with pytest.raises(ValueError, match="kd.ctc_during_warmup is set but kd.ctc_scale is 0"):
        KdConfig(ctc_during_warmup=True)
