#!/usr/bin/env bash
# Kaldi-style option parsing, to be *sourced* by a script after it declares its variables:
#
#   stage=0
#   stop_stage=100
#   use_demo=false
#   . utils/parse_options.sh
#
# Then `--stop-stage 3` or `--stop-stage=3` sets stop_stage=3 (dashes become underscores).
# Rules (as in Kaldi):
#   - only variables already declared can be set; an unknown option is an error;
#   - a variable that holds true/false accepts only true or false;
#   - `--config FILE` sources FILE (which may set any of the variables);
#   - `--help` / `-h` prints $help_message (if set) and the options with their current
#     values, then exits 0;
#   - option parsing stops at the first argument that does not start with `--`;
#     what is left stays in "$@" for the script.

__po_usage() {
  if [ -n "${help_message:-}" ]; then echo -e "$help_message"; fi
  echo "Options (current values):"
  local name
  # The options are the variables the calling script assigns at the start of a line.
  for name in $(grep -oE '^[a-z][a-z0-9_]*=' "$0" | tr -d '=' | awk '!seen[$0]++'); do
    [ "$name" = help_message ] && continue
    [ -n "${!name+set}" ] && echo "  --${name//_/-} ${!name}"
  done
}

while true; do
  [ $# -eq 0 ] && break
  case "$1" in
    --help|-h)
      __po_usage
      exit 0
      ;;
    --*=*)
      __po_name=${1%%=*}; __po_value=${1#*=}; shift
      ;;
    --*)
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2
        exit 1
      fi
      __po_name=$1; __po_value=$2; shift 2
      ;;
    *)
      break
      ;;
  esac
  __po_var=${__po_name#--}
  __po_var=${__po_var//-/_}
  if ! [[ $__po_var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "$0: invalid option $__po_name" >&2
    exit 1
  fi
  if [ "$__po_var" = config ]; then
    if [ ! -f "$__po_value" ]; then
      echo "$0: config file $__po_value not found" >&2
      exit 1
    fi
    # shellcheck disable=SC1090
    . "$__po_value"
    continue
  fi
  if [ -z "${!__po_var+set}" ]; then
    echo "$0: invalid option $__po_name (no variable $__po_var is declared; see --help)" >&2
    exit 1
  fi
  __po_old=${!__po_var}
  if [ "$__po_old" = true ] || [ "$__po_old" = false ]; then
    if [ "$__po_value" != true ] && [ "$__po_value" != false ]; then
      echo "$0: option $__po_name takes true or false, not '$__po_value'" >&2
      exit 1
    fi
  fi
  printf -v "$__po_var" '%s' "$__po_value"
done
unset __po_name __po_value __po_var __po_old
true
