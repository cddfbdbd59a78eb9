"""Tests of batched greedy search and of the Predictor interface it relies on."""
from __future__ import annotations

from typing import Dict, List, Tuple

import k2
import pytest
import torch

from distill.decode.greedy import greedy_search
from distill.models.config import LossConfig
from distill.models.decoder import StatelessDecoder
from distill.models.joiner import Joiner
from distill.models.transducer import Transducer, combine_losses
from distill.testing import DEVICES, GRUPredictor, tiny_model

LABELS: List[List[int]] = [[1, 2, 3], [4, 5, 6, 2]]

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


def memorize(model: Transducer, device: torch.device, steps: int = 200) -> Tuple[torch.Tensor, torch.Tensor]:
    """Train ``model`` to output LABELS for two fixed random feature sequences."""
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(2, 40, 20, generator=gen).to(device)
    x_lens = torch.tensor([40, 36], device=device)
    y = k2.RaggedTensor(LABELS).to(device)
    loss_config = LossConfig(prune_range=3, model_warm_step=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for step in range(steps):
        loss = combine_losses(model(x, x_lens, y, loss_config), loss_config, step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return x, x_lens


_TRAINED: Dict[str, Tuple[Transducer, torch.Tensor, torch.Tensor]] = {}


def trained(device: torch.device) -> Tuple[Transducer, torch.Tensor, torch.Tensor]:
    """A tiny stateless-predictor model that memorized LABELS (trained once per device)."""
    if str(device) not in _TRAINED:
        model = tiny_model(device, seed=0)
        x, x_lens = memorize(model, device)
        _TRAINED[str(device)] = (model.eval(), x, x_lens)
    return _TRAINED[str(device)]


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_greedy_recovers_memorized_labels(device: torch.device) -> None:
    model, x, x_lens = trained(device)
    with torch.no_grad():
        encoder_out, encoder_out_lens = model.encode(x, x_lens)
    assert greedy_search(model, encoder_out, encoder_out_lens) == LABELS
    assert greedy_search(model, encoder_out, encoder_out_lens, max_sym_per_frame=3) == LABELS


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("max_sym_per_frame", [1, 3])
def test_greedy_batch_equals_single(device: torch.device, max_sym_per_frame: int) -> None:
    # An untrained model emits many symbols, which exercises the per-utterance states.
    model = tiny_model(device, seed=5).eval()
    x = torch.randn(3, 50, 20, device=device)
    x_lens = torch.tensor([50, 29, 41], device=device)
    with torch.no_grad():
        encoder_out, encoder_out_lens = model.encode(x, x_lens)
    batched = greedy_search(model, encoder_out, encoder_out_lens, max_sym_per_frame)
    assert sum(len(h) for h in batched) > 0
    for i in range(3):
        n = int(encoder_out_lens[i])
        alone = greedy_search(model, encoder_out[i : i + 1, :n], encoder_out_lens[i : i + 1], max_sym_per_frame)
        assert alone == [batched[i]]
        assert len(alone[0]) <= n * max_sym_per_frame


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_stateless_step_matches_forward(device: torch.device) -> None:
    torch.manual_seed(0)
    for context_size in (1, 2, 3):
        decoder = StatelessDecoder(vocab_size=7, decoder_dim=6, blank_id=0, context_size=context_size).to(device)
        sos_y = torch.tensor([[0, 3, 1, 4, 6]], device=device)
        full = decoder(sos_y)  # (1, 5, 6)
        state = decoder.init_state(1, device)
        assert state.tolist() == [[0] * context_size]
        for u in range(sos_y.size(1)):
            out, state = decoder.step(sos_y[:, u], state)
            torch.testing.assert_close(out, full[:, u])


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_greedy_with_recurrent_predictor(device: torch.device) -> None:
    torch.manual_seed(0)
    encoder = tiny_model(device).encoder
    predictor = GRUPredictor(vocab_size=8, dim=16).to(device)
    model = Transducer(encoder, predictor, Joiner(32, 16, 16, 8)).to(device).eval()
    x = torch.randn(2, 40, 20, device=device)
    x_lens = torch.tensor([40, 23], device=device)
    with torch.no_grad():
        # The loss runs with this predictor too.
        out = model(x, x_lens, k2.RaggedTensor([[1, 2], [3]]).to(device), LossConfig())
        assert torch.isfinite(out.pruned_loss) and torch.isfinite(out.simple_loss)
        encoder_out, encoder_out_lens = model.encode(x, x_lens)
    batched = greedy_search(model, encoder_out, encoder_out_lens, max_sym_per_frame=2)
    for i in range(2):
        alone = greedy_search(model, encoder_out[i : i + 1], encoder_out_lens[i : i + 1], max_sym_per_frame=2)
        assert alone == [batched[i]]
