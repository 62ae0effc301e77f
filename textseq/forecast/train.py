"""Training forecasters: direct / teacher-forced / free-running modes, stateful chunks, early
stopping on the validation part, seeded ensembles.

Selection never looks at the test tail: the scaler is fit on the training part, and early stopping
keeps the epoch with the lowest validation MAE (in the target's units).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from textseq.errors import TextseqError
from textseq.forecast.config import ForecastConfig, TransformConfig
from textseq.forecast.data import SeriesData
from textseq.forecast.forecaster import Forecaster, SeriesSpec, build_models
from textseq.forecast.intervals import is_relative, validation_errors
from textseq.forecast.models import rollout
from textseq.forecast.prep import (
    MIN_TRAIN_WINDOWS,
    SeriesTransform,
    Split,
    chronological_split,
    default_seq_len,
    fitting_seq_len,
    horizon_values,
    make_windows,
    origins_between,
)
from textseq.forecast.season import Season, detect_season
from textseq.models.cells import detach_hidden
from textseq.progress import ProgressReporter
from textseq.training import EarlyStopping, guarded_update, make_optimizer

LOSS_FUNCTIONS = {"mse": nn.MSELoss, "mae": nn.L1Loss, "huber": nn.HuberLoss}


@dataclass
class ForecastTrainResult:
    forecaster: Forecaster  # or an AutoForecaster (the same interface)
    split: Split
    best_val_mae: list[float] = field(default_factory=list)  # per ensemble member
    epochs_run: list[int] = field(default_factory=list)
    selection: list[tuple[str, float]] = field(default_factory=list)  # (candidate, validation MAE)
    season: Season | None = None


def validate_config(cfg: ForecastConfig, series: SeriesData) -> None:
    """The settings' own checks (again: a config may have been changed in place) and those that need the series."""
    cfg.validate()
    if cfg.recursive and cfg.horizon > 1 and series.inputs != [series.target]:
        raise TextseqError(
            "recursive multi-step forecasts feed predictions back, so the target must be the only input; "
            "use --mode direct with several input columns"
        )
    need = cfg.seq_len + cfg.horizon + cfg.transform.diff
    if len(series) < need:
        raise TextseqError(
            f"series of {len(series)} points is shorter than window {cfg.seq_len} + horizon {cfg.horizon}"
            + (f" + differencing lag {cfg.transform.diff}" if cfg.transform.diff else "")
        )


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    return list(torch.randperm(n, generator=generator).split(batch_size))


def _stream_chunks(x: np.ndarray, z: np.ndarray, start: int, end: int, chunk: int, streams: int):
    """Stateful data: rows ``[start, end)`` cut into ``streams`` parallel consecutive streams
    (like LM batchify), then into chunks of ``chunk`` steps; target = the next value."""
    steps = (end - 1 - start) // streams
    if steps < 2:
        raise TextseqError("the training part is too short for stateful training")
    rows = np.arange(streams)[:, None] * steps + np.arange(steps)[None, :] + start
    inputs = torch.as_tensor(x[rows], dtype=torch.float32)  # [S, steps, F]
    targets = torch.as_tensor(z[rows + 1], dtype=torch.float32)  # [S, steps]
    return list(zip(inputs.split(chunk, dim=1), targets.split(chunk, dim=1), strict=True))


