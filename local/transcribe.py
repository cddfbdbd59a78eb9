#!/usr/bin/env python3
"""Transcribe sound files with a trained transducer; prints one line per file: <path> <TRANSCRIPT>.

Usage:
  # epochs 8..10 of an experiment averaged, as local/decode.py loads them:
  local/transcribe.py --exp-dir exp/teacher --epoch 10 --avg 3 --lang-dir data/lang_bpe_500 a.wav b.flac
  # one checkpoint or exported model (weights without a config need --config):
  local/transcribe.py --checkpoint exp/teacher/epoch-10.pt --lang-dir data/lang_bpe_500 a.wav
  # an exported model (stage 7), with onnxruntime / sherpa-onnx and no torch (also installed
  # as the command distill-transcribe; see distill/deploy/cli.py for its options):
  local/transcribe.py --export-dir exp/student_rnn_kd/export [--streaming --chunk-ms 320] [--int8] a.wav

Any sample rate and channel count soundfile reads (WAV, FLAC, OGG, ...) is accepted: the audio
is mixed down to mono and resampled to 16 kHz, then gets the training front end (kaldifeat
fbank). Errors (a missing or unreadable file, a lang dir that does not fit the model) name the
file and the fix; a bad file does not stop the others: their transcripts are printed as they are
decoded, the failures listed at the end, and the exit status is then 1. Logs go to stderr, transcripts to stdout.
"""
import argparse
import logging
import sys
from pathlib import Path

if "--export-dir" in sys.argv[1:] or any(a.startswith("--export-dir=") for a in sys.argv[1:]):
    # An exported model: the deployment runtime alone, without torch or the training code.
    from distill.deploy.cli import main as export_main

    export_main(sys.argv[1:])

import torch  # noqa: E402  (the checkpoint path below needs the training code)

from distill.data.features import EXTRACTORS, make_extractor  # noqa: E402
from distill.decode.methods import METHOD_ALIASES, METHODS  # noqa: E402
from distill.decode.transcribe import (  # noqa: E402
    TranscribeError,
    check_model_matches_lang,
    load_averaged,
    load_lang,
    load_model_file,
    transcribe_each,
)
from distill.lang.tokenizer import check_lang_identity  # noqa: E402
from distill.utils.logging_setup import setup_logging  # noqa: E402


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--export-dir", type=Path,
                       help="an export folder of stage 7 (decoded without torch; see distill/deploy/cli.py)")
    model.add_argument("--exp-dir", type=Path, help="experiment directory holding epoch-N.pt (with --epoch/--avg)")
    model.add_argument("--checkpoint", type=Path,
                       help="one checkpoint (epoch-N.pt, checkpoint-B.pt) or exported model state (.pt)")
    parser.add_argument("--epoch", type=int, default=0, help="with --exp-dir: last epoch averaged; 0: the newest")
    parser.add_argument("--avg", type=int, default=1, help="with --exp-dir: number of epochs averaged")
    parser.add_argument("--use-averaged-model", action="store_true",
                        help="with --exp-dir: average the running average of the weights kept in training over those epochs (train.average_period), not their end points")
    parser.add_argument("--config", type=Path,
                        help="with --checkpoint: the experiment's config.yaml, for a file that holds weights "
                             "only (default: config.yaml beside the file)")
    parser.add_argument("--lang-dir", type=Path, required=True, help="lang dir the model was trained with (bpe.model)")
    parser.add_argument("--method", choices=[*METHODS, *METHOD_ALIASES], default="greedy_search",
                        help="decoding method, as stage 6 names them (fast_beam_search_nbest_LG uses the lang dir's LG)")
    parser.add_argument("--extractor", choices=EXTRACTORS, default="kaldifeat",
                        help="feature extractor; must be the one the training features used")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--verbose", action="store_true", help="log at debug level")
    parser.add_argument("sound_files", type=Path, nargs="+", metavar="SOUND_FILE",
                        help="audio files (WAV, FLAC, OGG, ...; any sample rate)")
    return parser


def main() -> None:
    parser = get_parser()
    args = parser.parse_args()
    if args.config is not None and args.checkpoint is None:
        parser.error("--config goes with --checkpoint")
    setup_logging(level=logging.DEBUG if args.verbose else logging.INFO)
    device = torch.device(args.device)
    try:
        tokenizer = load_lang(args.lang_dir)
        if args.checkpoint is not None:
            model, config = load_model_file(args.checkpoint, args.config, device)
            source = str(args.checkpoint)
        else:
            model, config = load_averaged(args.exp_dir, args.epoch, args.avg, device, args.use_averaged_model)
            source = f"{args.exp_dir} (--epoch {args.epoch} --avg {args.avg}{' --use-averaged-model' if args.use_averaged_model else ''})"
            try:
                check_lang_identity(args.exp_dir, args.lang_dir)
            except ValueError as err:
                raise TranscribeError(str(err)) from err
        check_model_matches_lang(model, tokenizer, args.lang_dir, source, config)
    except TranscribeError as err:
        logging.error(str(err))
        sys.exit(1)
    failures = []
    for path, text, error in transcribe_each(model, tokenizer, args.sound_files, args.method,
                                             extractor=make_extractor(args.extractor), lang_dir=args.lang_dir):
        if error is None:
            print(f"{path} {text}", flush=True)  # as each is decoded
        else:
            failures.append(error)
    for error in failures:  # at the end, where they are seen
        logging.error(error)
    if failures:
        logging.error(f"{len(failures)} of {len(args.sound_files)} file(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
