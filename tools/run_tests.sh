#!/usr/bin/env bash
# The default test suite (tests marked slow are skipped; add `-m slow` to run only those).
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -m slow` or `... tests/data`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "run_tests: $root/.venv is missing: run 'bash tools/install.sh' first" >&2
  exit 1
fi
cd "$root"
exec "$root/.venv/bin/python" -m pytest -q "$@"
