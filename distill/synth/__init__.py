"""Offline demo corpora made with speech synthesizers.

Shared by every demo corpus: :mod:`.sentences` (public-domain sentences and how they are dealt
to speakers), :mod:`.voices` (synthesizer voices and the speakers made from them),
:mod:`.render` (text to a 16-kHz file through a synthesizer and sox). The corpora, each in
its real counterpart's layout: :mod:`.librispeech_demo`, :mod:`.timit_demo`,
:mod:`.kaldi_demo`; :mod:`.reread` is a diagnostic that reads a part's sentences again.
"""
