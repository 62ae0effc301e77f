"""Prediction intervals from validation residuals (split conformal), and how to score them.

The model forecasts every validation origin; the absolute errors at step ``h`` give the half-width of a
``level``% interval at that step (their conformal quantile, ``ceil((n + 1) level) / n``). With fewer than
:data:`PER_STEP_FROM` origins the steps share one quantile of the errors scaled by ``sqrt(h)`` (a random-walk
growth), so a short validation part still gives widths that grow with the horizon. Beyond the trained horizon
the last width grows the same way.
"""

from __future__ import annotations

import math

import numpy as np

from textseq.errors import TextseqError

PER_STEP_FROM = 20


def parse_levels(text: str | None) -> list[float]:
    """``"80,95"`` -> ``[80.0, 95.0]``; each strictly between 0 and 100."""
    if not text:
        return []
    try:
        levels = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise TextseqError(f"--level takes percentages such as 80,95, got {text!r}") from None
    bad = [level for level in levels if not (math.isfinite(level) and 0 < level < 100)]
    if bad:
        raise TextseqError(f"--level values must be percentages between 0 and 100, got {bad[0]:g}")
    return sorted(set(levels))


def _quantile(errors: np.ndarray, level: float) -> float:
    errors = np.sort(errors[np.isfinite(errors)])
    if len(errors) == 0:
        return math.nan
    rank = min(math.ceil((len(errors) + 1) * level / 100), len(errors))
    return float(errors[rank - 1])


def conformal_widths(residuals: np.ndarray, level: float, steps: int | None = None) -> np.ndarray:
    """Half-widths ``[steps]`` of the ``level``% interval from validation residuals ``[N, H]``."""
    errors = np.abs(np.asarray(residuals, dtype=np.float64))
    n, horizon = errors.shape
    steps = steps or horizon
    growth = np.sqrt(np.arange(1, max(steps, horizon) + 1))
    if n >= PER_STEP_FROM:
        widths = np.array([_quantile(errors[:, h], level) for h in range(horizon)])
    else:
        widths = _quantile((errors / growth[:horizon]).ravel(), level) * growth[:horizon]
    if steps > horizon:
        widths = np.concatenate([widths, widths[-1] * growth[horizon:steps] / growth[horizon - 1]])
    return widths[:steps]


def interval_score(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> float:
    """Mean interval (Winkler) score: width plus 2/alpha times the miss, as in the M4 competition's MSIS."""
    alpha = 1 - level / 100
    truth, lower, upper = (np.asarray(a, dtype=np.float64) for a in (truth, lower, upper))
    miss = np.maximum(lower - truth, 0) + np.maximum(truth - upper, 0)
    return float(np.mean(upper - lower + 2 / alpha * miss))


def is_relative(history: np.ndarray) -> bool:
    return bool(len(history) and np.all(np.asarray(history) > 0))


def validation_errors(truth: np.ndarray, point: np.ndarray, last: np.ndarray, relative: bool) -> np.ndarray:
    """Errors ``[N, H]`` (relative to the last observed values ``last[N]`` for a positive series)."""
    errors = np.asarray(truth, dtype=np.float64) - point
    return errors / np.abs(last)[:, None] if relative else errors


def band(point: np.ndarray, last: np.ndarray, residuals: np.ndarray, relative: bool,
         level: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ``[N, S]`` bounds of the ``level``% interval around ``point[N, S]``."""
    widths = conformal_widths(residuals, level, point.shape[1])[None, :]
    if relative:
        widths = widths * np.abs(last)[:, None]
    return point - widths, point + widths


def interval_metrics(truth: np.ndarray, point: np.ndarray, last: np.ndarray, residuals: np.ndarray,
                     relative: bool, levels: list[float], scale: float) -> dict[str, dict[str, float]]:
    """Per level: coverage (percent of true values inside) and MSIS (interval score / the MASE scale)."""
    out = {}
    for level in levels:
        lower, upper = band(point, last, residuals, relative, level)
        inside = (truth >= lower) & (truth <= upper)
        out[f"{level:g}"] = {"coverage": float(100 * inside.mean()),
                             "msis": interval_score(truth, lower, upper, level) / scale if scale > 0 else math.nan}
    return out
