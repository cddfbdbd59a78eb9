"""Stage 2: kaldifeat fbank through lhotse, lilcom storage, speed perturbation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet, load_manifest

from distill.data.features import compute_fbank, make_extractor
from distill.data.corpora.librispeech import prepare_librispeech_manifests
from distill.utils.done_marker import SettingsChangedError
from distill.data.manifests import load_cuts

PARTS = ["train-clean-100", "dev-clean"]


@pytest.fixture
def manifest_dir(corpus_copy, tmp_path):
    out = tmp_path / "manifests"
    prepare_librispeech_manifests(corpus_copy, PARTS, out)
    return out


def test_kaldifeat_features_with_speed_perturbation(manifest_dir, tmp_path):
    out = tmp_path / "fbank"
    paths = compute_fbank(manifest_dir, "librispeech", PARTS, out, speed_perturb_parts=["train-clean-100"])
    train = load_cuts(paths["train-clean-100"]).to_eager()
    dev = load_cuts(paths["dev-clean"]).to_eager()
    n_dev = len(dev)
    assert len(train) % 3 == 0
    assert sum(c.id.endswith("_sp0.9") for c in train) == len(train) // 3
    assert sum(c.id.endswith("_sp1.1") for c in train) == len(train) // 3
    assert not any("_sp" in c.id for c in dev)
    for cut in list(train)[:5] + list(dev)[:2]:
        assert cut.features.type == "kaldifeat-fbank"
        assert cut.features.storage_type == "lilcom_chunky"
        feats = cut.load_features()
        assert feats.shape[1] == 80
        assert abs(feats.shape[0] - cut.duration * 100) <= 2
        assert np.isfinite(feats).all()
    # Rerun: skipped; a rerun with other settings is refused rather than mixing outputs.
    mtime = paths["dev-clean"].stat().st_mtime_ns
    compute_fbank(manifest_dir, "librispeech", PARTS, out, speed_perturb_parts=["train-clean-100"])
    assert paths["dev-clean"].stat().st_mtime_ns == mtime
    with pytest.raises(SettingsChangedError):
        compute_fbank(manifest_dir, "librispeech", PARTS, out, speed_perturb_parts=[])
    assert len(load_cuts(paths["dev-clean"]).to_eager()) == n_dev


def test_kaldifeat_agrees_with_lhotse_fbank(manifest_dir):
    recordings = load_manifest(manifest_dir / "librispeech_recordings_dev-clean.jsonl.gz")
    cut = next(iter(CutSet.from_manifests(recordings=recordings)))
    audio = cut.load_audio()
    a = make_extractor("kaldifeat").extract(audio, 16000)
    b = make_extractor("lhotse").extract(audio, 16000)
    n = min(len(a), len(b))
    # Same front end up to float rounding (log-mel, where speech energy is well above the floor).
    assert np.median(np.abs(a[:n] - b[:n])) < 1e-3
    assert np.abs(a[:n] - b[:n]).max() < 0.05


def test_unknown_extractor():
    with pytest.raises(ValueError, match="Unknown feature extractor"):
        make_extractor("mfcc-from-mars")


def test_recordings_not_at_16k_are_refused_before_extraction(manifest_dir, tmp_path):
    """An 8 kHz recording (e.g. a Kaldi dir imported at its own rate): stage 2 names the
    manifest, the recording and the fix, and writes nothing."""
    path = manifest_dir / "librispeech_recordings_dev-clean.jsonl.gz"
    recordings = load_manifest(path)
    first = recordings[0]
    changed = [r if r.id != first.id else type(r)(**{**r.to_dict(), "sampling_rate": 8000, "num_samples": r.num_samples // 2,
                                                  "sources": r.sources})
               for r in recordings]
    type(recordings).from_recordings(changed).to_file(path)
    with pytest.raises(ValueError, match=rf"{path}: 1 recording\(s\) are not at 16000 Hz: {first.id} \(8000 Hz\).*sox"):
        compute_fbank(manifest_dir, "librispeech", ["dev-clean"], tmp_path / "fbank")
    assert not list((tmp_path / "fbank").glob("*cuts*")) if (tmp_path / "fbank").exists() else True


def test_a_killed_redo_leaves_the_old_features_whole(manifest_dir, tmp_path, monkeypatch):
    """Remove the done-marker and kill the redo half-way: the old cut manifest still reads
    every cut from its own archive; a finished redo then removes the old archive."""
    out = tmp_path / "fbank"
    paths = compute_fbank(manifest_dir, "librispeech", ["dev-clean"], out)
    old_archives = sorted(p.name for p in out.glob("*.lca"))
    (out / ".fbank.done").unlink()

    def killed(self, *args, storage_path, **kwargs):
        Path(f"{storage_path}.lca").write_bytes(b"half-written")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(CutSet, "compute_and_store_features", killed)
    with pytest.raises(KeyboardInterrupt):
        compute_fbank(manifest_dir, "librispeech", ["dev-clean"], out)
    monkeypatch.undo()
    for cut in load_cuts(paths["dev-clean"]).to_eager():
        assert cut.load_features().shape[1] == 80
    compute_fbank(manifest_dir, "librispeech", ["dev-clean"], out)
    new_archives = sorted(p.name for p in out.glob("*.lca"))
    assert len(new_archives) == 1 and new_archives != old_archives
    for cut in load_cuts(paths["dev-clean"]).to_eager():
        assert cut.load_features().shape[1] == 80
