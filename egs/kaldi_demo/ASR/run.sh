#!/usr/bin/env bash
# The worked example of docs/new_corpus.md: egs/TEMPLATE/ASR with its six values set for a
# corpus in Kaldi's format (the offline Kaldi-format demo corpus: ./run.sh --demo true).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=utils/path.sh
. ./path.sh

# --- the corpus ------------------------------------------------------------------------
corpus=kaldi              # "kaldi" for Kaldi data dirs, or your module of distill/data/corpora/
corpus_dir=$PWD/download/kaldi_demo/data  # kaldi: holds <part>/wav.scp, text, utt2spk (and segments)
train_part=train          # the part names: folders under $corpus_dir for kaldi
dev_parts=dev
test_parts="test"
unit=bpe                  # bpe (words; --vocab-size) or phone (transcripts are phone sequences)
# ----------------------------------------------------------------------------------------

# Model configs: LibriSpeech's to start with; copy them into ./conf and pass --conf-dir conf to tune.
exec "$DISTILL_ROOT/local/asr.sh" \
  --corpus "$corpus" \
  --corpus-dir "$corpus_dir" \
  --train-part "$train_part" \
  --dev-parts "$dev_parts" \
  --test-parts "$test_parts" \
  --unit "$unit" \
  --conf-dir "$DISTILL_ROOT/egs/librispeech/ASR/conf" \
  "$@"
