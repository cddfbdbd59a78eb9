#!/usr/bin/env python3
"""Collect the decoding summaries of experiment dirs into one markdown results table.

Usage:
  local/results_table.py --exp-dirs exp/teacher exp/student_rnn_alone exp/student_rnn_kd \
      --out exp/results.md
Reads <exp-dir>/<method>/summary-*.json (written by local/decode.py). With several parts,
first one table of the error rates with a column per part (dev-clean, dev-other, test-clean,
test-other: the conditions side by side); then one table per cut set (part) with every metric,
rows in the order of --exp-dirs, then by method; after each, the runs that differ only in
their seed (``..._seed<N>``) averaged, one row per model and method.
"""
import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

from distill.decode.scoring import ResultRow, mean_over_seeds, results_table, side_by_side_table
from distill.utils.io import atomic_write_text


def collect(exp_dirs: List[Path]) -> Tuple[Dict[str, List[ResultRow]], Dict[str, str]]:
    """Rows per part, in ``exp_dirs`` order then method name; and each part's error name
    (WER, or PER for phone units)."""
    tables: Dict[str, List[ResultRow]] = defaultdict(list)
    error_names: Dict[str, str] = {}
    for exp_dir in exp_dirs:
        records = [json.loads(p.read_text()) for p in sorted(exp_dir.glob("*/summary-*.json"))]
        runs = Counter(checkpoint_key(r) for r in records)
        for record in sorted(records, key=lambda r: (r["part"], r["method"], r["tag"])):
            fields = {k: record[k] for k in ("model", "params", "method", "wer", "cer", "f1", "rtf")}
            # A method decoded with several option sets gets its options (the tag) in its label.
            several = runs[checkpoint_key(record)] > 1
            method = method_with_options(record) if several else record["method"]
            running = ", running average" if record.get("use_averaged_model") else ""
            fields["method"] = f"{method} (epoch {record['epoch']}, avg {record['avg']}{running})"
            tables[record["part"]].append(ResultRow(**fields))
            error_names[record["part"]] = record.get("error_name", "WER")
    return tables, error_names


def checkpoint_key(record: Dict) -> Tuple:
    """What names a decoded model and method apart from the method's options."""
    return record["part"], record["method"], record["epoch"], record["avg"], record.get("use_averaged_model", False)


def method_with_options(record: Dict) -> str:
    """The method and its options, from a summary's tag ``<part>-<method tag>-epoch-<E>-avg-<A>``."""
    tag = record["tag"][len(record["part"]) + 1 :]
    return tag[: tag.rindex("-epoch-")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp-dirs", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tables, error_names = collect([d for d in args.exp_dirs if d.is_dir()])
    if not tables:
        raise SystemExit(f"No decoding summaries (*/summary-*.json) in {' '.join(map(str, args.exp_dirs))}: run local/decode.py first")
    text = ""
    parts = sorted(tables)  # dev before test, clean before other (LibriSpeech's names sort so)
    means = {part: mean_over_seeds(tables[part]) for part in parts}  # non-empty: runs of several seeds
    if len(parts) > 1:
        error_name = error_names[parts[0]]
        text += f"### {error_name} by part\n\n{side_by_side_table({p: tables[p] for p in parts}, error_name)}\n"
        if any(means.values()):
            text += f"{error_name} by part, mean over seeds:\n\n{side_by_side_table(means, error_name)}\n"
    for part in parts:
        text += f"### {part}\n\n{results_table(tables[part], error_names[part])}\n"
        if means[part]:  # student runs of several seeds (stage 5's --student-seeds)
            text += f"{part}, mean over seeds:\n\n{results_table(means[part], error_names[part])}\n"
    atomic_write_text(args.out, text)
    print(text, end="")


if __name__ == "__main__":
    main()
