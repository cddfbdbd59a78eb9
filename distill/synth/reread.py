"""A diagnostic for the demo corpus: a part's sentences read again by voices of your choice.

Held-out error rates on the demo corpus mix two kinds of novelty: the dev/test sentences are
new, and so are their voices. Reading the same sentences with *training* voices separates them:
the error rate on "new sentences, known voices" against the part's own rate ("new sentences,
new voices") says how much of the gap is the voices.

Voices are named ``engine:name[,pitch_cents,tempo]``, e.g. ``espeak:en-us``, ``flite:awb``,
``festival:ked_diphone,250,1.08`` (the labels of ``SPEAKERS.TXT``), or ``piper:joe``, a
neural voice of a real person that no part of the corpus uses. Audio, features and the
cut manifest are written like the corpus's own (FLAC through sox, kaldifeat fbank, lilcom),
so ``local/decode.py --cuts`` scores them like any part.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Sequence

from lhotse import CutSet, Recording, SupervisionSegment
from lhotse.cut import MonoCut

from distill.data.features import make_extractor
from distill.synth.librispeech_demo import Utterance, synthesize
from distill.synth.voices import Speaker, parse_voice_label
from distill.utils.io import atomic_path

# Speaker ids of re-read audio: apart from the corpus's (train 1000+, dev 2000+, test 3000+).
FIRST_SPEAKER_ID = 9000


def parse_voice(spec: str, speaker_id: int) -> Speaker:
    """``engine:name[,pitch_cents,tempo]`` -> a :class:`Speaker` of the part ``reread``."""
    label, *fields = spec.split(",")
    if len(fields) not in (0, 2):
        raise ValueError(f"Voice {spec!r}: expected engine:name[,pitch_cents,tempo], e.g. flite:awb,250,1.08")
    voice = parse_voice_label(label)
    pitch, tempo = (int(fields[0]), float(fields[1])) if fields else (0, 1.0)
    return Speaker(str(speaker_id), "reread", voice, pitch, tempo)


def reread_cuts(cuts: CutSet, voices: Sequence[str], out_dir: Path, every: int = 1, seed: int = 1) -> Path:
    """Synthesize every ``every``-th cut's transcript with each voice; store fbank features.

    Args:
      cuts: the cuts whose (first) supervision texts are read again.
      voices: voice specs (module docstring); each becomes one speaker.
      out_dir: receives ``audio/``, ``feats/`` and ``cuts_reread.jsonl.gz`` (written last,
        atomically; audio already there is reused, so an interrupted run resumes).
      every: keep every n-th cut (a smaller probe).
      seed: seeds the silence padding, as in the corpus.
    Returns:
      The path of the cut manifest.
    """
    out_dir = Path(out_dir)
    speakers = [parse_voice(spec, FIRST_SPEAKER_ID + k) for k, spec in enumerate(voices)]
    texts = [c.supervisions[0].text for c in list(cuts)[::every] if c.supervisions]
    new_cuts: List[MonoCut] = []
    for spk in speakers:
        logging.info(f"Reading {len(texts)} sentences as {spk.voice.label} {spk.pitch_cents:+d} {spk.tempo}")
        for i, text in enumerate(texts):
            # The synthesizers read the lower-cased transcript (the corpus's own spoken form
            # keeps the source's case and punctuation, which the transcript has lost).
            utt = Utterance(f"{spk.id}-1-{i:04d}", spk, 1, text, text.lower())
            synthesize(utt, out_dir / "audio", seed)
            recording = Recording.from_file(utt.flac_path(out_dir / "audio"), recording_id=utt.id)
            supervision = SupervisionSegment(id=utt.id, recording_id=utt.id, start=0.0,
                                             duration=recording.duration, text=text, speaker=str(spk.id))
            new_cuts.append(MonoCut(id=utt.id, start=0.0, duration=recording.duration, channel=0,
                                    recording=recording, supervisions=[supervision]))
    with_feats = CutSet.from_cuts(new_cuts).compute_and_store_features(
        make_extractor("kaldifeat"), storage_path=str(out_dir / "feats")
    )
    target = out_dir / "cuts_reread.jsonl.gz"
    with atomic_path(target) as tmp:
        with_feats.to_file(str(tmp))
    return target
