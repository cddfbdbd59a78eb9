#!/usr/bin/env bash
# TIMIT: phone recognition; distill a pruned-transducer teacher into small RNN-T students.
#
#   ./run.sh --demo true                          # offline TIMIT-layout demo corpus, stages 0-6
#   ./run.sh --corpus-dir /data/TIMIT             # your copy of TIMIT (data/TRAIN, data/TEST)
#   ./run.sh --prepare-opts num_phones=48         # train and score on 48 phones instead of 39
#   ./run.sh --help                               # every option, with its value
#
# The stages live once, in local/asr.sh; this file holds only TIMIT's settings: lhotse's
# TIMIT parts, phones as units (39, Lee and Hon's folding, by default) and a phone bigram;
# stage 5 trains each student alone and distilled, with two seeds, for the PER table
# (RESULTS.md); the students are decoded and exported with the running average of their
# weights over their last epoch (train.average_period in conf/common.yaml).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=utils/path.sh
. ./path.sh

exec "$DISTILL_ROOT/local/asr.sh" \
  --corpus timit \
  --corpus-subdir TIMIT \
  --download false \
  --prepare-opts "num_phones=39" \
  --train-part TRAIN \
  --dev-parts DEV \
  --test-parts TEST \
  --unit phone \
  --lm-order 2 \
  --speed-perturb true \
  --student-baseline true \
  --student-seeds "1 2" \
  --student-use-averaged-model true \
  "$@"
