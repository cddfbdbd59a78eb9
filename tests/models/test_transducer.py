"""Tests of the transducer model and its k2 pruned RNN-T loss (tiny models, CPU and CUDA)."""
from __future__ import annotations

import math
from typing import List

import k2
import pytest
import torch

from distill.models.config import LossConfig, ModelConfig
from distill.models.joiner import Joiner
from distill.models.registry import build_transducer
from distill.models.subsampling import Conv2dSubsampling, subsampled_lengths
from distill.models.transducer import Transducer, add_sos_and_pad, combine_losses, num_params
from distill.testing import DEVICES, tiny_model, tiny_model_config

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


def full_lattice_loss(model: Transducer, x: torch.Tensor, x_lens: torch.Tensor, y: k2.RaggedTensor) -> torch.Tensor:
    """The unpruned RNN-T loss (summed) of ``model``, with the joiner on every (t, u)."""
    encoder_out, encoder_out_lens = model.encode(x, x_lens)
    y_padded, sos_y_padded, y_lens = add_sos_and_pad(y, model.blank_id)
    decoder_out = model.decoder(sos_y_padded)
    logits = model.joiner(encoder_out[:, :, None, :], decoder_out[:, None, :, :])
    boundary = torch.stack(
        [torch.zeros_like(y_lens), torch.zeros_like(y_lens), y_lens, encoder_out_lens], dim=1
    )
    return k2.rnnt_loss(logits.float(), y_padded, model.blank_id, boundary, reduction="sum")


