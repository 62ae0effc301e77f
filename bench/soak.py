"""Soak test: run the whole toolkit in one long-lived process and watch its memory.

Loop for ``--minutes``: train a small char LM for a chunk of steps (``--resume`` continuation after
the first chunk), generate samples from the checkpoint, evaluate it on held-out text (with the
Kneser-Ney baseline), train a forecaster on a built-in dataset and predict with it -- all through
``textseq.cli.run`` in this process, so anything that leaks (caches, tensors, figures, file handles)
accumulates here. A thread samples the RSS every ``--sample-every`` seconds.

Reports the RSS at start, after warm-up and at the end, the max, and the least-squares slope after
warm-up (MB/min); exits 1 if the RSS grew by more than ``--max-growth-mb`` after warm-up.

    python bench/soak.py              # 5 minutes, writes bench/results/soak.md
    python bench/soak.py --minutes 1 --out /tmp/soak.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import torch

from textseq.cli import run

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "zh" / "lunyu.txt"
MB = 1024 * 1024
LM_FLAGS = ["--level", "char", "--layers", "1", "--hidden", "64", "--emb", "32", "--bptt", "32",
            "--batch-size", "16", "--epochs", "10000", "--checkpoint-every", "25", "--eval-every", "50", "--quiet"]


@dataclass
class Sampler:
    """RSS of this process every ``interval`` seconds, in a daemon thread."""

    interval: float
    times: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)  # MB

    def __post_init__(self):
        self.process, self.start = psutil.Process(), time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.times.append(time.monotonic() - self.start)
        self.rss.append(self.process.memory_info().rss / MB)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Sampler:
        self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()


@dataclass
class Workload:
    """One pass through every stage; counts runs and seconds per stage."""

    work: Path
    steps_per_chunk: int
    steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)

    def prepare(self) -> None:
        text = CORPUS.read_text(encoding="utf-8")
        (self.work / "train.txt").write_text(text[:20000], encoding="utf-8")
        (self.work / "heldout.txt").write_text(text[20000:26000], encoding="utf-8")

    def cli(self, stage: str, *argv: str) -> None:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = run([str(a) for a in argv])
        if code != 0:
            raise SystemExit(f"soak: `textseq {' '.join(map(str, argv))}` exited with {code}")
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
        self.runs[stage] = self.runs.get(stage, 0) + 1

    def iteration(self, i: int) -> None:
        run_dir, last = self.work / "lm", self.work / "lm" / "last.pt"
        self.steps += self.steps_per_chunk
        if i == 0:
            self.cli("train", "train", self.work / "train.txt", "-o", run_dir, *LM_FLAGS, "--max-steps", self.steps)
        else:
            self.cli("train", "train", "--resume", last, "--max-steps", self.steps, "--quiet")
        self.cli("generate", "generate", last, "--prompt", "子曰", "-n", "60", "--num-samples", "3", "--top-k", "20",
                 "--seed", i)
        self.cli("evaluate", "evaluate", last, self.work / "heldout.txt", "--horizon", "5", "--order", "3")
        model = self.work / "airline.pt"
        self.cli("forecast", "forecast", "train", "--dataset", "airline", "--seq-len", "12", "--hidden-size", "16",
                 "--epochs", "20", "--seed", i, "--baselines", "naive,seasonal_naive,drift", "--out", model,
                 "--force", "-q")
        self.cli("forecast", "forecast", "predict", "-c", model, "-o", self.work / "forecast.csv", "--force")


def slope_mb_per_min(times: list[float], rss: list[float]) -> float:
    if len(times) < 2:
        return float("nan")
    return float(np.polyfit(np.asarray(times) / 60.0, np.asarray(rss), 1)[0])


def report(sampler: Sampler, workload: Workload, warmup_s: float, max_growth: float,
           minutes: float) -> tuple[str, bool]:
    times, rss = sampler.times, sampler.rss
    after = [i for i, t in enumerate(times) if t >= warmup_s] or [len(times) - 1]
    warm_rss = rss[after[0]]
    growth = rss[-1] - warm_rss
    slope = slope_mb_per_min([times[i] for i in after], [rss[i] for i in after])
    ok = growth <= max_growth
    rows = [
        ("RSS at start", f"{rss[0]:.1f} MB"),
        (f"RSS after warm-up ({times[after[0]]:.0f} s)", f"{warm_rss:.1f} MB"),
        (f"RSS at the end ({times[-1]:.0f} s)", f"{rss[-1]:.1f} MB"),
        ("RSS max", f"{max(rss):.1f} MB"),
        ("growth after warm-up", f"{growth:+.1f} MB (limit {max_growth:.0f} MB)"),
        ("end / after-warm-up RSS", f"{rss[-1] / warm_rss:.3f}"),
        ("slope after warm-up (least squares)", f"{slope:+.2f} MB/min"),
        ("RSS samples", f"{len(rss)} (every {sampler.interval:g} s)"),
        ("LM steps trained (chunks resumed)", f"{workload.steps} ({workload.runs.get('train', 0) - 1})"),
    ]
    rows += [(f"`{stage}` runs, mean time", f"{n}, {workload.seconds[stage] / n:.2f} s")
             for stage, n in workload.runs.items()]
    lines = [f"# Soak: {minutes:g} minutes in one process", "",
             f"Verdict: **{'PASS' if ok else 'FAIL'}** (RSS growth after warm-up {growth:+.1f} MB, "
             f"limit {max_growth:.0f} MB).", "", "| measurement | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "RSS timeline (MB, one value per ~30 s):", "",
              " ".join(f"{rss[i]:.0f}" for i in range(0, len(rss), max(1, round(30 / sampler.interval))))]
    return "\n".join(lines) + "\n", ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--warmup-minutes", type=float, default=None, help="default: 20%% of --minutes, max 1")
    parser.add_argument("--max-growth-mb", type=float, default=64.0)
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument("--steps-per-chunk", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.md")
    args = parser.parse_args(argv)
    warmup_s = 60 * (args.warmup_minutes if args.warmup_minutes is not None else min(1.0, 0.2 * args.minutes))
    torch.set_num_threads(1)  # a fair share of a small shared machine; memory is what is measured

    with tempfile.TemporaryDirectory(prefix="textseq-soak-") as tmp:
        workload = Workload(Path(tmp), args.steps_per_chunk)
        workload.prepare()
        deadline = time.monotonic() + 60 * args.minutes
        with Sampler(args.sample_every) as sampler:
            i = 0
            while time.monotonic() < deadline:
                workload.iteration(i)
                i += 1
                print(f"iteration {i}: {sampler.rss[-1]:.0f} MB RSS", file=sys.stderr)
    text, ok = report(sampler, workload, warmup_s, args.max_growth_mb, args.minutes)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
