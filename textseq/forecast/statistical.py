"""Statistical forecasters with their own automatic settings, fitted on the raw series (never on the network's
transforms): exponential smoothing (the ETS family chosen by AICc, as R's ``ets()``), ARIMA (the differencing
order from a KPSS test, the ARMA orders by AIC, a seasonal difference for seasonal series, as ``auto.arima``)
and the theta method (the M3 winner; statsmodels' ``ThetaModel`` with its own seasonality test).

A fitted model is plain data (:class:`StatModel`: kind, settings and parameters), so checkpoints store it
without pickles. ``forecast(target, origins, horizon)`` forecasts from every origin ``o`` with the parameters
fixed, reading only ``target[:o]``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from textseq.errors import TextseqError

KINDS = ("ets", "arima", "theta")


def _quiet():
    """statsmodels' convergence chatter off, and one BLAS thread: its small matrix ops get much slower (10x
    measured) when threads fight over shared cores."""
    import statsmodels.tsa.api  # noqa: F401 - imported before the filter: its import installs filters of its own

    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        stack.enter_context(threadpool_limits(1))
    return stack


@dataclass
class StatModel:
    kind: str  # ets | arima | theta
    season: int
    settings: dict = field(default_factory=dict)  # the chosen model form (ETS components, ARIMA orders, ...)
    params: list[float] = field(default_factory=list)  # fitted parameters (theta refits at each origin)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StatModel:
        return cls(**data)

    def describe(self) -> str:
        s = self.settings
        if self.kind == "ets":
            trend = {None: "N", "add": "A"}[s["trend"]] + ("d" if s["damped_trend"] else "")
            season = {None: "N", "add": "A", "mul": "M"}[s["seasonal"]]
            return f"ETS({s['error'][0].upper()},{trend},{season})"
        if self.kind == "arima":
            seasonal = f"({','.join(map(str, s['seasonal_order'][:3]))})[{s['seasonal_order'][3]}]" \
                if s["seasonal_order"][3] else ""
            trend = {"t": " with drift", "c": " with mean"}.get(s["trend"], "")
            return f"ARIMA({','.join(map(str, s['order']))}){seasonal}{trend}"
        return "theta" + (f" (deseasonalised, period {self.season})" if s.get("deseasonalize") else "")

    def forecast(self, target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        """``[N, horizon]`` forecasts from each origin, reading only ``target[:o]``."""
        target = np.asarray(target, dtype=np.float64)
        with _quiet():
            if self.kind == "theta":
                return np.stack([_theta_forecast(target[:o], self.season, self.settings, horizon) for o in origins])
            return _filtered_forecasts(self, target, origins, horizon)


# ---------------------------------------------------------------- fitting


_FITTED: dict[tuple, StatModel | None] = {}  # the same fit is asked for by the auto model and the baseline rows


def fit_statistical(kind: str, endog: np.ndarray, season: int) -> StatModel | None:
    """Fit ``kind`` on ``endog`` with its automatic settings; None when no model form can be fitted."""
    endog = np.asarray(endog, dtype=np.float64)
    if kind not in KINDS:
        raise TextseqError(f"unknown statistical model {kind!r}; choose one of {', '.join(KINDS)}")
    key = (kind, season, endog.tobytes())
    if key not in _FITTED:
        if len(_FITTED) > 64:
            _FITTED.clear()
        with _quiet():
            fit = {"ets": _fit_ets, "arima": _fit_arima, "theta": _fit_theta}[kind]
            _FITTED[key] = fit(endog, season)
    return copy.deepcopy(_FITTED[key])


def _aicc(result) -> float:
    value = getattr(result, "aicc", None)
    value = result.aic if value is None else value
    return float(value) if np.isfinite(value) else np.inf


def _lowest_aicc(kind: str, season: int, trials) -> StatModel | None:
    """The form with the lowest AICc among ``trials``: (settings, a function that fits it) pairs."""
    best = None
    for settings, fit in trials:
        try:
            result = fit()
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
            continue
        score = _aicc(result)
        if np.isfinite(score) and (best is None or score < best[0]):
            best = (score, settings, result.params)
    return None if best is None else StatModel(kind, season, best[1], [float(p) for p in np.asarray(best[2])])


def _fit_ets(endog: np.ndarray, season: int) -> StatModel | None:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    positive = bool(np.all(endog > 0))
    seasonal_ok = season > 1 and len(endog) >= 2 * season + 2
    forms = itertools.product(("add", "mul") if positive else ("add",), (None, "add"), (False, True),
                              (None, "add", "mul") if seasonal_ok and positive else (None, "add") if seasonal_ok
                              else (None,))
    trials = []
    for error, trend, damped, seasonal in forms:
        if damped and trend is None:
            continue
        settings = {"error": error, "trend": trend, "damped_trend": damped, "seasonal": seasonal}
        model = functools.partial(ETSModel, endog, seasonal_periods=season if seasonal else None, **settings)
        trials.append((settings, lambda model=model: model().fit(disp=False)))
    return _lowest_aicc("ets", season, trials)


def _differences_needed(endog: np.ndarray, max_d: int = 2) -> int:
    """The KPSS test (5%) applied to successive differences, as auto.arima does."""
    from statsmodels.tsa.stattools import kpss

    x = endog
    for d in range(max_d + 1):
        if len(x) < 8 or np.allclose(x, x[0]):
            return d
        try:
            p_value = kpss(x, regression="c", nlags="auto")[1]
        except (ValueError, OverflowError):
            return d
        if p_value >= 0.05:
            return d
        x = np.diff(x)
    return max_d


def _fit_arima(endog: np.ndarray, season: int) -> StatModel | None:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    seasonal = season > 1 and len(endog) >= 3 * season
    seasonal_order = (0, 1, 1, season) if seasonal else (0, 0, 0, 0)
    base = endog[season:] - endog[:-season] if seasonal else endog
    d = min(_differences_needed(base), 1 if seasonal else 2)
    # a constant for an undifferenced series; for a once-differenced one a drift (SARIMAX's "t" on levels), kept
    # only where it lowers the AIC, as auto.arima does
    trends = (None,) if seasonal or d == 2 else ("c",) if d == 0 else (None, "t")
    trials = []
    for p, q, trend in itertools.product((0, 1, 2), (0, 1, 2), trends):
        settings = {"order": [p, d, q], "seasonal_order": list(seasonal_order), "trend": trend}
        model = functools.partial(SARIMAX, endog, order=(p, d, q), seasonal_order=seasonal_order, trend=trend)
        trials.append((settings, lambda model=model: model().fit(disp=False)))
    return _lowest_aicc("arima", season, trials)


def _fit_theta(endog: np.ndarray, season: int) -> StatModel | None:
    settings = {"deseasonalize": bool(season > 1 and len(endog) >= 2 * season),
                "method": "multiplicative" if np.all(endog > 0) else "additive"}
    if len(endog) < 4:
        return None
    return StatModel("theta", season, settings, [])


# ---------------------------------------------------------------- forecasting


def _state_space(model: StatModel, endog: np.ndarray):
    """The fitted model's state-space form on ``endog`` with its parameters fixed."""
    s = model.settings
    if model.kind == "ets":
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        return ETSModel(endog, seasonal_periods=model.season if s["seasonal"] else None, error=s["error"],
                        trend=s["trend"], damped_trend=s["damped_trend"], seasonal=s["seasonal"]).smooth(
            np.asarray(model.params))
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    return SARIMAX(endog, order=tuple(s["order"]), seasonal_order=tuple(s["seasonal_order"]),
                   trend=s["trend"]).filter(np.asarray(model.params))


def _filtered_forecasts(model: StatModel, target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """One pass over the series (with room past its end), then a dynamic prediction from each origin: every
    forecast uses the observations before its origin only."""
    end = int(origins.max()) + horizon
    extended = np.concatenate([target, np.full(max(0, end - len(target)), np.nan)])[:end]
    if model.kind == "ets":  # ETS cannot filter through missing values: smooth on the history, forecast ahead
        return np.stack([_state_space(model, target[:o]).forecast(horizon) for o in origins])
    fitted = _state_space(model, extended)
    return np.stack([fitted.get_prediction(start=int(o), end=int(o) + horizon - 1, dynamic=True).predicted_mean
                     for o in origins])


def _theta_forecast(history: np.ndarray, season: int, settings: dict, horizon: int) -> np.ndarray:
    from statsmodels.tsa.forecasting.theta import ThetaModel

    deseasonalize = settings["deseasonalize"] and len(history) >= 2 * season
    model = ThetaModel(history, period=season if season > 1 else None, deseasonalize=deseasonalize,
                       method=settings["method"] if deseasonalize else "auto")
    return np.asarray(model.fit().forecast(horizon), dtype=np.float64)
