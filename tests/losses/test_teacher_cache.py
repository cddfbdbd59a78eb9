"""The teacher's encoder outputs kept per cut (kd.cache_teacher): a batch read from memory
gives the teacher's lattice, and so the distillation loss, that running the teacher gives."""
from __future__ import annotations

import k2
import pytest
import torch

from distill.losses.lattice_kd import KdConfig, pruned_lattice_kd, teacher_encoder_forward, teacher_forward
from distill.losses.teacher_cache import TeacherEncoderCache, teacher_input_is_fixed
from distill.models.config import LossConfig, ModelConfig
from distill.models.registry import build_transducer

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)

V = 7


def tiny_model(dim: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = ModelConfig(encoder_dim=dim, nhead=2, num_encoder_layers=1, dim_feedforward=2 * dim, cnn_module_kernel=3,
                         subsampling_channels=4, decoder_dim=dim, joiner_dim=dim, vocab_size=V, dropout=0.0)
    return build_transducer(config).eval()


def two_utterances():
    """T' = 9 and 6 frames, 3 and 2 labels."""
    torch.manual_seed(0)
    x = torch.randn(2, 40, 80)
    x_lens = torch.tensor([40, 28])
    y = k2.RaggedTensor([[3, 1, 5], [2, 6]])
    return x, x_lens, y


def test_a_cached_batch_gives_the_teachers_lattice_and_distillation_loss():
    teacher, student = tiny_model(16, 1), tiny_model(8, 2)
    x, x_lens, y = two_utterances()
    loss_config = LossConfig(prune_range=3)
    cache = TeacherEncoderCache(1 << 30)
    live = teacher_forward(teacher, x, x_lens, y, loss_config)
    first = teacher_forward(teacher, x, x_lens, y, loss_config, cut_ids=["a", "b"], cache=cache)
    assert (cache.misses, cache.hits, len(cache)) == (2, 0, 2)  # counted in cuts
    # Zeroed features: a result equal to the teacher's can only come from memory.
    cached = teacher_forward(teacher, torch.zeros_like(x), x_lens, y, loss_config, cut_ids=["a", "b"], cache=cache)
    assert (cache.misses, cache.hits) == (2, 2)
    assert torch.equal(first.encoder_out, live.encoder_out)
    for b, frames in enumerate(live.encoder_out_lens.tolist()):  # padding frames are zeros in the cache
        assert torch.equal(cached.encoder_out[b, :frames], live.encoder_out[b, :frames])
    assert torch.equal(cached.encoder_out_lens, live.encoder_out_lens)
    assert torch.allclose(cached.simple_loss, live.simple_loss)
    assert torch.allclose(cached.px_grad, live.px_grad, atol=1e-6) and torch.allclose(cached.py_grad, live.py_grad, atol=1e-6)
    assert torch.equal(cached.ranges, live.ranges)
    student_out = student(x, x_lens, y, loss_config)
    config = KdConfig(teacher_exp_dir="unused")
    kd_live = pruned_lattice_kd(live, student, student_out, config)
    kd_cached = pruned_lattice_kd(cached, student, student_out, config)
    assert float(kd_live) > 0
    assert torch.allclose(kd_cached, kd_live, rtol=1e-5)


def test_a_batch_of_other_composition_is_rebuilt_from_the_cuts():
    teacher = tiny_model(16, 1)
    x, x_lens, _ = two_utterances()
    cache = TeacherEncoderCache(1 << 30)
    live = teacher_encoder_forward(teacher, x, x_lens, cut_ids=["a", "b"], cache=cache)
    # "b" alone, then "b" before "a": each row is that cut's frames, padded with zeros.
    alone = teacher_encoder_forward(teacher, x[1:], x_lens[1:], cut_ids=["b"], cache=cache)
    assert alone.encoder_out.shape == (1, 6, 16) and torch.equal(alone.encoder_out[0], live.encoder_out[1, :6])
    swapped = teacher_encoder_forward(teacher, x.flip(0), x_lens.flip(0), delay=2, cut_ids=["b", "a"], cache=cache)
    assert swapped.encoder_out_lens.tolist() == [6, 9]
    assert torch.equal(swapped.encoder_out[1, 2:], live.encoder_out[0, :7])  # delayed by 2 frames
    assert torch.equal(swapped.encoder_out[0, 2:6], live.encoder_out[1, :4])
    assert (cache.misses, cache.hits) == (2, 3)
    with pytest.raises(ValueError, match="3 cut ids for a batch of 2"):
        teacher_encoder_forward(teacher, x, x_lens, cut_ids=["a", "b", "c"], cache=cache)


def test_the_teacher_runs_only_on_the_cuts_not_cached():
    """A batch with some cuts cached (as under DDP, where each rank has seen part of the cuts):
    their rows come from memory, and the teacher runs on the other rows alone."""
    teacher = tiny_model(16, 1)
    x, x_lens, _ = two_utterances()
    whole = teacher_encoder_forward(teacher, x, x_lens)
    b_alone = teacher_encoder_forward(teacher, x[1:, :28], x_lens[1:])
    cache = TeacherEncoderCache(1 << 30)
    teacher_encoder_forward(teacher, x[:1], x_lens[:1], cut_ids=["a"], cache=cache)
    x_a_zeroed = x.clone()
    x_a_zeroed[0] = 0.0  # only memory can give the row of "a"
    mixed = teacher_encoder_forward(teacher, x_a_zeroed, x_lens, cut_ids=["a", "b"], cache=cache)
    assert (cache.misses, cache.hits, len(cache)) == (2, 1, 2)
    assert mixed.encoder_out_lens.tolist() == [9, 6]
    assert torch.allclose(mixed.encoder_out[0], whole.encoder_out[0], atol=1e-5)
    assert torch.equal(mixed.encoder_out[1, :6], b_alone.encoder_out[0])  # "b" computed as a batch of its own
    assert torch.equal(mixed.encoder_out[1, 6:], torch.zeros(3, 16))
    assert torch.equal(cache.outputs["b"], b_alone.encoder_out[0])


def test_the_cache_keeps_to_its_budget_and_recomputes_the_cuts_it_lacks():
    teacher = tiny_model(16, 1)
    x, x_lens, _ = two_utterances()
    one_cut = 9 * 16 * 4  # the longer cut's frames, float32
    cache = TeacherEncoderCache(one_cut)
    live = teacher_encoder_forward(teacher, x, x_lens, cut_ids=["a", "b"], cache=cache)
    assert len(cache) == 1 and cache.bytes == one_cut  # "b" did not fit
    again = teacher_encoder_forward(teacher, x, x_lens, cut_ids=["a", "b"], cache=cache)
    assert (cache.misses, cache.hits, len(cache)) == (3, 1, 1)  # "b" recomputed, "a" from memory
    assert torch.equal(again.encoder_out[0], live.encoder_out[0])
    assert torch.allclose(again.encoder_out[1, :6], live.encoder_out[1, :6], atol=1e-5)
    assert "1 cuts" in cache.summary() and "1 cuts read from memory, 3 through the teacher" in cache.summary()


def test_the_teacher_is_cached_only_when_its_input_cannot_change():
    assert teacher_input_is_fixed(spec_augment=False, freq_warp=0.0, teacher_input="augmented") is None
    assert teacher_input_is_fixed(spec_augment=False, freq_warp=0.1, teacher_input="clean") is None
    assert "spec_augment" in teacher_input_is_fixed(spec_augment=True, freq_warp=0.0, teacher_input="clean")
    assert "freq_warp" in teacher_input_is_fixed(spec_augment=False, freq_warp=0.1, teacher_input="augmented")
    with pytest.raises(ValueError, match="cache_teacher_gb"):
        KdConfig(cache_teacher_gb=-1)
