"""PNG plots of history, forecasts and truth (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import os

import numpy as np

from textseq.io import atomic_path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(10, 4.5))


def _save(plt, fig, path: str | os.PathLike) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_evaluation(path: str | os.PathLike, target: np.ndarray, origins: np.ndarray,
                    forecasts: dict[str, np.ndarray], title: str = "") -> None:
    """The whole series, plus each model's forecasts from non-overlapping origins of the test tail."""
    plt, fig, ax = _figure()
    ax.plot(np.arange(len(target)), target, color="black", linewidth=1.2, label="truth")
    ax.axvline(origins[0], color="gray", linestyle=":", label="test start")
    horizon = next(iter(forecasts.values())).shape[1]
    shown = np.arange(0, len(origins), horizon)
    for (name, preds), color in zip(forecasts.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False):
        for i, row in enumerate(shown):
            steps = origins[row] + np.arange(horizon)
            ax.plot(steps, preds[row], color=color,
                    linewidth=1.0, label=name if i == 0 else None)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    _save(plt, fig, path)


def plot_prediction(path: str | os.PathLike, target: np.ndarray, forecast: np.ndarray, title: str = "") -> None:
    """History followed by the forecast of the next ``len(forecast)`` values."""
    plt, fig, ax = _figure()
    ax.plot(np.arange(len(target)), target, color="black", linewidth=1.2, label="history")
    ax.plot(np.arange(len(target) - 1, len(target) + len(forecast)), np.r_[target[-1], forecast],
            color="tab:red", linewidth=1.5, label="forecast")
    ax.set_title(title)
    ax.legend(loc="upper left")
    _save(plt, fig, path)
