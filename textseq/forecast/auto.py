"""The default forecaster: networks and statistical models fitted on the training part, then chosen or
combined on the validation part (combinations of ETS/ARIMA/theta and hybrids with networks won the M3 and M4
competitions).

Candidates: the recurrent network (its transform chosen on validation, a seed ensemble), the MLP with the same
transform, ETS, ARIMA and theta (each fitted on the raw series with its own automatic settings), naive, seasonal
naive and drift. The forecast is the median, step by step, of the three networks or statistical models with the
lowest validation MAE (the simple forecasts are printed, never combined; one of them is used alone only where no
model can be fitted). A validation part of a few origins ranks models well enough to drop the bad ones but not to
pick one winner, so three are combined; the median, not the mean, so that one member that runs away (an ARIMA
whose trend explodes on a short series) cannot drag the forecast with it. The networks are candidates only when
the training part holds at least ``MIN_NETWORK_POINTS`` points: on shorter series (52 annual points leave 29 for
training) they are trained and printed but never combined, since a handful of windows cannot teach them a trend
and their validation score on one or two origins is luck (bench/bench_forecast.py measures both choices). For the
test tail the statistical models are refitted on everything before it, and for forecasting the future on the
whole series; the networks keep the weights they learned on the training part.
"""

from __future__ import annotations

import copy
from dataclasses import asdict

import numpy as np

from textseq.errors import TextseqError
from textseq.forecast.baselines import SIMPLE_BASELINES, simple_forecasts
from textseq.forecast.config import ForecastConfig
from textseq.forecast.data import SeriesData
from textseq.forecast.forecaster import Forecaster, SeriesSpec
from textseq.forecast.intervals import is_relative, validation_errors
from textseq.forecast.prep import Split, horizon_values, origins_between
from textseq.forecast.season import Season
from textseq.forecast.statistical import KINDS, StatModel, fit_statistical

NETWORKS = ("rnn", "mlp")
COMBINED = (*NETWORKS, *KINDS)  # the candidates that enter combinations
COMBINE_UP_TO = 3
MIN_NETWORK_POINTS = 40  # training points below which the networks are printed but never combined


class AutoForecaster:
    """Fitted candidates + the chosen members (their forecasts are averaged) + validation residuals."""

    def __init__(self, cfg: ForecastConfig, spec: SeriesSpec, season: Season, networks: dict[str, Forecaster],
                 stats: dict[str, StatModel], members: list[str], residuals: np.ndarray,
                 selection: list[tuple[str, float]], fit_end: int, relative: bool = False,
                 combine: str = "median"):
        self.cfg, self.spec, self.season_info = cfg, spec, season
        self.networks, self.stats, self.members = networks, stats, members
        self.residuals, self.selection, self.fit_end = residuals, selection, fit_end
        self.relative = relative  # residuals relative to the last observed value (a positive series)
        self.combine = combine  # "median" (this release) or "mean" (checkpoints saved before it)

    @property
    def season(self) -> int:
        return self.season_info.period

    @property
    def candidates(self) -> list[str]:
        simple = [name for name in SIMPLE_BASELINES if name != "seasonal_naive" or self.season > 1]
        return [*self.networks, *self.stats, *simple]

    @property
    def first_origin(self) -> int:
        needs = [f.first_origin for name, f in self.networks.items() if name in self.members]
        return max([*needs, self.season if "seasonal_naive" in self.members else 1, 2])

    def label(self, name: str) -> str:
        if name in self.networks:
            return self.networks[name].label()
        if name in self.stats:
            return self.stats[name].describe()
        return name

    def describe(self) -> str:
        return "auto"

    def composition(self) -> str:
        return " + ".join(self.members)

    def combination(self) -> str:
        """How the members' forecasts are combined, for the summary line."""
        return f"{self.combine} of the {len(self.members)} best on validation" if len(self.members) > 1 else ""

    def component(self, name: str, series: SeriesData, origins: np.ndarray, steps: int) -> np.ndarray:
        """``[N, steps]`` forecasts of one candidate."""
        target = series.column(self.spec.target)
        if name in self.networks:
            return self.networks[name].predict_steps(series, origins, steps)
        if name in self.stats:
            return self.stats[name].forecast(target, origins, steps)
        return simple_forecasts(name, target, origins, steps, self.season)

    def forecasts(self, series: SeriesData, origins, names: list[str] | None = None,
                  steps: int | None = None) -> dict[str, np.ndarray]:
        origins = np.asarray(origins, dtype=np.int64)
        return {name: self.component(name, series, origins, steps or self.cfg.horizon)
                for name in (names or self.candidates)}

    def predict(self, series: SeriesData, origins, steps: int | None = None) -> np.ndarray:
        origins = np.asarray(origins, dtype=np.int64)
        self.check_origins(origins, len(series))
        return combine_forecasts(list(self.forecasts(series, origins, self.members, steps).values()), self.combine)

    def check_origins(self, origins: np.ndarray, n: int) -> None:
        if len(origins) == 0 or origins.min() < self.first_origin or origins.max() > n:
            raise TextseqError(f"need at least {self.first_origin} points of history before a forecast; "
                               f"the series has {n}")

    def refit(self, series: SeriesData) -> AutoForecaster:
        """The statistical members refitted on the whole of ``series`` (the networks unchanged)."""
        target = series.column(self.spec.target)
        stats = {kind: model for kind in self.stats
                 if (model := fit_statistical(kind, target, self.season)) is not None}
        return AutoForecaster(self.cfg, self.spec, self.season_info, self.networks, stats,
                              _still_fitted(self.members, stats), self.residuals, self.selection, len(series),
                              self.relative, self.combine)

    def forecast_next(self, series: SeriesData, steps: int | None = None) -> np.ndarray:
        return self.predict(series, [len(series)], steps)[0]

    def to_payload(self) -> dict:
        return {"auto": True, "config": asdict(self.cfg), "series": asdict(self.spec),
                "season": asdict(self.season_info),
                "networks": {name: f.to_payload() for name, f in self.networks.items()},
                "stats": {name: m.to_dict() for name, m in self.stats.items()}, "members": list(self.members),
                "residuals": np.asarray(self.residuals).tolist(), "selection": [list(s) for s in self.selection],
                "fit_end": self.fit_end, "relative": self.relative, "combine": self.combine}

    @classmethod
    def from_payload(cls, data: dict) -> AutoForecaster:
        return cls(ForecastConfig.from_dict(data["config"]), SeriesSpec(**data["series"]), Season(**data["season"]),
                   {name: Forecaster.from_payload(p) for name, p in data["networks"].items()},
                   {name: StatModel.from_dict(m) for name, m in data["stats"].items()}, list(data["members"]),
                   np.asarray(data["residuals"], dtype=np.float64), [tuple(s) for s in data["selection"]],
                   int(data["fit_end"]), bool(data["relative"]), str(data.get("combine", "mean")))


