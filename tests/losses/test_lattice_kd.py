"""The lattice-aware distillation loss against brute-force references on tiny lattices."""
from __future__ import annotations

import dataclasses
import itertools
import math

import k2
import pytest
import torch

from distill.losses.lattice_kd import (
    KdConfig,
    delay_frames,
    full_lattice_kd,
    kl_per_node,
    nbest_kd,
    nbest_targets,
    node_labels,
    node_occupancy,
    pruned_lattice_kd,
    pruned_lattice_occupancy,
    teacher_forward,
)
from distill.models.config import LossConfig, ModelConfig
from distill.models.registry import build_transducer

DEVICES = [torch.device("cpu")] + ([torch.device("cuda", 0)] if torch.cuda.is_available() else [])
V = 7
BLANK = 0


pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


def tiny_model(dim: int, seed: int, device: torch.device):
    torch.manual_seed(seed)
    config = ModelConfig(encoder_dim=dim, nhead=2, num_encoder_layers=1, dim_feedforward=2 * dim, cnn_module_kernel=3,
                         subsampling_channels=4, decoder_dim=dim, joiner_dim=dim, vocab_size=V, dropout=0.0)
    return build_transducer(config).to(device).eval()


def batch(device: torch.device):
    """Two utterances of different lengths: T' = 9 and 6 frames, 3 and 2 labels."""
    torch.manual_seed(0)
    x = torch.randn(2, 40, 80, device=device)
    x_lens = torch.tensor([40, 28], device=device)
    y = k2.RaggedTensor([[3, 1, 5], [2, 6]]).to(device)
    return x, x_lens, y


def outputs(device, prune_range=3, lm_scale=0.25):
    teacher, student = tiny_model(16, 1, device), tiny_model(8, 2, device)
    x, x_lens, y = batch(device)
    loss_config = LossConfig(prune_range=prune_range, lm_scale=lm_scale)
    with torch.no_grad():
        t_out = teacher(x, x_lens, y, loss_config)
    s_out = student(x, x_lens, y, loss_config)
    return teacher, student, t_out, s_out


