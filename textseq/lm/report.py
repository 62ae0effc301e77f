"""Training feedback: a rich progress bar on a terminal, plain log lines otherwise, and the loss-curve PNG."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from textseq.io import atomic_path


def metric_name(level: str) -> str:
    """Bits per char for char models, perplexity for word models."""
    return "bpc" if level == "char" else "ppl"


def metric_value(nll: float, level: str) -> float:
    """Mean NLL in nats -> bits-per-char (char level) or perplexity (word level)."""
    if level == "char":
        return nll / math.log(2)
    return math.exp(min(nll, 700.0))


def describe(nll: float, level: str) -> str:
    return f"loss {nll:.3f} {metric_name(level)} {metric_value(nll, level):.3f}"


class Reporter:
    """Shows progress on rank 0: a bar when stderr is a TTY, a line every ``log_every`` steps otherwise."""

    def __init__(self, total_steps: int, level: str, log_every: int, enabled: bool = True):
        self.level, self.log_every, self.enabled = level, max(1, log_every), enabled
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), transient=False)
            self.task = self.bar.add_task("train", total=total_steps, stats="")

    def __enter__(self) -> Reporter:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def step(self, step: int, nll: float, tokens_per_sec: float) -> None:
        if not self.enabled:
            return
        stats = f"{describe(nll, self.level)} {tokens_per_sec:,.0f} tok/s"
        if self.bar is not None:
            self.bar.update(self.task, completed=step, stats=stats)
        elif step % self.log_every == 0:
            print(f"step {step} {stats}", file=sys.stderr, flush=True)

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.console.print(message)
        else:
            print(message, file=sys.stderr, flush=True)


def plot_history(history: dict[str, list], path: str | Path, level: str) -> None:
    """Train/valid loss against the global step, in bits per token for char models, nats otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, unit = (1 / math.log(2), "bits per char") if level == "char" else (1.0, "NLL (nats per token)")
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in ("train", "valid"):
        points = history.get(name) or []
        if points:
            steps, losses = zip(*points, strict=True)
            ax.plot(steps, [v * scale for v in losses], label=name, marker="o" if name == "valid" else None)
    ax.set_xlabel("step")
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
