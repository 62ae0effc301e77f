"""Honest evaluation: the model and the baselines forecast the same origins of the held-out tail, scored with
the same metrics (and the model's prediction intervals by coverage and MSIS); plus rolling-origin backtesting
that refits everything at each origin."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np

from textseq.errors import TextseqError
from textseq.forecast.baselines import BASELINES, baseline_forecasts, seasonal_naive
from textseq.forecast.config import ForecastConfig
from textseq.forecast.data import SeriesData
from textseq.forecast.intervals import band, interval_metrics, validation_errors
from textseq.forecast.metrics import METRIC_NAMES, Metrics, compute_metrics, seasonal_naive_scale
from textseq.forecast.prep import chronological_split, horizon_values

DEFAULT_LEVELS = (80.0, 95.0)


@dataclass
class ForecastReport:
    rows: dict[str, Metrics]
    horizon: int
    season: int
    n_origins: int
    first_origin: int
    model: str = "model"  # the row of the evaluated model
    intervals: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # row -> level -> metrics
    notes: list[str] = field(default_factory=list)
    forecasts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # name -> [N, H]
    origins: np.ndarray | None = field(default=None, repr=False)
    truth: np.ndarray | None = field(default=None, repr=False)
    bands: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)  # level -> (lo, hi)

    def table(self, markdown: bool = False) -> str:
        header = ["model", *METRIC_NAMES]
        lines = [[name, *(_fmt(getattr(m, k)) for k in METRIC_NAMES)] for name, m in self.rows.items()]
        return _render(header, lines, markdown)

    def interval_table(self) -> str:
        header = ["intervals", *(f"{kind} {level}%" for level in next(iter(self.intervals.values()), {})
                                 for kind in ("coverage", "MSIS"))]
        lines = [[name, *(_fmt(v[key]) for v in per_level.values() for key in ("coverage", "msis"))]
                 for name, per_level in self.intervals.items()]
        return _render(header, lines, False)

    def to_dict(self) -> dict:
        return {"model": self.model, "rows": {k: asdict(v) for k, v in self.rows.items()},
                "intervals": self.intervals, "horizon": self.horizon, "season": self.season,
                "n_origins": self.n_origins, "first_origin": self.first_origin, "notes": self.notes}


def _render(header: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                         + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))) for row in [header, *lines])


def _fmt(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.4g}"


def score(name_to_forecast: dict[str, np.ndarray], truth: np.ndarray, scale: float) -> dict[str, Metrics]:
    return {name: compute_metrics(truth, pred, scale) for name, pred in name_to_forecast.items()}


def baseline_table(target: np.ndarray, origins: np.ndarray, horizon: int, season: int, fit_end: int,
                   baselines=BASELINES) -> dict[str, np.ndarray]:
    if season > 1 and origins.min() < season:
        baselines = [b for b in baselines if b != "seasonal_naive"]
    return {name: baseline_forecasts(name, target, origins, horizon, season, fit_end) for name in baselines}


def _network_rows(forecaster, series: SeriesData, origins: np.ndarray) -> dict[str, np.ndarray]:
    """The networks inside an auto model, printed as rows of their own (the MLP is a baseline)."""
    networks = getattr(forecaster, "networks", {})
    return forecaster.forecasts(series, origins, list(networks)) if networks else {}


def _range_note(forecaster, target: np.ndarray, split) -> list[str]:
    networks = getattr(forecaster, "networks", None) or {"model": forecaster}
    train, test = target[:split.val_start], target[split.test_start:]
    undifferenced = [name for name, f in networks.items() if not f.cfg.transform.diff]
    if undifferenced and len(test) and (test.max() > train.max() or test.min() < train.min()):
        return [f"the test range [{test.min():.4g}, {test.max():.4g}] leaves the training range [{train.min():.4g}, "
                f"{train.max():.4g}] and {', '.join(undifferenced)} uses no differencing: expect flat forecasts "
                "there (try --diff 1)"]
    return []


def evaluate_tail(forecaster, series: SeriesData, baselines=BASELINES, model_name: str | None = None,
                  levels=DEFAULT_LEVELS) -> ForecastReport:
    """Forecast every origin of the test tail (last ``test_frac``) with the model and the baselines."""
    cfg = forecaster.cfg
    split = chronological_split(len(series), cfg.test_frac, cfg.val_frac, cfg.horizon)
    origins = np.arange(max(forecaster.first_origin, split.test_start), len(series) - cfg.horizon + 1)
    if len(origins) == 0:
        raise TextseqError(
            f"the test tail ({len(series) - split.test_start} points) is shorter than the horizon {cfg.horizon}"
        )
    target = series.column(forecaster.spec.target)
    season = forecaster.season
    name = model_name or forecaster.describe()
    forecasts = {name: forecaster.predict(series, origins)}
    forecasts.update({n: f for n, f in _network_rows(forecaster, series, origins).items() if n != name})
    forecasts.update(baseline_table(target, origins, cfg.horizon, season, split.test_start, baselines))
    truth = horizon_values(target, origins, cfg.horizon)
    scale = seasonal_naive_scale(target[: split.test_start], season)
    report = ForecastReport(score(forecasts, truth, scale), cfg.horizon, season, len(origins), int(origins[0]),
                            name, forecasts=forecasts, origins=origins, truth=truth,
                            notes=_range_note(forecaster, target, split))
    last = target[origins - 1]
    if levels and len(forecaster.residuals):
        report.intervals[name] = interval_metrics(truth, forecasts[name], last, forecaster.residuals,
                                                  forecaster.relative, list(levels), scale)
        report.bands = {f"{level:g}": band(forecasts[name], last, forecaster.residuals, forecaster.relative, level)
                        for level in levels}
        reference = _snaive_residuals(target, split, cfg.horizon, season, forecaster.relative)
        if reference is not None and origins.min() >= season:
            report.intervals["seasonal_naive" if season > 1 else "naive"] = interval_metrics(
                truth, seasonal_naive(target, origins, cfg.horizon, season), last, reference, forecaster.relative,
                list(levels), scale)
    return report


def _snaive_residuals(target: np.ndarray, split, horizon: int, season: int, relative: bool) -> np.ndarray | None:
    """Validation errors of (seasonal) naive: the same conformal intervals around the simplest forecast."""
    origins = np.arange(max(split.val_start, season), split.test_start - horizon + 1)
    if len(origins) == 0:
        return None
    return validation_errors(horizon_values(target, origins, horizon),
                             seasonal_naive(target, origins, horizon, season), target[origins - 1], relative)


def backtest(series: SeriesData, cfg: ForecastConfig, k: int, baselines=BASELINES,
             quiet: bool = True) -> ForecastReport:
    """Rolling-origin evaluation: at each of ``k`` origins ``T - h*k, ..., T - h`` everything (scaler,
    networks, statistical models, the choice among them) is refit on the data before the origin, then
    forecasts ``h`` steps. Metrics are averaged over the origins."""
    from textseq.forecast.train import train_forecaster

    horizon = cfg.horizon
    origins = len(series) - horizon * np.arange(k, 0, -1)
    if k < 1 or origins[0] < cfg.seq_len + horizon + cfg.transform.diff:
        raise TextseqError(f"the series is too short for {k} backtest origins of horizon {horizon}")
    per_origin: list[dict[str, Metrics]] = []
    season, name = 1, "model"
    for fold, origin in enumerate(origins, 1):
        known = series.head(int(origin))
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.test_frac = 0.0  # the whole prefix is train + validation
        try:
            forecaster = train_forecaster(known, fold_cfg, quiet=quiet).forecaster
        except TextseqError as exc:
            raise TextseqError(f"backtest fold {fold} of {k} (first {origin} points): {exc}") from None
        season, name = forecaster.season, forecaster.describe()
        at = np.array([origin])
        forecasts = {"model": forecaster.predict(series, at)}
        forecasts.update(baseline_table(series.target_values, at, horizon, season, int(origin), baselines))
        scale = seasonal_naive_scale(series.target_values[:origin], season)
        per_origin.append(score(forecasts, horizon_values(series.target_values, at, horizon), scale))
    common = [n for n in per_origin[0] if all(n in fold for fold in per_origin)]
    rows = {(name if n == "model" else n): Metrics(**{m: float(np.mean([getattr(fold[n], m) for fold in per_origin]))
                                                     for m in METRIC_NAMES}) for n in common}
    return ForecastReport(rows, horizon, season, k, int(origins[0]), name)
