"""Training precision: bfloat16 autocast through the whole transducer step, float32 where it matters."""
from __future__ import annotations

import dataclasses

import k2
import pytest
import torch

from distill.models.config import LossConfig, ModelConfig
from distill.models.layers import LayerNorm
from distill.models.registry import build_transducer
from distill.models.transducer import combine_losses
from distill.train.config import load_config
from distill.train.precision import autocast, resolve_precision


def test_resolve_precision():
    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("bfloat16", cpu) == "bfloat16"
    assert resolve_precision("auto", cpu) in ("float32", "bfloat16")
    with pytest.raises(ValueError, match="train.precision"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="train.precision must be one of"):
        load_config([], ["train.precision=half"])


def test_layer_norm_takes_bfloat16_and_computes_in_float32():
    norm = LayerNorm(8)
    x = torch.randn(3, 8)
    out = norm(x.to(torch.bfloat16))
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.nn.functional.layer_norm(x.to(torch.bfloat16).float(), (8,)), atol=1e-6)
    assert set(norm.state_dict()) == set(torch.nn.LayerNorm(8).state_dict())


@pytest.mark.parametrize("encoder", ["conformer", "tdnn"])
def test_bfloat16_step_matches_float32(encoder):
    """The losses of a bfloat16 autocast step are float32 and within bfloat16's precision of the
    float32 step's; its gradients point the same way."""
    torch.manual_seed(0)
    config = ModelConfig(encoder=encoder, encoder_dim=64, num_encoder_layers=2, nhead=4, dim_feedforward=128,
                         decoder_dim=32, joiner_dim=32, vocab_size=20, dropout=0.0, aux_ctc=True)
    if encoder == "tdnn":
        config = dataclasses.replace(config, decoder="lstm")
    model = build_transducer(config)
    loss_config = LossConfig(ctc_scale=0.3, model_warm_step=1)
    x = torch.randn(2, 120, 80)
    x_lens = torch.tensor([120, 90])
    y = k2.RaggedTensor([[1, 5, 7, 2], [3, 3, 9]])

    def step(precision: str):
        model.zero_grad()
        with autocast(torch.device("cpu"), precision):
            out = model(x, x_lens, y, loss_config)
            loss = combine_losses(out, loss_config, 10)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return out, loss, grads

    out32, loss32, grad32 = step("float32")
    out16, loss16, grad16 = step("bfloat16")
    assert out16.simple_loss.dtype == out16.pruned_loss.dtype == out16.ctc_loss.dtype == torch.float32
    assert torch.isfinite(loss16)
    assert abs(float(loss16) - float(loss32)) < 0.02 * abs(float(loss32))
    cosine = torch.nn.functional.cosine_similarity(grad32, grad16, dim=0)
    assert cosine > 0.98, float(cosine)
