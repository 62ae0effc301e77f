"""What LM training and evaluation both report: bits per char or perplexity from a loss, and the loss-curve PNG.
(The progress bar itself is :mod:`textseq.progress`, shared with preprocessing and forecasting.)"""

from __future__ import annotations

import math
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
