"""Baselines every network is printed next to: naive, seasonal naive, drift, and statsmodels'
ARIMA (small AIC grid) and exponential smoothing with trend / seasonality.

All take the full target array and forecast origins ``o`` (index of the first forecast value) and
only ever read ``target[:o]``; ARIMA/ETS parameters are fit once on ``target[:fit_end]``.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings

import numpy as np

SIMPLE_BASELINES = ("naive", "seasonal_naive", "drift")
MODEL_BASELINES = ("arima", "ets")
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


def _single_threaded():
    """statsmodels' small matrix ops get much slower (10x measured) when BLAS threads fight over
    shared cores; one thread is always enough for them."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _fit_arima(endog: np.ndarray, season: int):
    """SARIMAX(p,1,q)(0,1,1)_m (seasonal part only with >= 3 seasons of data), p <= 2, q <= 1, by AIC."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    seasonal = (0, 1, 1, season) if season > 1 and len(endog) >= 3 * season else (0, 0, 0, 0)
    best = None
    for p, q in itertools.product((0, 1, 2), (0, 1)):
        try:
            result = SARIMAX(endog, order=(p, 1, q), seasonal_order=seasonal).fit(disp=False)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(result.aic) and (best is None or result.aic < best.aic):
            best = result
    return best


def _fit_ets(endog: np.ndarray, season: int):
    """Damped additive trend, additive seasonality (multiplicative when fit on logs)."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    seasonal = season if season > 1 and len(endog) >= 2 * season + 2 else None
    return ExponentialSmoothing(endog, trend=True, damped_trend=True, seasonal=seasonal).fit(disp=False)


def statsmodels_baseline(kind: str, target: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int,
                         season: int, log: bool = False) -> np.ndarray:
    """Fit ``kind`` ("arima" | "ets") on ``target[:fit_end]`` (logs if ``log``), then forecast
    ``horizon`` steps from every origin with the parameters fixed, filtering the observed values."""
    endog = np.log(target) if log else np.asarray(target, dtype=np.float64)
    import statsmodels.tsa.statespace.api  # noqa: F401 - imported before the filter: it installs its own
    with warnings.catch_warnings(), _single_threaded():
        warnings.simplefilter("ignore")  # convergence chatter on short series
        fitted = (_fit_arima if kind == "arima" else _fit_ets)(endog[:fit_end], season)
        if fitted is None:
            return np.full((len(origins), horizon), np.nan)
        extended = np.concatenate([endog, np.full(horizon, np.nan)])  # room to forecast past the end
        full = fitted.apply(extended[: max(int(origins.max()) + horizon, fit_end)])
        forecasts = np.stack([
            full.get_prediction(start=int(o), end=int(o) + horizon - 1, dynamic=True).predicted_mean
            for o in origins
        ])
    return np.exp(forecasts) if log else forecasts


def baseline_forecasts(name: str, target: np.ndarray, origins: np.ndarray, horizon: int, season: int,
                       fit_end: int, log: bool = False) -> np.ndarray:
    """Forecasts ``[N, horizon]`` of the named baseline (see :data:`BASELINES`)."""
    if name == "naive":
        return naive(target, origins, horizon)
    if name == "seasonal_naive":
        return seasonal_naive(target, origins, horizon, season)
    if name == "drift":
        return drift(target, origins, horizon)
    return statsmodels_baseline(name, target, fit_end, origins, horizon, season, log)
