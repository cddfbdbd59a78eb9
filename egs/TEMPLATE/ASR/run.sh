#!/usr/bin/env bash
# TEMPLATE recipe: copy this folder to egs/<corpus>/ASR and set the six values below
# (docs/new_corpus.md). Stages 0-6 live once, in local/asr.sh; this file holds only settings.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=utils/path.sh
. ./path.sh

# --- the corpus ------------------------------------------------------------------------
corpus=kaldi              # "kaldi" for Kaldi data dirs, or your module of distill/data/corpora/
corpus_dir=/path/to/data  # kaldi: holds <part>/wav.scp, text, utt2spk (and segments)
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
