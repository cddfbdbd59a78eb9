#!/usr/bin/env python3
"""Train a transducer (stage 4 teacher; stage 5 students) with the pruned RNN-T loss.

Single process:
  local/train.py --config conf/teacher.yaml --exp-dir exp/teacher \
      --train-cuts data/fbank/librispeech_cuts_train-clean-100.jsonl.gz \
      --valid-cuts data/fbank/librispeech_cuts_dev-clean.jsonl.gz --lang-dir data/lang_bpe_500
Several processes (DDP; gloo on CPU, nccl on GPU), same arguments:
  torchrun --nproc_per_node=2 local/train.py ...
Resume: --start-epoch N (from epoch-(N-1).pt) or --resume (from the newest checkpoint).
Any config value: --set optim.base_lr=0.001 --set model.encoder_dim=144
Layers, in order: each --config file, then each --overlay FILE SECTION (one section of an overlay
such as conf/demo.yaml: teacher or students), then the --set values and the options below.
"""
import argparse
from pathlib import Path

from distill.train.config import load_config
from distill.train.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, action="append", default=[], help="YAML config (repeatable)")
    parser.add_argument("--overlay", nargs=2, action="append", default=[], metavar=("FILE", "SECTION"),
                        help="one section of an overlay file, after the --config files (repeatable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--exp-dir", help="= --set train.exp_dir=...")
    parser.add_argument("--train-cuts", help="= --set data.train_cuts=...")
    parser.add_argument("--valid-cuts", help="= --set data.valid_cuts=...")
    parser.add_argument("--lang-dir", help="= --set data.lang_dir=...")
    parser.add_argument("--num-epochs", type=int, help="= --set train.num_epochs=...")
    parser.add_argument("--start-epoch", type=int, default=0, help="resume from epoch-(N-1).pt")
    parser.add_argument("--resume", action="store_true", help="resume from the newest checkpoint, if any")
    parser.add_argument("--max-batches", type=int, default=0, help="stop after this many batches (smoke runs)")
    args = parser.parse_args()

    shortcuts = {"train.exp_dir": args.exp_dir, "data.train_cuts": args.train_cuts,
                 "data.valid_cuts": args.valid_cuts, "data.lang_dir": args.lang_dir,
                 "train.num_epochs": args.num_epochs}
    overrides = [f"{k}={v}" for k, v in shortcuts.items() if v is not None] + args.overrides
    config = load_config(args.config, overrides, [(Path(f), s) for f, s in args.overlay])
    trainer = Trainer(config, max_batches=args.max_batches)
    trainer.resume(start_epoch=args.start_epoch, from_last=args.resume)
    trainer.train()


if __name__ == "__main__":
    main()
