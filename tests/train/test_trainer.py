"""The training loop: loss goes down, resume continues exactly, non-finite losses, averaging."""
from __future__ import annotations

import math

import pytest
import torch

from distill.data.manifests import load_cuts
from distill.testing import tiny_training_config
from distill.train import checkpoint as ckpt
from distill.train.metrics_log import read_metrics
from distill.train.trainer import NonFiniteLossError, Trainer, parameter_checksum

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny models: one thread (tests/conftest.py)


def test_tiny_model_trains_and_loss_goes_down(tiny_data_dir, tmp_path):
    config = tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.num_epochs=6"])
    trainer = Trainer(config)
    trainer.train()
    losses = [v for _, v in read_metrics(tmp_path / "exp" / "metrics.tsv")[("train", "loss")]]
    valid = [v for _, v in read_metrics(tmp_path / "exp" / "metrics.tsv")[("valid", "loss")]]
    assert len(valid) == 6 and all(math.isfinite(v) for v in valid)
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    assert valid[-1] < valid[0]
    for epoch in range(1, 7):
        assert ckpt.epoch_checkpoint(tmp_path / "exp", epoch).is_file()
    assert (tmp_path / "exp" / "loss_curves.png").stat().st_size > 1000
    assert list((tmp_path / "exp" / "tensorboard").glob("events.out.tfevents.*"))
    checkpoint = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tmp_path / "exp", 6))
    assert set(checkpoint) >= {"model", "optimizer", "scheduler", "sampler", "config", "state", "env"}
    assert checkpoint["env"]["k2"] and checkpoint["config"]["model"]["encoder_dim"] == 32
    # Averaging epochs 5-6 gives the element-wise mean.
    avg = ckpt.averaged_epochs_state(tmp_path / "exp", 6, 2)
    a = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tmp_path / "exp", 5))["model"]
    name = next(k for k, v in a.items() if v.is_floating_point())
    assert torch.allclose(avg[name], (a[name] + checkpoint["model"][name]) / 2, atol=1e-6)


def test_resume_continues_from_the_same_step(tiny_data_dir, tmp_path):
    # The reference: 7 batches without interruption (crossing an epoch boundary).
    ref = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "ref", ["train.num_epochs=3"]), max_batches=7)
    ref.train()
    # The same run killed after batch 5 (its last checkpoint), then resumed from it.
    extra = ["train.num_epochs=3", "train.save_every_n=5"]
    first = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "run", extra), max_batches=5)
    first.train()
    saved_optimizer = ckpt.load_checkpoint(tmp_path / "run" / "checkpoint-5.pt")["optimizer"]
    (tmp_path / "run" / "epoch-2.pt").unlink(missing_ok=True)  # as if killed before epoch 2 ended
    resumed = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "run", extra), max_batches=7)
    resumed.resume(from_last=True)
    assert resumed.state.batch_idx_train == 5
    state = resumed.optimizer.state_dict()
    for key, value in saved_optimizer["state"].items():
        assert torch.equal(state["state"][key]["exp_avg"], value["exp_avg"])
    resumed.train()
    assert resumed.state.batch_idx_train == 7
    assert parameter_checksum(resumed.model) == pytest.approx(parameter_checksum(ref.model), rel=1e-6)


def test_resume_skips_an_unreadable_newest_checkpoint(tiny_data_dir, tmp_path):
    """An unreadable newest checkpoint: resume from the newest readable one (not afresh), and
    the broken file is set aside so that it is neither trusted nor counted by keep_last_k."""
    extra = ["train.num_epochs=3", "train.save_every_n=2", "train.keep_last_k=5"]
    first = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "run", extra), max_batches=6)
    first.train()
    for name in ("epoch-1.pt", "epoch-2.pt"):
        (tmp_path / "run" / name).unlink(missing_ok=True)
    (tmp_path / "run" / "checkpoint-6.pt").write_bytes(b"cut short")
    resumed = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "run", extra), max_batches=7)
    resumed.resume(from_last=True)
    assert resumed.state.batch_idx_train == 4
    assert (tmp_path / "run" / "checkpoint-6.pt.unreadable").read_bytes() == b"cut short"
    assert [p.name for p in ckpt.batch_checkpoints(tmp_path / "run")] == ["checkpoint-4.pt", "checkpoint-2.pt"]


