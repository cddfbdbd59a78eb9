#!/usr/bin/env python3
"""Export a trained model for deployment (stage 7): ONNX, TorchScript and their int8
versions, tokens.txt and export.json, into <exp-dir>/export (distill/export/exporter.py).

Usage:
  local/export.py --exp-dir exp/student_rnn_kd --lang-dir data/lang_bpe_100 \\
      --cuts data/fbank/librispeech_cuts_dev-clean.jsonl.gz [--epoch 0 --avg 1] [--chunk-ms 320]

Every graph is checked against PyTorch on the first utterances of --cuts (maximum absolute
difference logged; an error above the tolerance). The folder appears only when complete.
"""
import argparse
import logging
import sys
import warnings
from pathlib import Path

import torch
from distill.data.manifests import load_cuts
from distill.decode.transcribe import TranscribeError, check_model_matches_lang, load_averaged, load_lang
from distill.export.exporter import DEFAULT_CHUNK_FRAMES, ExportError, export_model
from distill.lang.tokenizer import check_lang_identity, lang_identity
from distill.models.subsampling import MIN_INPUT_FRAMES, SUBSAMPLING_FACTOR
from distill.utils.logging_setup import setup_logging

FRAME_SHIFT_MS = 10


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dir", type=Path, required=True, help="experiment directory holding epoch-N.pt")
    parser.add_argument("--epoch", type=int, default=0, help="last epoch averaged; 0: the newest")
    parser.add_argument("--avg", type=int, default=1, help="number of epochs averaged")
    parser.add_argument("--use-averaged-model", action="store_true",
                        help="average the running average of the weights kept in training over those epochs (train.average_period), not their end points")
    parser.add_argument("--lang-dir", type=Path, required=True, help="the lang dir the model was trained with")
    parser.add_argument("--cuts", type=Path, required=True, help="a cut manifest with features (the check batch)")
    parser.add_argument("--num-check-cuts", type=int, default=4, help="utterances in the check batch")
    parser.add_argument("--chunk-ms", type=int, default=SUBSAMPLING_FACTOR * FRAME_SHIFT_MS * DEFAULT_CHUNK_FRAMES,
                        help="streaming chunk of the causal students (a multiple of 40 ms)")
    parser.add_argument("--out-dir", type=Path, help="default: <exp-dir>/export")
    return parser


def check_batch(cuts_path: Path, num_cuts: int):
    if not cuts_path.is_file():
        raise TranscribeError(f"Cut manifest {cuts_path} does not exist: run stage 2 first (or pass --cuts)")
    feats = []
    for cut in load_cuts(cuts_path):
        if cut.num_frames is not None and cut.num_frames >= MIN_INPUT_FRAMES:
            feats.append(torch.from_numpy(cut.load_features()))
        if len(feats) == num_cuts:
            break
    if not feats:
        raise TranscribeError(f"{cuts_path} has no cut with features of >= {MIN_INPUT_FRAMES} frames")
    lens = torch.tensor([f.size(0) for f in feats])
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lens


def main() -> None:
    args = get_parser().parse_args()
    setup_logging()
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
    frame_ms = SUBSAMPLING_FACTOR * FRAME_SHIFT_MS
    if args.chunk_ms < frame_ms or args.chunk_ms % frame_ms:
        logging.error(f"--chunk-ms must be a positive multiple of {frame_ms} ms, got {args.chunk_ms}")
        sys.exit(1)
    out_dir = args.out_dir or args.exp_dir / "export"
    try:
        tokenizer = load_lang(args.lang_dir)
        model, config = load_averaged(args.exp_dir, args.epoch, args.avg, use_averaged_model=args.use_averaged_model)
        try:
            check_lang_identity(args.exp_dir, args.lang_dir)
        except ValueError as err:
            raise TranscribeError(str(err)) from err
        check_model_matches_lang(model, tokenizer, args.lang_dir, str(args.exp_dir), config)
        features, lens = check_batch(args.cuts, args.num_check_cuts)
        symbols = [tokenizer.id_to_piece(i) for i in range(model.vocab_size)]
        unit = "bpe" if (args.lang_dir / "bpe.model").is_file() else "phone"
        manifest = export_model(model, symbols, out_dir, features, lens, model_name=args.exp_dir.name,
                                chunk_frames=args.chunk_ms // frame_ms, unit=unit,
                                extra={"source": {"exp_dir": str(args.exp_dir), "epoch": args.epoch, "avg": args.avg,
                                                  "use_averaged_model": args.use_averaged_model,
                                                  "lang_dir": str(args.lang_dir)},
                                       "lang_id": lang_identity(args.lang_dir)})
    except (TranscribeError, ExportError) as err:
        logging.error(f"{args.exp_dir}: {err}")
        sys.exit(1)
    sizes = {name: (out_dir / name).stat().st_size for name in manifest["sha256"]}
    logging.info(f"{out_dir}: " + ", ".join(f"{n} {s / 1e6:.2f} MB" for n, s in sorted(sizes.items()) if n.endswith(".onnx")))


if __name__ == "__main__":
    main()