def brute_force(teacher, student, t_out, s_out, config: KdConfig, ranges, gamma=None) -> torch.Tensor:
    """Loop over every kept node; joiners evaluated one node at a time.

    ``gamma`` (B, U + 1, T): node occupancies for the occupancy weightings; by default those
    of the teacher's smoothed lattice, from its arc occupancies.
    """
    tau = config.temperature
    total = torch.zeros((), dtype=torch.float64)
    U_all, T_all = t_out.boundary[:, 2].tolist(), t_out.boundary[:, 3].tolist()
    for b in range(ranges.size(0)):
        U_b, T_b = U_all[b], T_all[b]
        for t in range(T_b):
            nodes = [int(u) for u in ranges[b, t] if int(u) <= U_b]
            for u in nodes:
                if gamma is not None:
                    w = float(gamma[b, u, t])
                elif config.weighting == "occupancy":
                    w = float(t_out.py_grad[b, u, t]) + (float(t_out.px_grad[b, u, t]) if u < U_b else 0.0)
                else:
                    w = 1.0 / len(nodes)
                zt = teacher.joiner(t_out.encoder_out[b, t], t_out.decoder_out[b, u]).double()
                zs = student.joiner(s_out.encoder_out[b, t], s_out.decoder_out[b, u]).double()
                pt, ps = torch.softmax(zt / tau, -1), torch.softmax(zs / tau, -1)
                if config.distribution == "collapsed":
                    label = int(t_out.y_padded[b, u]) if u < U_b else None

                    def collapse(p):
                        p_label = p[label] if label is not None else torch.zeros((), dtype=p.dtype)
                        return torch.stack([p_label, p[BLANK], 1 - p_label - p[BLANK]])

                    pt, ps = collapse(pt), collapse(ps)
                kl = sum(pt[c] * (torch.log(pt[c]) - torch.log(ps[c])) for c in range(len(pt)) if pt[c] > 0)
                total = total + w * kl
    return total * tau**2


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("distribution", ["full", "collapsed"])
@pytest.mark.parametrize("weighting", ["occupancy", "uniform"])
@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_pruned_loss_equals_brute_force(device, distribution, weighting, tau):
    teacher, student, t_out, s_out = outputs(device)
    config = KdConfig(teacher_exp_dir="x", temperature=tau, weighting=weighting, distribution=distribution)
    with torch.no_grad():
        loss = pruned_lattice_kd(t_out, student, s_out, config)
        reference = brute_force(teacher, student, t_out, s_out, config, t_out.ranges)
    assert t_out.ranges.size(2) == 3  # really pruned: 3 of the 4 label positions
    assert float(loss) == pytest.approx(float(reference), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("distribution", ["full", "collapsed"])
def test_pruned_equals_full_when_range_covers_every_label(device, distribution):
    teacher, student, t_out, s_out = outputs(device, prune_range=4)  # U + 1 = 4 positions
    config = KdConfig(teacher_exp_dir="x", temperature=2.0, distribution=distribution)
    with torch.no_grad():
        pruned = pruned_lattice_kd(t_out, student, s_out, config)
        full = full_lattice_kd(teacher, t_out, student, s_out, config)
    assert float(pruned) == pytest.approx(float(full), rel=1e-5)
    # With a narrower range, the pruned loss covers only part of the lattice.
    teacher, student, t_out, s_out = outputs(device, prune_range=2)
    with torch.no_grad():
        assert float(pruned_lattice_kd(t_out, student, s_out, config)) < float(full_lattice_kd(teacher, t_out, student, s_out, config))


@pytest.mark.parametrize("distribution", ["full", "collapsed"])
def test_gradient_finite_differences(distribution):
    torch.manual_seed(3)
    B, T, R = 2, 3, 2
    student_logits = torch.randn(B, T, R, V, dtype=torch.float64, requires_grad=True)
    teacher_logits = torch.randn(B, T, R, V, dtype=torch.float64)
    ranges = torch.tensor([[[0, 1], [1, 2], [2, 3]], [[0, 1], [0, 1], [1, 2]]])
    labels, has_label = node_labels(torch.tensor([[3, 1, 5], [2, 6, 0]]), torch.tensor([3, 2]), ranges, BLANK)
    weights = torch.rand(B, T, R, dtype=torch.float64)

    def loss(s):
        return (weights * kl_per_node(teacher_logits, s, labels, has_label, BLANK, 1.7, distribution)).sum()

    assert torch.autograd.gradcheck(loss, (student_logits,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_teacher_gets_no_gradient(device):
    teacher, student = tiny_model(16, 1, device).train(), tiny_model(8, 2, device).train()
    x, x_lens, y = batch(device)
    loss_config = LossConfig(prune_range=3)
    t_out = teacher(x, x_lens, y, loss_config)  # even without no_grad, nothing flows back
    s_out = student(x, x_lens, y, loss_config)
    pruned_lattice_kd(t_out, student, s_out, KdConfig(teacher_exp_dir="x")).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.joiner.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.encoder.parameters())


@pytest.mark.parametrize("device", DEVICES)
def test_occupancies_sum_as_expected(device):
    _, _, t_out, _ = outputs(device)
    U, T = t_out.boundary[:, 2].tolist(), t_out.boundary[:, 3].tolist()
    gamma = node_occupancy(t_out.px_grad, t_out.py_grad)
    for b in range(2):
        # One blank per frame: blank-arc occupancies sum to 1 at every frame.
        assert torch.allclose(t_out.py_grad[b, : U[b] + 1, : T[b]].sum(0), torch.ones(T[b], device=device), atol=1e-4)
        # U labels in all: symbol-arc occupancies sum to U.
        assert float(t_out.px_grad[b, : U[b], : T[b]].sum()) == pytest.approx(U[b], abs=1e-3)
        # Node occupancy per frame = 1 + expected labels emitted at that frame.
        per_frame = gamma[b, : U[b] + 1, : T[b]].sum(0)
        assert float(per_frame.sum()) == pytest.approx(T[b] + U[b], abs=1e-3)
        assert torch.all(gamma[b] >= -1e-6) and torch.all(gamma[b] <= 1 + 1e-4)
        # Nothing beyond the utterance.
        assert float(gamma[b, :, T[b]:].abs().sum()) == 0.0


def test_occupancy_matches_enumerated_alignments():
    """On a 3-frame, 2-label lattice, gamma equals the posterior of passing through each
    node, computed by enumerating every alignment."""
    torch.manual_seed(5)
    T, U = 3, 2
    am, lm = torch.randn(1, T, V), torch.randn(1, U + 1, V)
    symbols = torch.tensor([[4, 2]])
    boundary = torch.tensor([[0, 0, U, T]])
    _, (px_grad, py_grad) = k2.rnnt_loss_smoothed(lm=lm, am=am, symbols=symbols, termination_symbol=BLANK,
                                                  lm_only_scale=0.0, am_only_scale=0.0, boundary=boundary,
                                                  reduction="sum", return_grad=True)
    gamma = node_occupancy(px_grad, py_grad)[0]
    logp = torch.log_softmax(am[0][:, None, :] + lm[0][None, :, :], dim=-1)  # (T, U + 1, V)
    visits = torch.zeros(U + 1, T, dtype=torch.float64)
    total = 0.0
    # An alignment: T blanks and U labels, the last step a blank.
    for label_slots in itertools.combinations(range(T + U - 1), U):
        t = u = 0
        logprob, nodes = 0.0, []
        for step in range(T + U):
            nodes.append((u, t))
            if step in label_slots:
                logprob += float(logp[t, u, symbols[0, u]])
                u += 1
            else:
                logprob += float(logp[t, u, BLANK])
                t += 1
        prob = math.exp(logprob)
        total += prob
        for node in set(nodes):
            visits[node] += prob
    assert torch.allclose(gamma.double(), visits / total, atol=1e-5)


def alignments(T: int, U: int):
    """Every RNN-T alignment of T frames and U labels, as its list of arcs ``(t, u, is_label)``
    (T blanks and U labels; the last arc is the blank leaving frame T - 1)."""
    for label_slots in itertools.combinations(range(T + U - 1), U):
        t = u = 0
        arcs = []
        for step in range(T + U):
            is_label = step in label_slots
            arcs.append((t, u, is_label))
            if is_label:
                u += 1
            else:
                t += 1
        yield arcs


def restricted_posteriors(logp, symbols, kept, T: int, U: int):
    """Brute-force sum over the alignments whose every arc leaves a kept node.

    Args:
      logp: log-probabilities of shape (T, U + 1, V) (a joiner's log-softmax at each node).
      symbols: the U labels.
      kept: ``kept[t]`` is the set of label positions kept at frame t.
    Returns:
      ``(log total probability, node posteriors of shape (U + 1, T))``, in float64.
    """
    visits = torch.zeros(U + 1, T, dtype=torch.float64)
    total = 0.0
    for arcs in alignments(T, U):
        if any(u not in kept[t] for t, u, _ in arcs):
            continue
        logprob = sum(float(logp[t, u, symbols[u] if is_label else BLANK]) for t, u, is_label in arcs)
        prob = math.exp(logprob)
        total += prob
        for t, u in {(t, u) for t, u, _ in arcs}:
            visits[u, t] += prob
    return math.log(total), visits / total


def joiner_log_probs(model, out, b: int, T: int, U: int) -> torch.Tensor:
    """(T, U + 1, V) log-softmax of ``model``'s joiner at every node of utterance b, one node at a time."""
    rows = [[torch.log_softmax(model.joiner(out.encoder_out[b, t], out.decoder_out[b, u]).double(), -1)
             for u in range(U + 1)] for t in range(T)]
    return torch.stack([torch.stack(r) for r in rows])


@pytest.mark.parametrize("device", DEVICES)
def test_pruned_occupancy_matches_enumerated_alignments(device):
    """The teacher's real-joiner occupancies on its pruned lattice equal the posteriors of the
    alignments that stay in the kept region, enumerated one by one."""
    teacher, _, t_out, _ = outputs(device)
    gamma = pruned_lattice_occupancy(t_out.logits, t_out.y_padded, t_out.ranges, t_out.boundary, BLANK)
    U_all, T_all = t_out.boundary[:, 2].tolist(), t_out.boundary[:, 3].tolist()
    pruned_somewhere = False
    for b in range(2):
        U_b, T_b = U_all[b], T_all[b]
        kept = [{int(u) for u in t_out.ranges[b, t] if int(u) <= U_b} for t in range(T_b)]
        pruned_somewhere |= any(len(k) < U_b + 1 for k in kept)
        with torch.no_grad():
            logp = joiner_log_probs(teacher, t_out, b, T_b, U_b)
        _, reference = restricted_posteriors(logp.cpu(), t_out.y_padded[b, :U_b].tolist(), kept, T_b, U_b)
        assert torch.allclose(gamma[b, : U_b + 1, :T_b].double().cpu(), reference, atol=1e-4)
        assert float(gamma[b, :, T_b:].abs().sum()) == 0.0
    assert pruned_somewhere  # the restriction matters on this lattice


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("distribution", ["full", "collapsed"])
def test_pruned_occupancy_weighting_equals_brute_force(device, distribution):
    teacher, student, t_out, s_out = outputs(device)
    config = KdConfig(teacher_exp_dir="x", temperature=1.5, weighting="pruned_occupancy", distribution=distribution)
    gamma = pruned_lattice_occupancy(t_out.logits, t_out.y_padded, t_out.ranges, t_out.boundary, BLANK)
    with torch.no_grad():
        loss = pruned_lattice_kd(t_out, student, s_out, config)
        reference = brute_force(teacher, student, t_out, s_out, config, t_out.ranges, gamma=gamma)
        simple = pruned_lattice_kd(t_out, student, s_out, dataclasses.replace(config, weighting="occupancy"))
    assert float(loss) == pytest.approx(float(reference), rel=1e-4, abs=1e-6)
    assert float(loss) != pytest.approx(float(simple), rel=1e-3)  # a different weighting


@pytest.mark.parametrize("device", DEVICES)
def test_student_pruned_loss_on_teacher_bounds_equals_brute_force(device):
    """Shared bounds (kd.bounds: teacher): the student's pruned loss on the teacher's kept
    region is minus the log of its probability summed over the alignments in that region."""
    teacher, student, t_out, s_own = outputs(device)
    x, x_lens, y = batch(device)
    loss_config = LossConfig(prune_range=3)
    with torch.no_grad():
        s_shared = student(x, x_lens, y, loss_config, prune_ranges=t_out.ranges)
    assert torch.equal(s_shared.ranges, t_out.ranges)
    assert not torch.equal(s_own.ranges, t_out.ranges)  # the bounds really differ on this batch
    reference = 0.0
    for b in range(2):
        U_b, T_b = int(t_out.boundary[b, 2]), int(t_out.boundary[b, 3])
        kept = [{int(u) for u in t_out.ranges[b, t] if int(u) <= U_b} for t in range(T_b)]
        with torch.no_grad():
            logp = joiner_log_probs(student, s_shared, b, T_b, U_b)
        log_total, _ = restricted_posteriors(logp.cpu(), t_out.y_padded[b, :U_b].tolist(), kept, T_b, U_b)
        reference -= log_total
    assert float(s_shared.pruned_loss) == pytest.approx(reference, rel=1e-4)
    # The distillation term reuses the student's logits on the shared nodes: same value.
    config = KdConfig(teacher_exp_dir="x")
    with torch.no_grad():
        reused = pruned_lattice_kd(t_out, student, s_shared, config)
        recomputed = pruned_lattice_kd(t_out, student, s_own, config)
    assert float(reused) == pytest.approx(float(recomputed), rel=1e-5)
    with pytest.raises(ValueError, match="prune_ranges"):
        student(x, x_lens, y, loss_config, prune_ranges=t_out.ranges[:, :, :2])


@pytest.mark.parametrize("device", DEVICES)
def test_nbest_targets_and_sequence_loss_equal_per_utterance_reference(device):
    from distill.decode.beam_search import modified_beam_search_nbest

    teacher, student, t_out, s_out = outputs(device)
    hyps, weights = nbest_targets(teacher, t_out, nbest=3, beam=4)
    with torch.no_grad():
        beams = modified_beam_search_nbest(teacher, t_out.encoder_out, t_out.encoder_out_lens, 4)
    for b in range(2):
        kept = [(tokens, score) for tokens, score in beams[b] if tokens][:3]
        assert hyps[b] == [tokens for tokens, _ in kept] and 1 <= len(hyps[b]) <= 3
        probs = torch.softmax(torch.tensor([score for _, score in kept], dtype=torch.float64), 0)
        assert weights[b] == pytest.approx(probs.tolist()) and sum(weights[b]) == pytest.approx(1.0)
        assert all(len(h) <= int(t_out.encoder_out_lens[b]) for h in hyps[b])  # one symbol per frame at most
    loss_config = LossConfig(prune_range=3, model_warm_step=100)
    step = 80  # inside the warm-up: simple scale 0.6, pruned scale 0.1
    simple_scale, pruned_scale = loss_config.scales(step)
    with torch.no_grad():
        loss = nbest_kd(student, s_out, hyps, weights, loss_config, step)
        reference = 0.0
        for b in range(2):
            n = int(s_out.encoder_out_lens[b])
            for h, w in zip(hyps[b], weights[b]):
                one = student.transducer_losses(s_out.encoder_out[b : b + 1, :n], s_out.encoder_out_lens[b : b + 1],
                                                k2.RaggedTensor([h]).to(device), loss_config)
                reference += w * (simple_scale * float(one.simple_loss) + pruned_scale * float(one.pruned_loss))
    assert float(loss) == pytest.approx(reference, rel=1e-4)
    # Utterances without hypotheses add nothing.
    with torch.no_grad():
        only_first = nbest_kd(student, s_out, [hyps[0], []], [weights[0], []], loss_config, step)
        first = nbest_kd(student, s_out, [hyps[0], hyps[1]], [weights[0], [0.0] * len(hyps[1])], loss_config, step)
    assert float(only_first) == pytest.approx(float(first), rel=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_teacher_delay_shifts_the_teachers_lattice(device):
    teacher, _, _, _ = outputs(device)
    x, x_lens, y = batch(device)
    loss_config = LossConfig(prune_range=3)
    with torch.no_grad():
        encoder_out, lens = teacher.encoder(x, x_lens)
        plain = teacher_forward(teacher, x, x_lens, y, loss_config, delay=0)
        delayed = teacher_forward(teacher, x, x_lens, y, loss_config, delay=2)
    assert torch.equal(plain.encoder_out, encoder_out)
    T = encoder_out.size(1)
    assert torch.equal(delayed.encoder_out[:, 2:], encoder_out[:, : T - 2])
    assert torch.equal(delayed.encoder_out[:, :2], encoder_out[:, :1].expand(-1, 2, -1))
    assert torch.equal(delayed.encoder_out_lens, lens)
    # Its lattice is the one of the delayed frames.
    with torch.no_grad():
        reference = teacher.transducer_losses(delay_frames(encoder_out, 2), lens, y, loss_config)
    assert float(delayed.simple_loss) == pytest.approx(float(reference.simple_loss), rel=1e-6)
    assert torch.equal(delayed.ranges, reference.ranges)
    assert torch.equal(delay_frames(encoder_out, 100), encoder_out[:, :1].expand_as(encoder_out))
    with pytest.raises(ValueError, match="teacher_delay"):
        KdConfig(teacher_delay=-1)
