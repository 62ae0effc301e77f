"""Kneser-Ney n-gram LM: speed against nltk, and held-out bits per character by order.

1. textseq KneserNeyLM vs nltk.lm.KneserNeyInterpolated on the same small text (word trigrams and
   char 5-grams): fit time, scoring time per token, ratios. Both score the same held-out events;
   nltk gives unseen tokens probability 0 (see tests/test_features_ngram_lm.py), so its perplexity
   is reported as is.
2. Fit time of an order-5 char model on 1 MB of Shakespeare, and evaluation speed.
3. Held-out bits per char for char orders 1..7 on Song ci (Chinese) and Shakespeare (English):
   the last 10% of lines are held out.

    python bench/bench_ngram_lm.py [--data ../shared/data] [--max-chars 2000000]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from textseq.features.ngram_lm import KneserNeyLM
from textseq.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench_ngram_lm.md"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def read_lines(path: Path, max_chars: int | None = None) -> list[str]:
    text = path.read_text(encoding="utf-8")[:max_chars]
    return [line for line in text.split("\n") if line.strip()]


def split(docs: list, fraction: float = 0.9) -> tuple[list, list]:
    cut = int(len(docs) * fraction)
    return docs[:cut], docs[cut:]


def nltk_run(order: int, train: list[list[str]], held_out: list[list[str]]):
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    def fit():
        model = KneserNeyInterpolated(order)
        model.fit(*padded_everygram_pipeline(order, train))
        return model

    model, fit_time = timed(fit)
    events = [g for doc in held_out for g in ngrams(pad_both_ends(doc, n=order), order)]
    _, score_time = timed(lambda: [model.logscore(g[-1], g[:-1]) for g in events])
    try:
        perplexity = model.perplexity(events)
    except ZeroDivisionError:
        perplexity = math.inf
    return fit_time, score_time, len(events), perplexity


def bench_vs_nltk(data: Path) -> list[list[str]]:
    words = [line.lower().split() for line in read_lines(data / "en" / "pride_and_prejudice.txt")][:400]
    chars = [list(line) for line in read_lines(data / "zh" / "tangshi300.txt")][:300]
    rows = []
    for label, order, docs in (("words, Pride & Prejudice 400 lines", 3, words),
                               ("chars, Tang poems 300 lines", 5, chars)):
        train, held_out = split(docs)
        ours, our_fit = timed(lambda order=order, train=train: KneserNeyLM(order).fit(train))
        score, our_eval = timed(lambda ours=ours, held_out=held_out: ours.evaluate(held_out))
        _, our_calls = timed(lambda ours=ours, held_out=held_out: [
            ours.logprob(doc[:i], token) for doc in held_out for i, token in enumerate([*doc, "<eos>"])])
        their_fit, their_eval, events, their_ppl = nltk_run(order, train, held_out)
        per_token = {"evaluate": our_eval / score.tokens, "logprob": our_calls / score.tokens,
                     "nltk": their_eval / events}
        rows.append([label, str(order), f"{our_fit * 1e3:.1f}", f"{their_fit * 1e3:.0f}",
                     f"{their_fit / our_fit:.0f}x", f"{per_token['evaluate'] * 1e6:.2f}",
                     f"{per_token['logprob'] * 1e6:.1f}", f"{per_token['nltk'] * 1e6:.0f}",
                     f"{per_token['nltk'] / per_token['evaluate']:.0f}x / "
                     f"{per_token['nltk'] / per_token['logprob']:.0f}x",
                     f"{score.perplexity:.1f}", f"{their_ppl:.1f}"])
    return rows


def bench_one_megabyte(data: Path) -> list[list[str]]:
    docs = [list(line) for line in read_lines(data / "en" / "shakespeare.txt", max_chars=1_000_000)]
    train, held_out = split(docs)
    n_chars = sum(len(d) + 1 for d in train)
    model, fit_time = timed(lambda: KneserNeyLM(5).fit(train))
    score, eval_time = timed(lambda: model.evaluate(held_out))
    return [[f"{n_chars:,}", f"{fit_time:.2f}", f"{n_chars / fit_time:,.0f}", f"{score.tokens:,}",
             f"{score.tokens / eval_time:,.0f}", f"{score.bits_per_token:.3f}"]]


def bench_orders(data: Path, max_chars: int) -> list[list[str]]:
    rows = []
    for label, path in (("Song ci (zh)", data / "zh" / "songci.txt"),
                        ("Shakespeare (en)", data / "en" / "shakespeare.txt")):
        train, held_out = split([list(line) for line in read_lines(path, max_chars)])
        train_chars = sum(len(d) + 1 for d in train)
        for order in range(1, 8):
            model, fit_time = timed(lambda order=order, train=train: KneserNeyLM(order).fit(train))
            score, eval_time = timed(lambda model=model, held_out=held_out: model.evaluate(held_out))
            n_grams = sum(model.ngram_types)
            rows.append([label, f"{train_chars:,}", str(order), f"{score.bits_per_token:.3f}",
                         f"{score.perplexity:.2f}", f"{score.oov_rate:.4f}", f"{n_grams:,}",
                         f"{fit_time:.2f}", f"{score.tokens / eval_time:,.0f}"])
    return rows


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--max-chars", type=int, default=2_000_000, help="chars read per corpus in part 3")
    args = parser.parse_args()
    sections = [
        ("## 1. textseq vs nltk.lm.KneserNeyInterpolated (same text, same machine, same run)",
         "nltk's perplexity is inf because it gives held-out tokens unseen in training probability 0 "
         "(no uniform floor under its unigram level); ours scores them as <unk>.",
         ["text", "order", "fit ms (ours)", "fit ms (nltk)", "fit speed-up", "µs/token evaluate()",
          "µs/token logprob()", "µs/token nltk logscore()", "scoring speed-up (evaluate / logprob)",
          "held-out ppl (ours)", "held-out ppl (nltk)"],
         bench_vs_nltk(args.data)),
        ("## 2. Order-5 char model on the first 1 MB of Shakespeare", "",
         ["train chars", "fit s", "train chars/s", "held-out chars", "eval chars/s", "bits/char"],
         bench_one_megabyte(args.data)),
        (f"## 3. Held-out bits per char by order (first {args.max_chars:,} chars of each corpus)",
         "The last 10% of lines are held out; <eos> counts as a char; each line is scored from <bos>.",
         ["corpus", "train chars", "order", "bits/char", "perplexity", "OOV rate", "n-grams", "fit s",
          "eval chars/s"],
         bench_orders(args.data, args.max_chars)),
    ]
    report = ["# bench_ngram_lm", "", "`python bench/bench_ngram_lm.py` (2 shared CPU cores: timings are noisy, "
              "compare within a table).", ""]
    for title, note, headers, rows in sections:
        table = markdown(headers, rows)
        print(title, note, table, "", sep="\n")
        report += [title, "", note, "", table, ""] if note else [title, "", table, ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, "\n".join(report))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