def _still_fitted(members: list[str], stats: dict[str, StatModel]) -> list[str]:
    """The members left when a statistical model could not be refitted on a longer part (naive if none)."""
    return [m for m in members if m in stats or m not in KINDS] or ["naive"]


def _fit_stats(target: np.ndarray, season: int) -> dict[str, StatModel]:
    return {kind: model for kind in KINDS if (model := fit_statistical(kind, target, season)) is not None}


def _mae(forecast: np.ndarray, truth: np.ndarray) -> float:
    value = float(np.abs(forecast - truth).mean())
    return value if np.isfinite(value) else np.inf


def networks_combined(train_points: int) -> bool:
    """Whether the networks may enter the combination, given the points of the training part."""
    return train_points >= MIN_NETWORK_POINTS


def combine_forecasts(forecasts: list[np.ndarray], how: str = "median") -> np.ndarray:
    """The members' ``[N, steps]`` forecasts combined element by element."""
    stacked = np.stack(forecasts)  # [members, N, steps]
    return np.median(stacked, axis=0) if how == "median" else stacked.mean(axis=0)


def choose_members(val_mae: dict[str, float], networks: bool = True) -> list[str]:
    """The (up to) three combinable candidates with the lowest validation MAE (the networks among them only if
    ``networks``); else the best simple forecast."""
    finite = {name: mae for name, mae in val_mae.items() if np.isfinite(mae)}
    pool = COMBINED if networks else KINDS
    ranked = sorted((name for name in finite if name in pool), key=finite.get)
    simple = [name for name in finite if name not in COMBINED]
    return ranked[:COMBINE_UP_TO] or [min(simple, key=finite.get)]


def fit_auto(series: SeriesData, cfg: ForecastConfig, split: Split, season: Season, source: dict | None = None,
             quiet: bool = False):
    """Fit every candidate on the training part, choose the members on validation, refit the statistical
    models on everything before the test tail."""
    from textseq.forecast.train import ForecastTrainResult, no_room_message, select_network, train_network

    target = series.target_values
    m = season.period
    rnn, log = select_network(series, cfg, split, m, source, quiet)
    networks: dict[str, Forecaster] = {}
    if rnn is not None:
        networks["rnn"] = rnn.forecaster
        mlp_cfg = copy.deepcopy(rnn.forecaster.cfg)
        mlp_cfg.model.arch = "mlp"
        networks["mlp"] = train_network(series, mlp_cfg, split, source, quiet).forecaster
    stats = _fit_stats(target[:split.val_start], m)
    spec = SeriesSpec.of(series, source)
    trial = AutoForecaster(cfg, spec, season, networks, stats, [], np.zeros((0, cfg.horizon)), [], split.val_start)
    origins = origins_between(0, split.test_start, 1, cfg.horizon, start=split.val_start)
    if len(origins) == 0 or (not networks and split.val_start < 4):
        raise TextseqError(no_room_message(cfg, split))
    truth = horizon_values(target, origins, cfg.horizon)
    val = trial.forecasts(series, origins, [c for c in trial.candidates if c != "seasonal_naive" or origins[0] >= m])
    scores = {name: _mae(f, truth) for name, f in val.items()}
    members = choose_members(scores, networks=networks_combined(split.val_start))
    combined = combine_forecasts([val[name] for name in members])
    scores[" + ".join(members) + " (median)"] = _mae(combined, truth)
    relative = is_relative(target[:split.val_start])
    residuals = validation_errors(truth, combined, target[origins - 1], relative)
    selection = [(f"rnn transform {name}", mae) for name, mae in log] + sorted(scores.items(), key=lambda s: s[1])
    refitted = _fit_stats(target[:split.test_start], m)
    fitted = AutoForecaster(cfg, spec, season, networks, refitted, _still_fitted(members, refitted), residuals,
                            selection, split.test_start, relative)
    result = ForecastTrainResult(fitted, split, selection=selection, season=season)
    if rnn is not None:
        result.best_val_mae, result.epochs_run = rnn.best_val_mae, rnn.epochs_run
    return result
