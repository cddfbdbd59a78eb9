"""``distill-transcribe`` (and ``local/transcribe.py --export-dir``): transcribe sound files
with an exported model, without torch or the training code.

Usage:
  distill-transcribe --export-dir exp/student_rnn_kd/export a.wav b.flac
  distill-transcribe --export-dir exp/student_rnn_kd/export --streaming --chunk-ms 320 a.wav
  distill-transcribe --export-dir exp/teacher/export --int8 --engine sherpa a.wav

Prints ``<path> <TRANSCRIPT>`` per file on stdout as each is decoded; with ``--streaming``,
the partial transcript after each chunk of audio goes to stderr as it grows. A file that
fails is reported at the end with the reason; the exit status is then 1.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from distill.deploy.features import AudioError, read_audio
from distill.deploy.manifest import ExportFolderError, describe
from distill.deploy.recognizer import ENGINES, Recognizer, describe_engines


def add_arguments(parser: argparse.ArgumentParser, export_dir_required: bool = True) -> None:
    parser.add_argument("--export-dir", type=Path, required=export_dir_required,
                        help="an export folder (exp/<model>/export, written by stage 7)")
    parser.add_argument("--int8", action="store_true", help="use the int8 graphs")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="sherpa (sherpa-onnx; stateless predictors), ort (this project's onnxruntime loop; "
                             "every predictor) or auto (sherpa where it can)")
    parser.add_argument("--streaming", action="store_true",
                        help="decode as a stream, chunk by chunk, with partial results (causal students only)")
    parser.add_argument("--chunk-ms", type=int, default=320, help="with --streaming: audio per chunk fed (ms)")
    parser.add_argument("--num-threads", type=int, default=1, help="threads per onnxruntime session")


def transcribe_paths(args: argparse.Namespace, paths: Sequence[Path]) -> int:
    """Decode ``paths`` and print; returns the exit status (1 if any file failed)."""
    try:
        recognizer = Recognizer(args.export_dir, int8=args.int8, num_threads=args.num_threads, engine=args.engine,
                                streaming=args.streaming)
    except ExportFolderError as err:
        logging.error(str(err))
        return 1
    logging.info(f"{describe(recognizer.manifest)}; engine {recognizer.engine} ({describe_engines(recognizer.manifest)})")
    failures: List[Tuple[Path, str]] = []
    chunk_samples = max(1, int(args.chunk_ms * recognizer.sample_rate / 1000))
    for path in paths:
        try:
            samples = read_audio(path, recognizer.sample_rate)
            result = recognizer.transcribe(samples, chunk_samples=chunk_samples)
        except (AudioError, ExportFolderError) as err:
            failures.append((path, str(err)))
            continue
        if args.streaming:
            for i, partial in enumerate(result.partials):
                print(f"{path} [{(i + 1) * args.chunk_ms} ms] {partial}", file=sys.stderr)
        print(f"{path} {result.text}", flush=True)
    for path, reason in failures:
        logging.error(f"{path}: {reason}")
    if failures:
        logging.error(f"{len(failures)} of {len(paths)} file(s) failed")
    return 1 if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("sound_files", type=Path, nargs="+", metavar="SOUND_FILE",
                        help="audio files (WAV, FLAC, ...) at the model's sample rate (16 kHz)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    sys.exit(transcribe_paths(args, args.sound_files))


if __name__ == "__main__":
    main()
