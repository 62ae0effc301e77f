"""LM quality with the defaults a user gets, next to the Kneser-Ney baseline the tool prints.

    python bench/bench_quality.py [--budget 300] [--corpora songci-1MB,pride,...] [--levels char,word]
                                  [--long 900] [--ablation CORPUS:LEVEL] [--jobs 1 --threads 0]

The bench as reported in the README, in two parts: the main table, one run at a time with the whole
2-core machine (as the goals are stated; an hour), then the longer budgets and the ablation, two runs at a
time with one core each (half an hour; a run there gets half the machine):

    python bench/bench_quality.py
    python bench/bench_quality.py --corpora "" --long 900 --ablation pride:word --jobs 2 --threads 1 \
        --results bench/results/bench_quality_extra.md

For every corpus (assembled from ../shared/data; none of these slices was used to tune the defaults, which
were chosen on the first megabyte of songci.txt and shakespeare.txt) and token level:

- the last 10% of the lines are held out as test text; the rest is the training file;
- ``textseq train TRAIN --level L --max-time BUDGET`` runs with no other flag, as a user would type it;
- ``evaluate_checkpoint`` scores the held-out text: the LM teacher-forced, the Kneser-Ney model fitted on
  the same training split with the same vocabulary, its order chosen on the validation split (at training
  time), and the two mixed with the weight fitted on the validation split; then the LM with the continuous
  cache and with dynamic evaluation (its learning rate fitted on the validation split), each also mixed with KN.

Goals (issue 9): LM <= 0.9 x KN (bits/char at char level, perplexity at word level), mix <= 0.85 x KN.
``--long`` repeats one Chinese and one English corpus with a longer budget; ``--ablation`` retrains one
corpus with each regularizer switched off in turn (and with NT weight averaging switched on).
Results: bench/results/bench_quality.md (also printed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "bench_quality.md"
MB = 1_000_000

# name -> (files, start fraction, bytes); slices of the shared corpora
CORPORA = {
    "songci-1MB": (["zh/songci.txt"], 0.5, 1 * MB),
    "tang+analects": (["zh/tangshi300.txt", "zh/lunyu.txt"], 0.0, 10 * MB),
    "pride": (["en/pride_and_prejudice.txt"], 0.0, 10 * MB),
    "shakespeare-1MB": (["en/shakespeare.txt"], 0.6, 1 * MB),
    "songci-3MB": (["zh/songci.txt"], 0.4, 3 * MB),
    "shakespeare-3MB": (["en/shakespeare.txt"], 0.3, 3 * MB),
}
LONG = (("songci-1MB", "char"), ("pride", "word"))  # corpus, level of the --long runs
ABLATIONS = {  # flag that switches one regularizer (or the schedule) off
    "no weight drop": ["--weight-drop", "0"],
    "no locked dropout": ["--dropout-in", "0", "--dropout-out", "0"],
    "no embedding dropout": ["--dropout-emb", "0"],
    "constant LR": ["--scheduler", "none"],
    "with NT weight averaging": ["--average", "nt"],
}


def assemble(name: str, out_dir: Path) -> tuple[Path, Path]:
    """The corpus slice split by lines: (training file, held-out test file)."""
    files, start_frac, size = CORPORA[name]
    lines: list[str] = []
    for file in files:
        lines += (DATA / file).read_text(encoding="utf-8").splitlines(keepends=True)
    total = sum(len(line.encode()) for line in lines)
    start, taken, pos, picked = int(start_frac * total), 0, 0, []
    for line in lines:
        if pos >= start and taken < size:
            picked.append(line)
            taken += len(line.encode())
        pos += len(line.encode())
    cut = int(len(picked) * 0.9)
    train, test = out_dir / f"{name}.train.txt", out_dir / f"{name}.test.txt"
    train.write_text("".join(picked[:cut]), encoding="utf-8")
    test.write_text("".join(picked[cut:]), encoding="utf-8")
    return train, test


def train_and_score(train: Path, test: Path, level: str, budget: float, run_dir: Path, threads: int,
                    extra: list[str] = ()) -> dict:
    argv = [sys.executable, "-m", "textseq", "train", str(train), "--level", level, "--max-time", str(budget),
            "-o", str(run_dir), "--force", "--threads", str(threads), *extra]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    seconds = time.perf_counter() - start
    from textseq.lm.checkpoint import read_lm
    from textseq.lm.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(run_dir / "best.pt", test, horizon=0)
    kinds = {"RNN teacher-forced": "lm", "Kneser-Ney": "kn", "RNN + KN (": "mix", "RNN + cache": "cache",
             "RNN + KN + cache": "all", "RNN + dynamic (": "dyn", "RNN + dynamic + KN": "dynkn"}
    rows = {kind: row for row in report.rows for prefix, kind in kinds.items() if row.name.startswith(prefix)}
    lm, kn, mix, cache, combined = rows["lm"], rows["kn"], rows.get("mix"), rows.get("cache"), rows.get("all")
    stored = read_lm(run_dir / "best.pt")
    header = [line for line in done.stderr.splitlines() if line.startswith(("model:", "training:", "regular"))]
    return {"level": level, "metric": report.metric, "test_tokens": report.tokens, "oov_rate": report.oov_rate,
            "lm": lm.metric,
            "kn": kn.metric, "kn_order": stored["ngram"]["order"], "mix": mix.metric if mix else None,
            "cache": cache.metric if cache else None, "all": combined.metric if combined else None,
            "dyn": rows["dyn"].metric if "dyn" in rows else None,
            "dynkn": rows["dynkn"].metric if "dynkn" in rows else None,
            "weight": report.mix_weight, "best_step": stored["progress"]["step"],
            "steps": read_lm(run_dir / "last.pt")["progress"]["step"], "seconds": seconds,
            "train_tokens": stored["progress"]["data_tokens"], "header": header}


def fmt_row(name: str, r: dict) -> str:
    number = (lambda v: f"{v:.3f}") if r["metric"] == "bpc" else (lambda v: f"{v:.1f}")
    mix = f"{number(r['mix'])} | **{r['mix'] / r['kn']:.3f}**" if r["mix"] is not None else "- | -"
    cache = f"{number(r['cache'])} | {r['cache'] / r['kn']:.3f}" if r["cache"] is not None else "- | -"
    combined, dyn, dynkn = (f"{number(r[k])} | {r[k] / r['kn']:.3f}" if r.get(k) is not None else "- | -"
                            for k in ("all", "dyn", "dynkn"))
    return (f"| {name} | {r['level']} ({r['metric']}) | {r['train_tokens']:,} | {number(r['kn'])} ({r['kn_order']}) | "
            f"{number(r['lm'])} | **{r['lm'] / r['kn']:.3f}** | {mix} | {cache} | {combined} | {dyn} | {dynkn} | "
            f"{r['best_step']} / {r['steps']} |")


HEAD = ("| corpus | level | tokens | KN (order) | LM | LM / KN | LM+KN | mix / KN | LM+cache | cache / KN "
        "| LM+KN+cache | all / KN | LM dynamic | dyn / KN | LM dynamic+KN | dyn+KN / KN | best / all updates |"
        "\n|---|---|" + "---:|" * 15)


def run_job(job: tuple, threads: int, tmp: Path) -> dict:
    """One training + scoring run, in this process."""
    corpus, level, budget, extra = job
    train, test = assemble(corpus, tmp)
    name = "-".join([corpus, level, f"{budget:g}", *extra]).replace(" ", "")
    return train_and_score(train, test, level, budget, tmp / name, threads, list(extra))


def run_jobs(jobs: list[tuple], parallel: int, threads: int):
    """Yield each job's result, in job order. With ``parallel`` > 1, that many jobs run at once, each in its
    own process with ``threads`` torch threads (1 CPU core each on a 2-core machine)."""
    if parallel <= 1:
        with tempfile.TemporaryDirectory() as tmp:
            for job in jobs:
                yield run_job(job, threads, Path(tmp))
        return

    def in_subprocess(job: tuple) -> dict:
        argv = [sys.executable, __file__, "--one", json.dumps(job), "--threads", str(threads)]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"job {job} failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.splitlines()[-1])

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        yield from pool.map(in_subprocess, jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--levels", default="char,word")
    parser.add_argument("--long", type=float, default=0.0, help="also train LONG corpora with this budget")
    parser.add_argument("--ablation", default="", help="corpus:level to ablate, e.g. pride:word")
    parser.add_argument("--ablation-budget", type=float, default=0.0, help="budget of the ablation runs "
                        "(0: --budget)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each with --threads threads)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: torch's default)")
    parser.add_argument("--results", default=str(RESULTS), help="where to write the markdown table")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)  # internal: run one job, print its JSON
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        corpus, level, budget, extra = json.loads(args.one)
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_job((corpus, level, budget, tuple(extra)), args.threads, Path(tmp))))
        return
    setup = (f"{args.jobs} runs at a time, {args.threads} thread(s) each" if args.jobs > 1
             else f"{args.threads or 'default'} thread(s)")
    lines = [f"Budget {args.budget:g} s per model on this machine (2 CPU cores; {setup}), `textseq train FILE "
             f"--level L --max-time {args.budget:g}` with no other flag; held-out last 10% of lines.", "", HEAD]
    print("\n".join(lines), flush=True)
    levels = [lv for lv in args.levels.split(",") if lv]
    # (label, section, job): sections "main" and "ablation" are separate tables
    planned = [(c, "main", (c, lv, args.budget, ())) for c in args.corpora.split(",") if c for lv in levels]
    planned += [(f"{c}, {args.long:g} s", "main", (c, lv, args.long, ())) for c, lv in LONG
                if args.long and lv in levels]
    if args.ablation:
        corpus, level = args.ablation.split(":")
        budget = args.ablation_budget or args.budget
        planned += [(name, "ablation", (corpus, level, budget, tuple(flags)))
                    for name, flags in {"defaults": [], **ABLATIONS}.items()]
    log = []
    results = run_jobs([job for _, _, job in planned], args.jobs, args.threads)
    for (label, section, job), result in zip(planned, results, strict=True):
        if section == "ablation" and label == "defaults":
            lines += ["", f"Ablation on {job[0]} ({job[1]}, {job[2]:g} s): each row switches one part off "
                      "(or, for averaging, on).", "", HEAD]
            print("\n".join(lines[-4:]), flush=True)
        lines.append(fmt_row(label, result))
        log.append({"corpus": job[0], "label": label, "section": section, **result})
        print(lines[-1], flush=True)
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text("\n".join(lines) + "\n", encoding="utf-8")
    results.with_suffix(".json").write_text(json.dumps(log, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
