"""Any corpus given as Kaldi data directories, one per part (``corpus=kaldi``): stage 0 checks
that ``--corpus-dir`` holds ``<part>/wav.scp``, ``text`` and ``utt2spk`` (or, with ``--demo``,
synthesizes the Kaldi-format demo corpus there); stage 1 is :mod:`distill.data.kaldi_dir`'s
validated import. Nothing is downloaded."""
from __future__ import annotations

import argparse
from pathlib import Path

from distill.data.corpora import Corpus, register
from distill.data.kaldi_dir import locate_kaldi_dirs, prepare_kaldi_manifests


def check_stage0_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from distill.synth.kaldi_demo import CORPUS_NAME

    if args.demo and args.corpus_dir.parts[-2:] != (CORPUS_NAME, "data"):
        parser.error(f"--corpus-dir {args.corpus_dir}: the demo corpus is written to <dir>/{CORPUS_NAME}/data")


def get_kaldi(args: argparse.Namespace) -> Path:
    """Stage 0: synthesize the Kaldi-format demo corpus if asked, then check the data dirs."""
    if args.demo:
        from distill.synth.kaldi_demo import generate_kaldi_demo, small_config, tiny_config

        config = tiny_config(args.seed) if args.demo_size == "tiny" else small_config(args.seed)
        generate_kaldi_demo(args.corpus_dir.parent.parent, config, num_jobs=args.num_jobs)
    locate_kaldi_dirs(args.corpus_dir, args.parts)
    return args.corpus_dir


register(Corpus(
    name="kaldi", prepare=prepare_kaldi_manifests, get=get_kaldi,
    corpus_dir_help="holds <part>/wav.scp, <part>/text, ... (nothing is downloaded)",
    demo_help="default: about 20 min of training audio; tiny: about 2 min",
    check_arguments=check_stage0_arguments,
))
