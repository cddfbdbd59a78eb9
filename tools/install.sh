#!/usr/bin/env bash
# One-command set-up: Debian packages for the demo corpus, a virtual environment in
# ./.venv with the pinned stack (requirements.txt), k2 and kaldifeat installed the way
# docs/stack.md describes, and this package (editable).
#
# Usage: bash tools/install.sh
# Environment:
#   PYTHON          interpreter to build the venv from (default: python3.11, else python3)
#   DISTILL_CACHE   where built/downloaded wheels are cached
#                   (default: ${XDG_CACHE_HOME:-~/.cache}/distill-kd)
#   SKIP_APT=1      do not try to install Debian packages (only check for them)
# Rerunning is safe and cheap: cached wheels are reused, nothing is compiled twice.
set -euo pipefail

K2_VERSION=1.23.4
KALDIFEAT_VERSION=1.24
APT_PACKAGES="flite espeak-ng festival festvox-kdlpc16k sox libsox-fmt-all flac wordnet-base bible-kjv shellcheck"
# The commands/files the demo corpus needs from those packages.
NEEDED_PROGRAMS="flite espeak-ng text2wave sox"
NEEDED_FILES="/usr/share/wordnet/data.noun"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${DISTILL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/distill-kd}
venv=$root/.venv
step="start"
start_time=$(date +%s)

log() { echo "[install $(date +%H:%M:%S)] $*"; }
fail() { echo "[install] FAILED at step '$step': $*" >&2; exit 1; }
on_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] || echo "[install] FAILED at step: $step (exit $rc)" >&2
}
trap on_exit EXIT

step="debian packages"
missing_debs() {
  local m=""
  for p in $NEEDED_PROGRAMS; do command -v "$p" > /dev/null || m="$m $p"; done
  for f in $NEEDED_FILES; do [ -e "$f" ] || m="$m $f"; done
  [ -e /usr/share/festival/voices/english/kal_diphone ] || [ -e /usr/share/festival/voices/english/ked_diphone ] || m="$m festival-voice"
  command -v bible > /dev/null || m="$m bible"
  echo "$m"
}
if [ -n "$(missing_debs)" ]; then
  if [ "${SKIP_APT:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    log "installing Debian packages: $APT_PACKAGES"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $APT_PACKAGES > /dev/null \
      || fail "apt-get install $APT_PACKAGES"
  fi
  m=$(missing_debs)
  [ -z "$m" ] || fail "missing for the demo corpus:$m. As root run: apt-get install $APT_PACKAGES"
fi
log "Debian packages present: $APT_PACKAGES"

step="python interpreter"
python=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
[ -n "$python" ] || fail "no python3 found; install CPython 3.11"
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = 3.11 ] || fail "$python is Python $pyver; k2 $K2_VERSION on the index needs CPython 3.11 (set PYTHON=...)"

step="virtual environment"
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$python" -m venv "$venv" || fail "python -m venv $venv"
fi
vpy=$venv/bin/python

step="requirements.txt"
log "installing requirements.txt (torch 1.13.1 is ~2.3 GB the first time)"
"$vpy" -m pip install -q -r "$root/requirements.txt" || fail "pip install -r requirements.txt"

step="k2"
if ! "$vpy" -c "import k2, sys; sys.exit(0 if k2.__dev_version__.startswith('$K2_VERSION') else 1)" 2> /dev/null; then
  k2_file="k2-$K2_VERSION-py$pyver-none-any.whl"  # by name: see tools/fetch_from_index.py
  k2_wheel=$("$vpy" "$root/tools/fetch_from_index.py" "$cache" k2 "$k2_file" | tail -n 1) \
    || fail "fetching the k2 wheel"
  "$vpy" -m pip install -q --no-deps "$k2_wheel" || fail "pip install $k2_wheel"
fi

step="kaldifeat"
if ! "$vpy" -c "import kaldifeat" 2> /dev/null; then
  kf_wheel=$(bash "$root/tools/build_kaldifeat.sh" "$vpy" "$cache" "$KALDIFEAT_VERSION" | tail -n 1) \
    || fail "building kaldifeat"
  "$vpy" -m pip install -q --no-deps "$kf_wheel" || fail "pip install $kf_wheel"
fi

step="this package"
"$vpy" -m pip install -q --no-deps --no-build-isolation -e "$root" || fail "pip install -e ."

step="import check"
"$vpy" - << 'PY' || fail "the installed stack does not import"
from importlib.metadata import version
import torch, k2, kaldifeat, lhotse, sentencepiece, kaldialign, kaldilm, soundfile, numpy  # noqa: F401
import distill  # noqa: F401
import sys
print("[install] installed:")
print(f"[install]   {'python':14s} {sys.version.split()[0]}")
for name in ("torch", "k2", "kaldifeat", "lhotse", "lilcom", "numpy", "sentencepiece", "kaldialign",
             "kaldilm", "soundfile", "tensorboard", "distill"):
    print(f"[install]   {name:14s} {version(name)}")
PY
step="done"
log "set-up finished in $(( $(date +%s) - start_time )) s; venv: $venv (activate: source .venv/bin/activate)"
