"""Stage 2: kaldifeat fbank through lhotse, lilcom storage, speed perturbation."""
from __future__ import annotations

import numpy as np
import pytest
from lhotse import CutSet, load_manifest

from distill.data.features import compute_fbank, make_extractor
from distill.data.librispeech import prepare_librispeech_manifests
from distill.utils.done_marker import SettingsChangedError

PARTS = ["train-clean-100", "dev-clean"]


@pytest.fixture
def manifest_dir(corpus_copy, tmp_path):
    out = tmp_path / "manifests"
    prepare_librispeech_manifests(corpus_copy, PARTS, out)
    return out


def test_kaldifeat_features_with_speed_perturbation(manifest_dir, tmp_path):
    out = tmp_path / "fbank"
    paths = compute_fbank(manifest_dir, "librispeech", PARTS, out, speed_perturb_parts=["train-clean-100"])
    train = CutSet.from_file(paths["train-clean-100"])
    dev = CutSet.from_file(paths["dev-clean"])
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
    assert len(CutSet.from_file(paths["dev-clean"])) == n_dev


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
