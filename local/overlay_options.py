#!/usr/bin/env python3
"""Print the ``recipe`` section of an overlay file (a recipe's ``conf/demo.yaml``) as
``name value`` lines, one ``local/asr.sh`` option a line, for asr.sh to apply.

  local/overlay_options.py conf/demo.yaml     # e.g. "vocab_size 100"

Values must be single words (numbers, true/false, names): asr.sh options are.
"""
import argparse
import re
import sys
from pathlib import Path

from distill.train.config import read_overlay_section

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def shell_word(value: object) -> str:
    """``value`` as asr.sh writes it (booleans as true/false), or ValueError if it is not one word."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)) and re.fullmatch(r"[^\s'\"\\$`]+", str(value)):
        return str(value)
    raise ValueError(f"{value!r} is not a single word")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overlay", type=Path)
    args = parser.parse_args()
    try:
        options = read_overlay_section(args.overlay, "recipe")  # its errors name the file
    except (OSError, ValueError) as err:
        sys.exit(str(err))
    for name, value in options.items():
        name = str(name).replace("-", "_")
        if not NAME.match(name):
            sys.exit(f"{args.overlay}: recipe: {name!r} is not an option name")
        try:
            print(name, shell_word(value))
        except ValueError as err:
            sys.exit(f"{args.overlay}: recipe: {name}: {err}")


if __name__ == "__main__":
    main()