class _Trainer:
    """One network's training on prepared arrays; ``epoch()`` returns the mean training loss."""

    def __init__(self, cfg: ForecastConfig, model: nn.Module, x: np.ndarray, z: np.ndarray, split: Split, lag: int):
        self.cfg, self.model = cfg, model
        t = cfg.train
        self.loss_fn = LOSS_FUNCTIONS[t.loss]()
        self.optimizer = make_optimizer(t.optimizer, model.parameters(), t.lr, t.momentum, t.weight_decay)
        self.generator = torch.Generator().manual_seed(t.seed)
        if t.stateful:
            streams = max(1, min(t.batch_size, (split.val_start - lag) // (4 * cfg.seq_len)))
            self.chunks = _stream_chunks(x, z, lag, split.val_start, cfg.seq_len, streams)
            return
        teacher = t.mode == "teacher-forcing" and model.recurrent
        horizon = 1 if t.mode == "teacher-forcing" else cfg.horizon
        origins = origins_between(lag, split.val_start, cfg.seq_len, horizon, every_step=teacher)
        if len(origins) == 0:
            raise TextseqError(
                f"the training part ({split.val_start} points) is too short for windows of {cfg.seq_len} "
                f"+ horizon {cfg.horizon}; use a shorter --seq-len or a smaller --test-frac/--val-frac"
            )
        wx, wy = make_windows(x, z, cfg.seq_len, horizon, every_step=teacher, origins=origins)
        self.x = torch.as_tensor(wx, dtype=torch.float32)
        self.y = torch.as_tensor(wy, dtype=torch.float32)

    def _predict(self, x: Tensor) -> Tensor:
        mode = self.cfg.train.mode
        if mode == "teacher-forcing":
            return self.model.steps(x)[0][..., 0] if self.model.recurrent else self.model(x)
        if mode == "free-running":
            return rollout(self.model, x, self.cfg.horizon)
        return self.model(x)

    def _step(self, loss: Tensor) -> float:
        value = guarded_update(loss, self.optimizer, self.model.parameters(), self.cfg.train.clip, hint="lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        return value

    def epoch(self) -> float:
        self.model.train()
        if self.cfg.train.stateful:
            hidden, losses = None, []
            for inputs, targets in self.chunks:
                out, hidden = self.model.steps(inputs, hidden)
                hidden = detach_hidden(hidden)
                losses.append(self._step(self.loss_fn(out[..., 0], targets)))
            return float(np.mean(losses))
        losses = [self._step(self.loss_fn(self._predict(self.x[idx]), self.y[idx]))
                  for idx in _batches(len(self.x), self.cfg.train.batch_size, self.generator)]
        return float(np.mean(losses))


def validation_origins(cfg: ForecastConfig, split: Split, lag: int) -> np.ndarray:
    """Origins whose whole horizon lies in the validation part (and which have a full window)."""
    origins = origins_between(lag, split.test_start, cfg.seq_len, cfg.horizon, start=split.val_start)
    if len(origins) == 0:
        raise TextseqError(
            f"the validation part ({split.test_start - split.val_start} points) has no room for a window of "
            f"{cfg.seq_len} and horizon {cfg.horizon}; use a shorter --seq-len (0: automatic), raise --val-frac "
            "or use a longer series"
        )
    return origins


def train_one(cfg: ForecastConfig, forecaster: Forecaster, series: SeriesData, split: Split, seed: int,
              on_epoch: Callable[[int, float, float], None] | None = None) -> tuple[nn.Module, float, int]:
    """Train one network with early stopping on the validation MAE; returns (best model, its MAE, epochs)."""
    torch.manual_seed(seed)
    cfg_seed = copy.deepcopy(cfg)
    cfg_seed.train.seed = seed
    x, z = forecaster.transform.encode(series.input_values, series.target_values)
    model = build_models(cfg, len(series.inputs))
    trainer = _Trainer(cfg_seed, model, x, z, split, forecaster.transform.lag)
    val_origins = validation_origins(cfg, split, forecaster.transform.lag)
    val_truth = horizon_values(series.target_values, val_origins, cfg.horizon)
    single = Forecaster(cfg, forecaster.spec, forecaster.transform, [model])
    stopper, best_state = EarlyStopping(cfg.train.patience), copy.deepcopy(model.state_dict())
    for epoch in range(1, cfg.train.epochs + 1):
        loss = trainer.epoch()
        val_mae = float(np.abs(single.predict(series, val_origins) - val_truth).mean())
        if on_epoch:
            on_epoch(epoch, loss, val_mae)
        if stopper.update(val_mae):
            best_state = copy.deepcopy(model.state_dict())
        elif stopper.should_stop:
            break
    model.load_state_dict(best_state)
    return model.eval(), stopper.best, epoch


def train_network(series: SeriesData, cfg: ForecastConfig, split: Split, source: dict | None = None,
                  quiet: bool = False, members: list[nn.Module] | None = None) -> ForecastTrainResult:
    """Fit the transform on the training part, then train ``cfg.train.ensemble`` networks (a concrete config:
    window and transform fixed); ``members`` already trained (seeds seed, seed+1, ...) are kept."""
    validate_config(cfg, series)
    transform = SeriesTransform(cfg.transform, [c == series.target for c in series.inputs])
    transform.fit(series.input_values, series.target_values, split.val_start)
    validation_origins(cfg, split, transform.lag)  # fail before training if there are none
    forecaster = Forecaster(cfg, SeriesSpec.of(series, source), transform, list(members or []))
    result = ForecastTrainResult(forecaster, split)
    epochs, todo = cfg.train.epochs, range(len(forecaster.models), cfg.train.ensemble)
    with ProgressReporter("training", epochs * len(todo), enabled=not quiet and len(todo) > 0,
                          transient=True) as progress:
        for i, member in enumerate(todo):
            def on_epoch(epoch: int, loss: float, val_mae: float, i: int = i) -> None:
                progress.update(i * epochs + epoch, stats=f"epoch {epoch} loss {loss:.4f} val MAE {val_mae:.4g}")

            model, val_mae, epochs_run = train_one(cfg, forecaster, series, split, cfg.train.seed + member, on_epoch)
            forecaster.models.append(model)
            result.best_val_mae.append(val_mae)
            result.epochs_run.append(epochs_run)
    return result


def transform_candidates(target: np.ndarray, season: int, base: TransformConfig) -> dict[str, TransformConfig]:
    """None, first differences, seasonal differences, and their logs for a positive series."""
    options = {"none": 0, "diff1": 1} | ({f"diff{season}": season} if season > 1 else {})
    candidates = {name: TransformConfig(scale=base.scale, diff=lag) for name, lag in options.items()}
    if (np.asarray(target) > 0).all():
        lag = season if season > 1 else 1
        candidates[f"log+diff{lag}"] = TransformConfig(scale=base.scale, log=True, diff=lag)
    return candidates


def describe_transform(transform: TransformConfig) -> str:
    parts = (["log"] if transform.log else []) + ([f"diff{transform.diff}"] if transform.diff else [])
    return "+".join(parts) or "none"


def concrete(cfg: ForecastConfig, split: Split, transform: TransformConfig, season: int) -> ForecastConfig | None:
    """``cfg`` with this transform, the season and a window that fits the training part (None: none fits)."""
    out = copy.deepcopy(cfg)
    out.transform, out.season, out.choose_transform = copy.deepcopy(transform), season, False
    out.seq_len = cfg.seq_len or fitting_seq_len(default_seq_len(season, cfg.horizon), split, transform.diff,
                                                 cfg.horizon)
    return out if out.seq_len >= 1 else None


def select_network(series: SeriesData, cfg: ForecastConfig, split: Split, season: int, source: dict | None = None,
                   quiet: bool = False) -> tuple[ForecastTrainResult | None, list[tuple[str, float]]]:
    """One network per transform candidate (or the given transform), the lowest validation MAE kept and
    completed to its ensemble. Returns (result or None when no window fits, [(transform, val MAE)])."""
    if cfg.choose_transform:
        options = transform_candidates(series.target_values[:split.val_start], season, cfg.transform)
    else:
        options = {describe_transform(cfg.transform): cfg.transform}
    log, best = [], None
    for name, transform in options.items():
        trial = concrete(cfg, split, transform, season)
        if trial is None:
            continue
        if len(options) > 1:
            trial.train.ensemble = 1
        result = train_network(series, trial, split, source, quiet)
        log.append((name, result.best_val_mae[0]))
        if best is None or result.best_val_mae[0] < best.best_val_mae[0]:
            best = result
    if best is None or best.forecaster.cfg.train.ensemble == cfg.train.ensemble:
        return best, log
    final = copy.deepcopy(best.forecaster.cfg)
    final.train.ensemble = cfg.train.ensemble
    full = train_network(series, final, split, source, quiet, members=best.forecaster.models)
    full.best_val_mae = best.best_val_mae + full.best_val_mae
    full.epochs_run = best.epochs_run + full.epochs_run
    return full, log


def train_forecaster(series: SeriesData, cfg: ForecastConfig, source: dict | None = None,
                     quiet: bool = False) -> ForecastTrainResult:
    """The default ``auto`` model (networks and statistical models, chosen and combined on validation), or
    with ``method="network"`` one network (its transform chosen on validation unless given)."""
    validate_config(cfg, series)
    split = chronological_split(len(series), cfg.test_frac, cfg.val_frac, cfg.horizon)
    season = detect_season(series.target_values[:split.test_start], series.freq, cfg.season)  # never the test tail
    if cfg.method == "auto":
        from textseq.forecast.auto import fit_auto

        return fit_auto(series, cfg, split, season, source, quiet)
    result, log = select_network(series, cfg, split, season.period, source, quiet)
    if result is None:
        raise TextseqError(no_room_message(cfg, split))
    result.selection, result.season = log, season
    forecaster = result.forecaster
    forecaster.relative = is_relative(series.target_values[:split.val_start])
    origins = validation_origins(forecaster.cfg, split, forecaster.transform.lag)
    forecaster.residuals = validation_errors(horizon_values(series.target_values, origins, cfg.horizon),
                                             forecaster.predict(series, origins), series.target_values[origins - 1],
                                             forecaster.relative)
    return result


def no_room_message(cfg: ForecastConfig, split: Split) -> str:
    return (f"the training part ({split.val_start} points) has no room for {MIN_TRAIN_WINDOWS} windows of "
            f"{cfg.seq_len or 'any length'} + horizon {cfg.horizon}; use a shorter --seq-len, a smaller "
            "--test-frac/--val-frac or a longer series")
