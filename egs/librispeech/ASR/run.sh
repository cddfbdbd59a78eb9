#!/usr/bin/env bash
# LibriSpeech: distill a pruned-transducer teacher into small RNN-T students.
#
#   ./run.sh --stage 0 --stop-stage 3 --demo true    # offline demo corpus, data stages
#   ./run.sh --dl-dir /data/corpora                  # real LibriSpeech (downloaded if missing)
#   ./run.sh --help                                  # every option, with its value
#
# The stages live once, in local/asr.sh; this file holds only LibriSpeech's settings.
# Any option given here can be overridden on the command line. With --demo true, conf/demo.yaml
# sets the demo's BPE size and training budgets: they fit the main job (--demo true --stage 0
# --stop-stage 6) into 90 minutes on 2 cores (RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=utils/path.sh
. ./path.sh

exec "$DISTILL_ROOT/local/asr.sh" \
  --corpus librispeech \
  --corpus-subdir LibriSpeech \
  --train-part train-clean-100 \
  --dev-parts "dev-clean dev-other" \
  --test-parts "test-clean test-other" \
  --unit bpe \
  --text-norm librispeech \
  --vocab-size 500 \
  --speed-perturb true \
  "$@"