@pytest.mark.parametrize("T", [7, 8, 9, 10, 11, 12, 13, 50, 101])
def test_subsampled_lengths_formula(T: int) -> None:
    assert subsampled_lengths(T) == ((T - 1) // 2 - 1) // 2
    assert subsampled_lengths(torch.tensor([T])).tolist() == [subsampled_lengths(T)]
    sub = Conv2dSubsampling(in_dim=20, out_dim=16, channels=4)
    assert sub(torch.randn(2, T, 20)).shape == (2, subsampled_lengths(T), 16)


@pytest.mark.parametrize("encoder", ["conformer", "lstm", "tdnn"])
def test_subsampling_first_channels(encoder: str) -> None:
    """The front end's first convolution takes its own width; 0 keeps the old shape (so older
    checkpoints load), and every encoder passes the setting on."""
    sub = Conv2dSubsampling(in_dim=20, out_dim=16, channels=8, first_channels=2)
    assert sub.conv[0].out_channels == 2 and sub.conv[2].in_channels == 2 and sub.conv[2].out_channels == 8
    assert sub(torch.randn(2, 30, 20)).shape == (2, subsampled_lengths(30), 16)
    same = Conv2dSubsampling(in_dim=20, out_dim=16, channels=8)
    assert same.conv[0].out_channels == 8
    model = build_transducer(tiny_model_config(encoder=encoder, subsampling_channels=8, subsampling_first_channels=3))
    assert model.encoder.subsampling.conv[0].out_channels == 3


def test_init_blank_prob_puts_the_prior_in_every_output_bias() -> None:
    model = build_transducer(tiny_model_config(aux_ctc=True, init_blank_prob=0.75))
    for layer in (model.ctc_output, model.joiner.output_linear, model.simple_am_proj):
        probs = layer.bias.softmax(dim=0)
        assert abs(float(probs[model.blank_id]) - 0.75) < 1e-6
        others = torch.cat([probs[: model.blank_id], probs[model.blank_id + 1:]])
        assert torch.allclose(others, torch.full_like(others, 0.25 / (model.vocab_size - 1)))
    # 0 keeps PyTorch's initialization (random biases: no prior).
    plain = build_transducer(tiny_model_config(aux_ctc=True))
    assert abs(float(plain.ctc_output.bias.softmax(0)[0]) - 0.75) > 0.1
    with pytest.raises(ValueError, match="init_blank_prob"):
        tiny_model_config(init_blank_prob=1.0)


def test_subsampling_rejects_short_input() -> None:
    sub = Conv2dSubsampling(in_dim=20, out_dim=16, channels=4)
    with pytest.raises(ValueError):
        sub(torch.randn(1, 6, 20))


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_encoder_shapes(device: torch.device) -> None:
    model = tiny_model(device).eval()
    for T in (7, 10, 33, 64):
        x = torch.randn(3, T, 20, device=device)
        x_lens = torch.tensor([T, max(7, T - 3), 7], device=device)
        out, out_lens = model.encode(x, x_lens)
        assert out.shape == (3, subsampled_lengths(T), 32)
        assert out_lens.tolist() == subsampled_lengths(x_lens).tolist()
        assert out_lens.dtype == torch.int64 and out_lens.device == out.device


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_padding_invariance(device: torch.device) -> None:
    model = tiny_model(device).eval()
    short = torch.randn(1, 23, 20, device=device)
    long = torch.randn(1, 61, 20, device=device)
    batch = torch.zeros(2, 61, 20, device=device)
    batch[0, :23] = short[0]
    batch[1] = long[0]
    with torch.no_grad():
        alone, alone_lens = model.encode(short, torch.tensor([23], device=device))
        batched, batched_lens = model.encode(batch, torch.tensor([23, 61], device=device))
    n = int(alone_lens[0])
    assert int(batched_lens[0]) == n
    torch.testing.assert_close(batched[0, :n], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_pruned_loss_equals_full_loss_k2(device: torch.device) -> None:
    """With prune_range >= U + 1 nothing is pruned: rnnt_loss_pruned == rnnt_loss."""
    torch.manual_seed(1)
    B, T, U, V, C = 2, 6, 3, 5, 8
    joiner = Joiner(C, C, C, V).to(device)
    enc = torch.randn(B, T, C, device=device)
    dec = torch.randn(B, U + 1, C, device=device)
    symbols = torch.randint(1, V, (B, U), device=device)
    boundary = torch.tensor([[0, 0, 3, 6], [0, 0, 2, 5]], dtype=torch.int64, device=device)
    symbols[1, 2] = 0  # padding past U_1 = 2

    am = torch.randn(B, T, V, device=device)
    lm = torch.randn(B, U + 1, V, device=device)
    _, (px_grad, py_grad) = k2.rnnt_loss_smoothed(
        lm=lm, am=am, symbols=symbols, termination_symbol=0, lm_only_scale=0.25,
        am_only_scale=0.0, boundary=boundary, reduction="sum", return_grad=True,
    )
    ranges = k2.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range=U + 2)
    am_pruned, lm_pruned = k2.do_rnnt_pruning(joiner.encoder_proj(enc), joiner.decoder_proj(dec), ranges)
    pruned_logits = joiner(am_pruned, lm_pruned, project_input=False)
    pruned = k2.rnnt_loss_pruned(pruned_logits, symbols, ranges, 0, boundary, reduction="sum")

    full_logits = joiner(enc[:, :, None, :], dec[:, None, :, :])
    assert full_logits.shape == (B, T, U + 1, V)
    full = k2.rnnt_loss(full_logits, symbols, 0, boundary, reduction="sum")
    torch.testing.assert_close(pruned, full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_forward_pruned_loss_equals_full_lattice(device: torch.device) -> None:
    model = tiny_model(device).eval()
    x = torch.randn(2, 40, 20, device=device)
    x_lens = torch.tensor([40, 31], device=device)
    y = k2.RaggedTensor([[1, 2, 3], [4, 5]]).to(device)
    with torch.no_grad():
        out = model(x, x_lens, y, LossConfig(prune_range=5))
        full = full_lattice_loss(model, x, x_lens, y)
    T_out = subsampled_lengths(40)
    assert out.encoder_out.shape == (2, T_out, 32)
    assert out.encoder_out_lens.tolist() == [T_out, subsampled_lengths(31)]
    assert out.px_grad.shape == (2, 3, T_out + 1) and out.py_grad.shape == (2, 4, T_out)
    assert out.ranges.shape == (2, T_out, 4)  # s_range is capped at U + 1
    assert out.boundary.tolist() == [[0, 0, 3, T_out], [0, 0, 2, subsampled_lengths(31)]]
    assert out.simple_loss.ndim == 0 and out.pruned_loss.ndim == 0
    torch.testing.assert_close(out.pruned_loss, full, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_backward_and_overfit(device: torch.device) -> None:
    model = tiny_model(device, seed=3)
    loss_config = LossConfig(prune_range=3, model_warm_step=0)
    x = torch.randn(2, 30, 20, device=device)
    x_lens = torch.tensor([30, 26], device=device)
    y = k2.RaggedTensor([[1, 2, 3], [4, 5]]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        out = model(x, x_lens, y, loss_config)
        loss = combine_losses(out, loss_config, batch_idx_train=step)
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            assert len(grads) > 0
            assert all(torch.isfinite(g).all() for g in grads)
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.3 * losses[0], losses


def test_warmup_schedule() -> None:
    config = LossConfig(simple_loss_scale=0.5, model_warm_step=100)
    assert config.scales(0) == (1.0, 0.0)
    assert config.scales(49) == pytest.approx((1.0 - 0.5 * 0.49, 0.0))
    assert config.scales(50) == pytest.approx((0.75, 0.1))
    assert config.scales(99) == pytest.approx((0.505, 0.1))
    assert config.scales(100) == (0.5, 1.0)
    assert config.scales(10_000) == (0.5, 1.0)
    assert LossConfig(model_warm_step=0).scales(0) == (0.5, 1.0)


def test_combine_losses_uses_schedule() -> None:
    model = tiny_model(torch.device("cpu"))
    x = torch.randn(1, 20, 20)
    out = model(x, torch.tensor([20]), k2.RaggedTensor([[1, 2]]), LossConfig())
    config = LossConfig(simple_loss_scale=0.5, model_warm_step=10)
    torch.testing.assert_close(combine_losses(out, config, 0), out.simple_loss)
    torch.testing.assert_close(combine_losses(out, config, 7), 0.65 * out.simple_loss + 0.1 * out.pruned_loss)
    torch.testing.assert_close(combine_losses(out, config, 10), 0.5 * out.simple_loss + out.pruned_loss)


def test_config_round_trip(tmp_path) -> None:
    yaml = pytest.importorskip("yaml")
    config = tiny_model_config(vocab_size=123)
    loss = LossConfig(prune_range=7)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model": config.to_dict(), "loss": loss.to_dict()}))
    loaded = yaml.safe_load(path.read_text())
    assert ModelConfig.from_dict(loaded["model"]) == config
    assert LossConfig.from_dict(loaded["loss"]) == loss
    with pytest.raises(ValueError, match="Unknown ModelConfig"):
        ModelConfig.from_dict({"encoder_dimm": 3})
    with pytest.raises(ValueError):
        ModelConfig(encoder_dim=30, nhead=4)


def test_registry_and_num_params() -> None:
    with pytest.raises(ValueError, match="Unknown encoder"):
        build_transducer(tiny_model_config(encoder="nope"))
    with pytest.raises(ValueError, match="Unknown decoder"):
        build_transducer(tiny_model_config(decoder="nope"))
    model = build_transducer(tiny_model_config())
    assert num_params(model) == sum(p.numel() for p in model.parameters())
    assert num_params(model.joiner) == (32 * 32 + 32) * 2 + 32 * 8 + 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (fp16 autocast)")
def test_forward_under_cuda_autocast() -> None:
    device = torch.device("cuda", 0)
    model = tiny_model(device)
    x = torch.randn(2, 40, 20, device=device)
    x_lens = torch.tensor([40, 31], device=device)
    y = k2.RaggedTensor([[1, 2, 3], [4, 5]]).to(device)
    with torch.autocast(device_type="cuda", dtype=torch.float16):
        out = model(x, x_lens, y, LossConfig())
        loss = combine_losses(out, LossConfig(), batch_idx_train=10_000)
    assert out.simple_loss.dtype == torch.float32 and out.pruned_loss.dtype == torch.float32
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def k2_ctc_reference(log_probs: torch.Tensor, lens: torch.Tensor, labels: List[List[int]]) -> torch.Tensor:
    """CTC loss summed over the batch, from k2's CTC topology intersected with the dense
    posteriors: an implementation independent of torch's ``ctc_loss``."""
    order = torch.argsort(lens, descending=True)  # k2 wants the longest segment first
    segments = torch.stack([order, torch.zeros_like(order), lens[order]], dim=1).to(torch.int32)
    graph = k2.ctc_graph([labels[i] for i in order.tolist()])
    dense = k2.DenseFsaVec(log_probs, segments)
    return k2.ctc_loss(graph, dense, output_beam=100.0, reduction="sum")


def test_aux_ctc_loss_matches_k2_and_is_combined() -> None:
    model = tiny_model(torch.device("cpu"), aux_ctc=True).eval()
    x = torch.randn(2, 40, 20)
    x_lens = torch.tensor([40, 29])
    labels = [[1, 2, 2, 3], [4, 5]]
    config = LossConfig(ctc_scale=0.3, model_warm_step=0)
    with torch.no_grad():
        out = model(x, x_lens, k2.RaggedTensor(labels), config)
        log_probs = model.ctc_output(out.encoder_out).log_softmax(dim=-1)
        expected = k2_ctc_reference(log_probs, out.encoder_out_lens, labels)
    torch.testing.assert_close(out.ctc_loss, expected.to(out.ctc_loss.dtype), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(combine_losses(out, config, 0), 0.5 * out.simple_loss + out.pruned_loss + 0.3 * out.ctc_loss)
    # Without a weight, no CTC term (and none computed).
    quiet = model(x, x_lens, k2.RaggedTensor(labels), LossConfig(model_warm_step=0))
    assert float(quiet.ctc_loss) == 0.0


def test_aux_ctc_needs_the_head() -> None:
    model = tiny_model(torch.device("cpu"))
    assert model.ctc_output is None
    with pytest.raises(ValueError, match="model.aux_ctc"):
        model(torch.randn(1, 20, 20), torch.tensor([20]), k2.RaggedTensor([[1, 2]]), LossConfig(ctc_scale=0.1))
    with pytest.raises(ValueError, match="ctc_scale"):
        LossConfig(ctc_scale=-1.0)


def test_feature_stats_normalize_the_input() -> None:
    model = tiny_model(torch.device("cpu")).eval()
    x = torch.randn(2, 30, 20) * 3.0 - 8.0
    x_lens = torch.tensor([30, 25])
    mean, std = torch.full((20,), -8.0), torch.full((20,), 3.0)
    with torch.no_grad():
        plain, _ = model.encode((x - mean) / std, x_lens)
        model.set_feature_stats(mean, std)
        normalized, _ = model.encode(x, x_lens)
    torch.testing.assert_close(normalized, plain, atol=1e-5, rtol=1e-5)
    assert "encoder.subsampling.feature_mean" in model.state_dict()
    with pytest.raises(ValueError, match="positive std"):
        model.set_feature_stats(mean, torch.zeros(20))
    with pytest.raises(ValueError, match="shape"):
        model.set_feature_stats(torch.zeros(3), torch.ones(3))


@pytest.mark.parametrize("encoder", ["conformer", "lstm", "tdnn"])
def test_utterance_norm_removes_a_fixed_spectral_colouring(encoder: str) -> None:
    """With feature_norm=utterance, adding a constant per-bin offset to one utterance (a
    voice's spectral envelope) leaves its encoding unchanged, and padding does not matter."""
    extra = dict(decoder="lstm") if encoder != "conformer" else {}
    torch.manual_seed(0)
    model = build_transducer(tiny_model_config(encoder=encoder, feature_norm="utterance", **extra)).eval()
    x = torch.randn(2, 30, 20) * 3.0 - 8.0
    x_lens = torch.tensor([30, 22])
    offset = torch.linspace(-4.0, 4.0, 20)
    coloured = x.clone()
    coloured[1, :22] += offset  # only the valid frames: the padding stays as it was
    with torch.no_grad():
        plain, _ = model.encode(x, x_lens)
        shifted, _ = model.encode(coloured, x_lens)
        alone, _ = model.encode(x[1:, :22], x_lens[1:])
    torch.testing.assert_close(shifted[1, :4], plain[1, :4], atol=1e-4, rtol=1e-4)
    if encoder != "lstm":  # every frame here sees only valid input
        torch.testing.assert_close(alone[0, :4], plain[1, :4], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(shifted[0], plain[0])
    # The global normalization is not invariant to such an offset.
    glob = build_transducer(tiny_model_config(encoder=encoder, **extra)).eval()
    with torch.no_grad():
        assert not torch.allclose(glob.encode(coloured, x_lens)[0][1], glob.encode(x, x_lens)[0][1], atol=1e-3)
    with pytest.raises(ValueError, match="feature_norm"):
        tiny_model_config(feature_norm="speaker")
    with pytest.raises(ValueError, match="needs x_lens"):
        Conv2dSubsampling(20, 16, feature_norm="utterance")(x)


def test_conformer_layer_warmup_mixes_each_layer_with_its_input() -> None:
    from distill.models.conformer import make_pad_mask

    model = tiny_model(torch.device("cpu"))  # dropout 0: train mode is deterministic
    encoder = model.encoder
    x = torch.randn(2, 30, 20)
    x_lens = torch.tensor([30, 22])
    with torch.no_grad():
        h = encoder.pos_enc(encoder.subsampling(x))
        mask = make_pad_mask(subsampled_lengths(x_lens), h.size(1))
        expected = {}
        for warmup, alpha in ((0.0, 0.1), (0.4, 0.5), (2.0, 1.0)):
            e = h
            for layer in encoder.layers:
                e = alpha * layer(e, mask) + (1 - alpha) * e
            expected[warmup] = e
            torch.testing.assert_close(encoder(x, x_lens, warmup=warmup)[0], e)
        assert not torch.allclose(expected[0.0], expected[2.0])
        # Decoding (eval mode) always runs the whole layers.
        encoder.eval()
        torch.testing.assert_close(encoder(x, x_lens, warmup=0.0)[0], expected[2.0])
    assert LossConfig(model_warm_step=200).warmup(50) == 0.25
    assert LossConfig(model_warm_step=0).warmup(0) == 1.0


def test_ctc_warm_up_trains_ctc_alone_first() -> None:
    config = LossConfig(simple_loss_scale=0.5, model_warm_step=10, ctc_scale=0.2, ctc_warm_step=100)
    assert config.scales(0) == (0.0, 0.0) and config.ctc_weight(0) == 1.0
    assert config.scales(99) == (0.0, 0.0) and config.ctc_weight(99) == 1.0
    # Then the transducer warm-up runs from its start, and CTC keeps its auxiliary weight.
    assert config.scales(100) == (1.0, 0.0) and config.ctc_weight(100) == 0.2
    assert config.scales(110) == (0.5, 1.0)
    model = tiny_model(torch.device("cpu"), aux_ctc=True)
    out = model(torch.randn(1, 30, 20), torch.tensor([30]), k2.RaggedTensor([[1, 2]]), config)
    torch.testing.assert_close(combine_losses(out, config, 5), out.ctc_loss)
    torch.testing.assert_close(combine_losses(out, config, 110), 0.5 * out.simple_loss + out.pruned_loss + 0.2 * out.ctc_loss)
    with pytest.raises(ValueError, match="ctc_warm_step"):
        LossConfig(ctc_warm_step=-1)


def test_conformer_without_positional_encoding() -> None:
    from distill.models.conformer import PositionalEncoding

    config = ModelConfig(encoder_dim=32, nhead=2, num_encoder_layers=1, dim_feedforward=64, cnn_module_kernel=3,
                         subsampling_channels=8, decoder_dim=32, joiner_dim=32, vocab_size=20,
                         positional_encoding="none")
    model = build_transducer(config).eval()
    assert not any(isinstance(m, PositionalEncoding) for m in model.modules())
    out, lens = model.encoder(torch.randn(2, 50, 80), torch.tensor([50, 40]))
    assert out.shape[:2] == (2, 11) and lens.tolist() == [11, 9]
    with pytest.raises(ValueError, match="positional_encoding"):
        ModelConfig(positional_encoding="relative")
