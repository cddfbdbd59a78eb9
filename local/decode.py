#!/usr/bin/env python3
"""Decode cut sets with a trained transducer and score them (WER, CER, token F1, RTF; with a
phone lang dir, PER, token F1 and RTF).

Usage:
  local/decode.py --exp-dir exp/teacher --epoch 10 --avg 3 --lang-dir data/lang_bpe_500 \
      --cuts data/fbank/librispeech_cuts_test-clean.jsonl.gz \
      --method greedy_search modified_beam_search fast_beam_search fast_beam_search_nbest_LG
Writes, for each method and cut set, into <exp-dir>/<method>/ (icefall's layout):
  recogs-<part>-<tag>.txt  (reference/hypothesis pairs), errs-<part>-<tag>.txt (alignments and
  most frequent errors), wer-<part>-<tag>.txt (one summary line), speakers-<part>-<tag>.txt (the
  error rate of each speaker, worst first) and summary-<part>-<tag>.json
  (the same numbers for local/results_table.py), where <tag> names the method options and the
  checkpoint (epoch-<E>-avg-<A>, then -use-averaged-model with it).
"""
import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch

from distill.data.manifests import load_cuts
from distill.decode.decode_cuts import decode_cuts
from distill.decode.methods import METHODS, SearchOptions, make_word_decoder, method_tag
from distill.decode.scoring import ResultRow, char_errors, real_time_factor, save_results, speaker_error_rates_text
from distill.lang.tokenizer import PhoneTokenizer, check_lang_identity, load_tokenizer
from distill.models.transducer import num_params
from distill.train.checkpoint import last_epoch, load_averaged_model
from distill.utils.io import atomic_write_text
from distill.utils.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--epoch", type=int, required=True, help="0: the last epoch in --exp-dir")
    parser.add_argument("--avg", type=int, default=1)
    parser.add_argument("--use-averaged-model", action="store_true",
                        help="average the running average of the weights kept in training over those epochs (train.average_period), not their end points")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, nargs="+", required=True)
    parser.add_argument("--method", nargs="+", default=["greedy_search"], choices=METHODS)
    parser.add_argument("--max-duration", type=float, default=300.0)
    defaults = SearchOptions()
    for name, value in vars(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args()
    setup_logging(args.exp_dir / "log" / "decode.log")
    options = SearchOptions(**{name: getattr(args, name) for name in vars(defaults)})

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(args.lang_dir)
    try:
        check_lang_identity(args.exp_dir, args.lang_dir)
    except ValueError as err:
        logging.error(str(err))
        sys.exit(1)
    try:
        epoch = args.epoch or last_epoch(args.exp_dir)
        model = load_averaged_model(args.exp_dir, epoch, args.avg, device, args.use_averaged_model)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        logging.error(f"{err} (check --exp-dir, --epoch, --avg and --use-averaged-model)")
        sys.exit(1)
    params = num_params(model)
    # Phone units: the error rate over tokens is the phone error rate, and CER means nothing.
    phones = isinstance(tokenizer, PhoneTokenizer)
    error_name = "PER" if phones else "WER"
    for method in args.method:
        word_decoder = make_word_decoder(method, model, tokenizer, args.lang_dir, options)
        out_dir = args.exp_dir / method
        for path in args.cuts:
            cuts = load_cuts(path)
            part = path.name.replace(".jsonl.gz", "").split("_cuts_")[-1]
            results, elapsed = decode_cuts(model, cuts, tokenizer, args.max_duration, word_decoder)
            averaged = "-use-averaged-model" if args.use_averaged_model else ""
            tag = f"{part}-{method_tag(method, options)}-epoch-{epoch}-avg-{args.avg}{averaged}"
            stats = save_results(out_dir, tag, results)
            cer = None if phones else char_errors([(ref, hyp) for _, ref, hyp in results]).wer
            rtf = real_time_factor(elapsed, sum(c.duration for c in cuts))
            cer_text = "" if cer is None else f", CER {cer:.2f}%"
            summary = f"{stats.summary(error_name)}{cer_text}, token F1 {stats.f1:.4f}, RTF {rtf:.4f}, params {params}"
            atomic_write_text(out_dir / f"wer-{tag}.txt", summary + "\n")
            atomic_write_text(out_dir / f"speakers-{tag}.txt", speaker_error_rates_text(results, error_name))
            row = ResultRow(args.exp_dir.name, params, method, stats.wer, cer, stats.f1, rtf)
            record = {**dataclasses.asdict(row), "part": part, "epoch": epoch, "avg": args.avg,
                      "use_averaged_model": args.use_averaged_model, "tag": tag, "error_name": error_name}
            atomic_write_text(out_dir / f"summary-{tag}.json", json.dumps(record) + "\n")
            logging.info(f"{part} {method}: {summary}")


if __name__ == "__main__":
    main()
