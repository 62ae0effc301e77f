"""Honest evaluation: the network and the baselines forecast the same origins of the held-out
tail, scored with the same metrics; plus rolling-origin backtesting that refits at each origin."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from textseq.errors import TextseqError
from textseq.forecast.baselines import BASELINES, baseline_forecasts
from textseq.forecast.config import ForecastConfig
from textseq.forecast.data import SeriesData
from textseq.forecast.forecaster import Forecaster
from textseq.forecast.metrics import METRIC_NAMES, Metrics, compute_metrics, seasonal_naive_scale
from textseq.forecast.prep import chronological_split, horizon_values, origins_between


@dataclass
class ForecastReport:
    rows: dict[str, Metrics]
    horizon: int
    season: int
    n_origins: int
    first_origin: int
    forecasts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # name -> [N, H]
    origins: np.ndarray | None = field(default=None, repr=False)
    truth: np.ndarray | None = field(default=None, repr=False)

    def table(self, markdown: bool = False) -> str:
        header = ["model", *METRIC_NAMES]
        lines = [[name, *(_fmt(getattr(m, k)) for k in METRIC_NAMES)] for name, m in self.rows.items()]
        if markdown:
            return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                             + ["| " + " | ".join(line) + " |" for line in lines])
        widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
        return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                                   enumerate(zip(row, widths, strict=True))) for row in [header, *lines])

    def to_dict(self) -> dict:
        return {"rows": {k: asdict(v) for k, v in self.rows.items()}, "horizon": self.horizon,
                "season": self.season, "n_origins": self.n_origins, "first_origin": self.first_origin}


def _fmt(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.4g}"


def score(name_to_forecast: dict[str, np.ndarray], truth: np.ndarray, scale: float) -> dict[str, Metrics]:
    return {name: compute_metrics(truth, pred, scale) for name, pred in name_to_forecast.items()}


def baseline_table(target: np.ndarray, origins: np.ndarray, horizon: int, season: int, fit_end: int,
                   log: bool = False, baselines=BASELINES) -> dict[str, np.ndarray]:
    if season > 1 and origins.min() < season:
        baselines = [b for b in baselines if b != "seasonal_naive"]
    return {name: baseline_forecasts(name, target, origins, horizon, season, fit_end, log) for name in baselines}


def evaluate_tail(forecaster: Forecaster, series: SeriesData, baselines=BASELINES,
                  model_name: str | None = None) -> ForecastReport:
    """Forecast every origin of the test tail (last ``test_frac``) with the model and the baselines."""
    cfg = forecaster.cfg
    split = chronological_split(len(series), cfg.test_frac, cfg.val_frac)
    origins = origins_between(forecaster.transform.lag, len(series), cfg.seq_len, cfg.horizon, start=split.test_start)
    if len(origins) == 0:
        raise TextseqError(
            f"the test tail ({len(series) - split.test_start} points) is shorter than the horizon {cfg.horizon}"
        )
    target = series.column(forecaster.spec.target)
    season = forecaster.season
    forecasts = {model_name or cfg.model.arch: forecaster.predict(series, origins)}
    forecasts.update(baseline_table(target, origins, cfg.horizon, season, split.test_start,
                                    cfg.transform.log, baselines))
    truth = horizon_values(target, origins, cfg.horizon)
    rows = score(forecasts, truth, seasonal_naive_scale(target[: split.test_start], season))
    return ForecastReport(rows, cfg.horizon, season, len(origins), int(origins[0]), forecasts, origins, truth)


def backtest(series: SeriesData, cfg: ForecastConfig, k: int, baselines=BASELINES,
             quiet: bool = True) -> ForecastReport:
    """Rolling-origin evaluation: at each of ``k`` origins ``T - h*k, ..., T - h`` everything (scaler,
    network, ARIMA/ETS) is refit on the data before the origin, then forecasts ``h`` steps.
    Metrics are averaged over the origins."""
    from textseq.forecast.train import train_forecaster

    horizon = cfg.horizon
    origins = len(series) - horizon * np.arange(k, 0, -1)
    if k < 1 or origins[0] < cfg.seq_len + horizon + cfg.transform.diff:
        raise TextseqError(f"the series is too short for {k} backtest origins of horizon {horizon}")
    per_origin: list[dict[str, Metrics]] = []
    season = None
    for origin in origins:
        known = series.head(int(origin))
        fold_cfg = ForecastConfig.from_dict(asdict(cfg))
        fold_cfg.test_frac = 0.0  # the whole prefix is train + validation
        forecaster = train_forecaster(known, fold_cfg, quiet=quiet).forecaster
        season = forecaster.season
        at = np.array([origin])
        forecasts = {cfg.model.arch: forecaster.predict(series, at)}
        forecasts.update(baseline_table(series.target_values, at, horizon, season, int(origin),
                                        cfg.transform.log, baselines))
        scale = seasonal_naive_scale(series.target_values[:origin], season)
        per_origin.append(score(forecasts, horizon_values(series.target_values, at, horizon), scale))
    rows = {name: Metrics(**{m: float(np.mean([getattr(fold[name], m) for fold in per_origin]))
                             for m in METRIC_NAMES}) for name in per_origin[0]}
    return ForecastReport(rows, horizon, season or 1, k, int(origins[0]))
