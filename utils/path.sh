# shellcheck shell=bash
# Sourced by a recipe's run.sh through its path.sh, a link to this file (egs/<corpus>/ASR/path.sh
# -> ../../../utils/path.sh): the project root, its virtual environment (made by
# tools/install.sh) and unbuffered Python output for the logs.
# The root is the folder above the real file (utils/), wherever the link to it is.
DISTILL_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export DISTILL_ROOT
if [ ! -f "$DISTILL_ROOT/.venv/bin/activate" ]; then
  echo "path.sh: $DISTILL_ROOT/.venv is missing: run 'bash tools/install.sh' in $DISTILL_ROOT first" >&2
  return 1
fi
# shellcheck disable=SC1091
. "$DISTILL_ROOT/.venv/bin/activate"
export PYTHONPATH=$DISTILL_ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
