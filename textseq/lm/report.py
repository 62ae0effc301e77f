"""What LM training and evaluation both report: bits per char or perplexity from a loss, and the loss-curve PNG.
(The progress bar itself is :mod:`textseq.progress`, shared with preprocessing and forecasting.)"""

from __future__ import annotations

import math
from pathlib import Path

from textseq.io import atomic_path

PER_CHAR = ("char", "subword")  # levels scored in bits per character (subword pieces spell several each)


def metric_name(level: str) -> str:
    """Bits per char for char and subword models, perplexity for word models."""
    return "bpc" if level in PER_CHAR else "ppl"


def metric_value(nll: float, level: str, chars_per_token: float = 1.0) -> float:
    """Mean NLL in nats per token -> bits per character (char and subword levels; a subword piece stands for
    ``chars_per_token`` characters on average) or perplexity (word level)."""
    if level in PER_CHAR:
        return nll / math.log(2) / chars_per_token
    return math.exp(min(nll, 700.0))


def describe(nll: float, level: str, chars_per_token: float = 1.0) -> str:
    return f"loss {nll:.3f} {metric_name(level)} {metric_value(nll, level, chars_per_token):.3f}"


def plot_history(history: dict[str, list], path: str | Path, level: str, chars_per_token: float = 1.0) -> None:
    """Train/valid loss against the global step, in bits per char for char and subword models, nats otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, unit = ((1 / math.log(2) / chars_per_token, "bits per char") if level in PER_CHAR
                   else (1.0, "NLL (nats per token)"))
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
