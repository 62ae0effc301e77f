"""PNG plots of history, forecasts, intervals and truth (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import os

import numpy as np

from textseq.io import atomic_path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(11, 4.5))


def _save(plt, fig, path: str | os.PathLike) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _x_axis(dates: list[str] | None, n: int):
    """Dates as the x values when every label parses (then the axis shows them), else positions 0..n-1."""
    if dates and len(dates) >= n:
        import pandas as pd

        try:
            return pd.to_datetime(pd.Series(dates[:n]), format="mixed").to_numpy(), "date"
        except (ValueError, TypeError, OverflowError):
            pass
    return np.arange(n), "time step"


def _finish(ax, title: str, xlabel: str, ylabel: str | None) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or "value")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)  # beside, not on, the data


def plot_evaluation(path: str | os.PathLike, target: np.ndarray, origins: np.ndarray,
                    forecasts: dict[str, np.ndarray], title: str = "", dates: list[str] | None = None,
                    ylabel: str | None = None, bands: dict | None = None, model: str | None = None) -> None:
    """The whole series, plus each model's forecasts from non-overlapping origins of the test tail; the
    model's intervals shaded."""
    plt, fig, ax = _figure()
    x, xlabel = _x_axis(dates, len(target))
    ax.plot(x, target, color="black", linewidth=1.2, label="truth")
    ax.axvline(x[origins[0]], color="gray", linestyle=":", label="test start")
    horizon = next(iter(forecasts.values())).shape[1]
    shown = np.arange(0, len(origins), horizon)
    marker = "o" if horizon == 1 or len(shown) * horizon < 40 else None
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, preds), color in zip(forecasts.items(), colors, strict=False):
        for i, row in enumerate(shown):
            steps = origins[row] + np.arange(horizon)
            steps = steps[steps < len(target)]
            ax.plot(x[steps], preds[row][:len(steps)], color=color, linewidth=1.0, marker=marker, markersize=3,
                    label=name if i == 0 else None)
            if name == model and bands:
                for j, (level, (lower, upper)) in enumerate(sorted(bands.items(), key=lambda b: -float(b[0]))):
                    ax.fill_between(x[steps], lower[row][:len(steps)], upper[row][:len(steps)], color=color,
                                    alpha=0.12 + 0.1 * j, linewidth=0, label=f"{name} {level}%" if i == 0 else None)
    _finish(ax, title, xlabel, ylabel)
    _save(plt, fig, path)


def plot_prediction(path: str | os.PathLike, target: np.ndarray, forecast: np.ndarray, title: str = "",
                    dates: list[str] | None = None, future: list[str] | None = None, ylabel: str | None = None,
                    bands: dict | None = None) -> None:
    """History followed by the forecast of the next ``len(forecast)`` values and its intervals."""
    plt, fig, ax = _figure()
    labels = list(dates) + list(future) if dates and future else None
    x, xlabel = _x_axis(labels, len(target) + len(forecast))
    n = len(target)
    ax.plot(x[:n], target, color="black", linewidth=1.2, label="history")
    marker = "o" if len(forecast) < 40 else None
    ax.plot(x[n - 1:], np.r_[target[-1], forecast], color="tab:red", linewidth=1.5, marker=marker, markersize=3,
            label="forecast")
    for j, (level, (lower, upper)) in enumerate(sorted((bands or {}).items(), key=lambda b: -float(b[0]))):
        ax.fill_between(x[n:], lower, upper, color="tab:red", alpha=0.12 + 0.1 * j, linewidth=0,
                        label=f"{level}% interval")
    _finish(ax, title, xlabel, ylabel)
    _save(plt, fig, path)