def test_start_epoch_loads_previous_epoch(tiny_data_dir, tmp_path):
    Trainer(tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.num_epochs=1"])).train()
    again = Trainer(tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.num_epochs=2"]))
    again.resume(start_epoch=2)
    assert again.state.epoch == 2 and again.state.batches_in_epoch == 0
    again.train()
    assert ckpt.epoch_checkpoint(tmp_path / "exp", 2).is_file()


def test_nonfinite_losses_are_skipped_then_stop_training(tiny_data_dir, tmp_path):
    config = tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.max_nonfinite_in_a_row=2", "train.num_epochs=3"])

    def nan_loss(model, inputs, batch_idx):
        x = inputs[0]
        return (model.simple_am_proj.weight.sum() * float("nan")), {"simple_loss": 0.0, "pruned_loss": 0.0}, x.size(0)

    trainer = Trainer(config, loss_fn=nan_loss)
    before = parameter_checksum(trainer.model)
    with pytest.raises(NonFiniteLossError, match="non-finite losses in a row"):
        trainer.train()
    assert parameter_checksum(trainer.model) == before  # nothing was corrupted
    assert trainer.state.skipped_batches == 2


def test_feature_stats_normalize_the_training_features(tiny_data_dir, tmp_path):
    from distill.train.data import feature_stats

    cuts = load_cuts(tiny_data_dir / "fbank" / "librispeech_cuts_train-clean-100.jsonl.gz").to_eager()
    mean, std = feature_stats(cuts, max_cuts=len(cuts))
    feats = torch.cat([torch.from_numpy(c.load_features()) for c in cuts]).double()
    torch.testing.assert_close(mean.double(), feats.mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std.double(), feats.std(0, unbiased=False), atol=1e-4, rtol=1e-4)
    # The trainer stores them in the model, so checkpoints (and decoding) carry them.
    config = tiny_training_config(tiny_data_dir, tmp_path / "exp", ["train.num_epochs=1"])
    trainer = Trainer(config)
    sub = trainer.model.encoder.subsampling
    # Training filters a few cuts out, so the stats differ a little from all cuts'.
    torch.testing.assert_close(sub.feature_mean, mean, atol=0.5, rtol=0.0)
    trainer.train()
    state = ckpt.load_checkpoint(ckpt.epoch_checkpoint(tmp_path / "exp", 1))["model"]
    assert torch.equal(state["encoder.subsampling.feature_mean"], sub.feature_mean)
    assert float(state["encoder.subsampling.feature_std"].min()) > 0


def test_augmentation_starts_at_its_batch(tiny_data_dir, tmp_path):
    def checksum(name: str, extra) -> float:
        trainer = Trainer(tiny_training_config(tiny_data_dir, tmp_path / name, ["train.num_epochs=2"] + extra), max_batches=4)
        trainer.train()
        return parameter_checksum(trainer.model)

    off = checksum("off", ["data.spec_augment=false"])
    # Starting after the last batch is the same as no SpecAugment; starting at 0 is not.
    assert checksum("late", ["data.spec_augment=true", "data.spec_augment_start=100"]) == off
    assert checksum("early", ["data.spec_augment=true", "data.spec_augment_start=0"]) != off
    # Frequency warping follows the same start.
    assert checksum("warp-late", ["data.spec_augment=false", "data.freq_warp=0.1", "data.spec_augment_start=100"]) == off
    assert checksum("warp-early", ["data.spec_augment=false", "data.freq_warp=0.1", "data.spec_augment_start=0"]) != off
