# shellcheck shell=bash
# Sourced by run.sh: the project root, its virtual environment (made by tools/install.sh),
# and a single thread per process for the small-core machines this runs on by default.
DISTILL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
export DISTILL_ROOT
if [ ! -f "$DISTILL_ROOT/.venv/bin/activate" ]; then
  echo "path.sh: $DISTILL_ROOT/.venv is missing: run 'bash tools/install.sh' in $DISTILL_ROOT first" >&2
  return 1
fi
# shellcheck disable=SC1091
. "$DISTILL_ROOT/.venv/bin/activate"
export PYTHONPATH=$DISTILL_ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
