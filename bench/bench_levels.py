"""Char, word and subword LMs on the same held-out text, in bits per character (the one unit that compares
models with different tokens), each trained with its defaults for the same budget.

    python bench/bench_levels.py [--budget 300] [--corpora songci-1MB,pride] [--threads 2]

Corpora and splits are those of bench_quality.py (last 10% of lines held out). Every model's total NLL on the
held-out lines is divided by the characters of those lines as the char level reads them (cleaned, line ends
included). The word level lowercases and reads words seen once as <unk>, which makes its task easier than
spelling every character: its bits per character are a lower bound of what it would take to spell the text.
Writes bench/results/bench_levels.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import ROOT, assemble, train_and_score  # noqa: E402

from textseq.io import atomic_write_text  # noqa: E402
from textseq.text.pipeline import Pipeline, PipelineConfig  # noqa: E402
from textseq.text.reader import read_lines  # noqa: E402

LEVELS = ("char", "word", "subword")
RESULTS = ROOT / "bench" / "results" / "bench_levels.md"


def text_chars(path: Path) -> int:
    chars = Pipeline(PipelineConfig.for_level("char"))
    return sum(len(chars.process_line(line)) + 1 for line in read_lines(path))


def bits_per_char(metric: float | None, kind: str, tokens: int, chars: int) -> float | None:
    """A row's score as bits per character of the held-out text."""
    if metric is None:
        return None
    return metric if kind == "bpc" else math.log(metric) * tokens / chars / math.log(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--corpora", default="songci-1MB,pride")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: torch's default)")
    args = parser.parse_args()
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="textseq-levels-") as tmp:
        for corpus in args.corpora.split(","):
            train, test = assemble(corpus, Path(tmp))
            chars = text_chars(test)
            for level in LEVELS:
                r = train_and_score(train, test, level, args.budget, Path(tmp) / f"{corpus}-{level}", args.threads)
                bpc = {k: bits_per_char(r[k], r["metric"], r["test_tokens"], chars) for k in ("kn", "lm", "mix")}
                results.append({"corpus": corpus, "chars": chars, **r, "bpc": bpc})
                rows.append(f"| {corpus} | {level} | {r['test_tokens']:,} | {r['oov_rate']:.1%} | "
                            f"{chars / r['test_tokens']:.2f} | "
                            f"{bpc['kn']:.3f} | **{bpc['lm']:.3f}** | {bpc['mix']:.3f} | {r['lm'] / r['kn']:.3f} | "
                            f"{r['best_step']} / {r['steps']} |")
                print(rows[-1], flush=True)
    head = ("| corpus | level | held-out tokens | <unk> | chars / token | KN bpc | LM bpc | LM+KN bpc "
            "| LM / KN (own metric) | best / all updates |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    report = (f"## bench_levels ({os.cpu_count()} CPUs, {args.budget:g} s per model, `textseq train FILE --level L "
              f"--max-time {args.budget:g}` with no other flag)\n\n" + head + "\n" + "\n".join(rows) + "\n")
    print(report)
    atomic_write_text(RESULTS, report)
    atomic_write_text(RESULTS.with_suffix(".json"), json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
