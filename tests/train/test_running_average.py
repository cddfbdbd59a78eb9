"""The running average of the weights kept in training (``train.average_period``) and the
model averaged over epochs from it (``--use-averaged-model``), against brute-force means of
the snapshots."""
from __future__ import annotations

from typing import Dict, List

import pytest
import torch

from distill.testing import tiny_training_config
from distill.train import checkpoint as ckpt
from distill.train.running_average import RunningAverage, window_average
from distill.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


def mean_of(snapshots: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    return {name: torch.stack([s[name].double() for s in snapshots]).mean(0) for name in snapshots[0]}


def test_running_mean_and_windows_equal_the_means_of_their_snapshots():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    average = RunningAverage(period=2)
    snapshots, checkpoints = [], {}
    for batch in range(1, 13):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model[1].num_batches_tracked += 1
        average.maybe_update(model, batch)
        if batch % 2 == 0:
            snapshots.append({k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()})
        if batch in (5, 9, 12):  # "epoch" ends, not on the period
            # What a checkpoint file holds: copies (state_dict()s alias the live tensors).
            checkpoints[batch] = {"model": {k: v.clone() for k, v in model.state_dict().items()},
                                  "model_avg": {k: v.clone() for k, v in average.mean.items()},
                                  "model_avg_count": average.count}
    assert average.count == 6
    for name, value in mean_of(snapshots).items():
        assert torch.allclose(average.mean[name], value, atol=1e-12)
    # Snapshots after batch 5 (batches 6, 8) up to batch 9, and after 5 up to 12 (6, 8, 10, 12).
    for start, end, chosen in ((5, 9, slice(2, 4)), (5, 12, slice(2, 6)), (None, 9, slice(0, 4))):
        window = window_average(checkpoints[end], checkpoints.get(start), "test")
        for name, value in mean_of(snapshots[chosen]).items():
            assert torch.allclose(window[name].double(), value, atol=1e-5), (start, end, name)
        # Integer buffers come from the last checkpoint.
        assert window["1.num_batches_tracked"] == checkpoints[end]["model"]["1.num_batches_tracked"]


def test_window_errors_name_the_problem():
    model = torch.nn.Linear(2, 2)
    average = RunningAverage(period=1)
    average.update(model)
    with_average = {"model": model.state_dict(), **average.state_dict()}
    with pytest.raises(ValueError, match="no running average.*without --use-averaged-model"):
        window_average({"model": model.state_dict()}, None, "exp/x")
    with pytest.raises(ValueError, match="no running-average snapshot between"):
        window_average(with_average, with_average, "exp/x")
    with pytest.raises(ValueError, match="average_period must be >= 1"):
        RunningAverage(0)


def test_trainer_keeps_the_running_average_across_a_resume(tiny_data_dir, tmp_path):
    """Epoch checkpoints hold the mean of the snapshots taken every average_period batches, a
    resumed run continues it, and decoding's --use-averaged-model averages the right span."""
    extra = ["train.num_epochs=3", "train.average_period=2", "train.save_every_n=3"]
    snapshots: List[Dict[str, torch.Tensor]] = []

    class Recording(RunningAverage):
        def update(self, model: torch.nn.Module) -> None:
            super().update(model)
            snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()})

    first = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "exp", extra), max_batches=3)
    first.running_average = Recording(2)
    first.train()  # killed after batch 3: checkpoint-3.pt holds one snapshot
    resumed = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "exp", extra))
    resumed.running_average = Recording(2)
    resumed.resume(from_last=True)
    assert resumed.running_average.count == 1
    resumed.train()
    epochs = {e: ckpt.load_checkpoint(ckpt.epoch_checkpoint(tmp_path / "exp", e)) for e in (1, 2, 3)}
    counts = {e: c["model_avg_count"] for e, c in epochs.items()}
    batches = {e: c["state"]["train_state"]["batch_idx_train"] for e, c in epochs.items()}
    assert counts == {e: batches[e] // 2 for e in (1, 2, 3)} and counts[1] >= 1 and counts[3] > counts[1]
    for name, value in mean_of(snapshots).items():
        assert torch.allclose(epochs[3]["model_avg"][name], value, atol=1e-6)
    # --epoch 3 --avg 2 --use-averaged-model: the snapshots of epochs 2-3.
    state = ckpt.averaged_epochs_state(tmp_path / "exp", 3, 2, use_averaged_model=True)
    for name, value in mean_of(snapshots[counts[1]:]).items():
        assert torch.allclose(state[name].double(), value, atol=1e-5), name
    # --avg 3 reaches the start of training: the whole running mean.
    whole = ckpt.load_averaged_model(tmp_path / "exp", 3, 3, use_averaged_model=True).state_dict()
    name = next(iter(mean_of(snapshots)))
    assert torch.allclose(whole[name].double(), mean_of(snapshots)[name], atol=1e-5)


def test_use_averaged_model_refuses_checkpoints_without_one(tiny_data_dir, tmp_path):
    Trainer(tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.num_epochs=1"])).train()
    with pytest.raises(ValueError, match="holds no running average.*train.average_period 0"):
        ckpt.averaged_epochs_state(tmp_path / "exp", 1, 1, use_averaged_model=True)
    with pytest.raises(ValueError, match="average_period must be >= 0"):
        tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.average_period=-1"])


def test_decode_cli_with_use_averaged_model(tiny_data_dir, tiny_teacher_exp, tmp_path):
    """local/decode.py --use-averaged-model: its own file names and results-table label beside
    the plain average's; a run trained without a running average is refused with the reason."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    exp = tmp_path / "exp"
    Trainer(tiny_training_config(tiny_data_dir, exp, ["train.num_epochs=2", "train.average_period=1"])).train()
    cuts = tiny_data_dir / "fbank" / "librispeech_cuts_test-clean.jsonl.gz"

    def decode(exp_dir, *flags):
        cmd = [sys.executable, str(REPO_ROOT / "local" / "decode.py"), "--exp-dir", str(exp_dir), "--epoch", "0",
               "--avg", "1", "--lang-dir", str(tiny_data_dir / "lang_bpe_100"), "--cuts", str(cuts), *flags]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    for flags in ((), ("--use-averaged-model",)):
        out = decode(exp, *flags)
        assert out.returncode == 0, out.stderr[-3000:]
    assert (exp / "greedy_search" / "wer-test-clean-greedy_search-epoch-2-avg-1-use-averaged-model.txt").is_file()
    assert (exp / "greedy_search" / "wer-test-clean-greedy_search-epoch-2-avg-1.txt").is_file()
    table = tmp_path / "results.md"
    cmd = [sys.executable, str(REPO_ROOT / "local" / "results_table.py"), "--exp-dirs", str(exp), "--out", str(table)]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=60).returncode == 0
    labels = {row.split("|")[3].strip() for row in table.read_text().splitlines() if row.startswith("| exp |")}
    assert labels == {"greedy_search (epoch 2, avg 1)", "greedy_search (epoch 2, avg 1, running average)"}, labels

    refused = decode(tiny_teacher_exp, "--use-averaged-model")  # trained with train.average_period 0
    assert refused.returncode == 1 and "holds no running average" in refused.stderr, refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr
