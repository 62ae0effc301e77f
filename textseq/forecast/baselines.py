"""Baselines every model is printed next to: naive, seasonal naive, drift, and the statistical models of
:mod:`textseq.forecast.statistical` (ETS, ARIMA, theta), each fitted on the raw series with its own automatic
settings, whatever transform the network uses.

All take the full target array and forecast origins ``o`` (index of the first forecast value) and only ever
read ``target[:o]``; statistical models are fitted once on ``target[:fit_end]``.
"""

from __future__ import annotations

import numpy as np

from textseq.forecast.statistical import KINDS, fit_statistical

SIMPLE_BASELINES = ("naive", "seasonal_naive", "drift")
MODEL_BASELINES = KINDS  # ets, arima, theta
BASELINES = SIMPLE_BASELINES + MODEL_BASELINES


def naive(target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value, repeated."""
    return np.repeat(target[origins - 1][:, None], horizon, axis=1)


def seasonal_naive(target: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The value one season earlier: ``y[o + h - m * (h // m + 1)]``."""
    h = np.arange(horizon)
    return target[origins[:, None] + h[None, :] - season * (h[None, :] // season + 1)]


def drift(target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The line through the first and the last observed values, extended."""
    last = target[origins - 1]
    slope = (last - target[0]) / np.maximum(origins - 1, 1)
    return last[:, None] + slope[:, None] * np.arange(1, horizon + 1)[None, :]


def simple_forecasts(name: str, target: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    if name == "naive":
        return naive(target, origins, horizon)
    if name == "seasonal_naive":
        return seasonal_naive(target, origins, horizon, season)
    return drift(target, origins, horizon)


def baseline_forecasts(name: str, target: np.ndarray, origins: np.ndarray, horizon: int, season: int,
                       fit_end: int) -> np.ndarray:
    """Forecasts ``[N, horizon]`` of the named baseline (see :data:`BASELINES`); NaN when a statistical model
    cannot be fitted."""
    target = np.asarray(target, dtype=np.float64)
    if name in SIMPLE_BASELINES:
        return simple_forecasts(name, target, origins, horizon, season)
    model = fit_statistical(name, target[:fit_end], season)
    if model is None:
        return np.full((len(origins), horizon), np.nan)
    return model.forecast(target, origins, horizon)
