"""A trained forecaster: configuration + fitted transform (scaler as plain data) + network(s).

``Forecaster.predict(series, origins)`` gives ``[N, horizon]`` forecasts in the target's units;
checkpoints are self-contained (``kind="forecast"``) and reproduce predictions exactly.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from textseq.checkpoint import load_checkpoint, save_checkpoint
from textseq.errors import TextseqError
from textseq.forecast.config import ForecastConfig
from textseq.forecast.data import SeriesData, season_from_freq
from textseq.forecast.models import build_forecaster, rollout
from textseq.forecast.prep import SeriesTransform
from textseq.models.cells import Hidden


@dataclass
class SeriesSpec:
    """Which columns the model reads and forecasts, and where they came from (for predict/evaluate)."""

    target: str
    inputs: list[str]
    name: str = "series"
    freq: str | None = None
    source: dict = field(default_factory=dict)  # {"dataset": name} or {"csv": path, "date_column": ..., ...}

    @classmethod
    def of(cls, series: SeriesData, source: dict | None = None) -> SeriesSpec:
        return cls(series.target, list(series.inputs), series.name, series.freq, dict(source or {}))


def build_models(cfg: ForecastConfig, input_size: int) -> nn.Module:
    output_size = 1 if cfg.recursive else cfg.horizon
    return build_forecaster(cfg.model, input_size, output_size, cfg.seq_len)


def _stack_hidden(states: list[Hidden]) -> Hidden:
    if isinstance(states[0], tuple):
        return tuple(torch.cat(parts, dim=1) for parts in zip(*states, strict=True))
    return torch.cat(states, dim=1)


def states_along(model: nn.Module, x: torch.Tensor) -> list[Hidden]:
    """Hidden state *before* each step of one long sequence ``x[1, T, F]`` (stateful models)."""
    states, hidden = [], model.init_hidden(1)
    for t in range(x.size(1)):
        states.append(hidden)
        _, hidden = model.steps(x[:, t:t + 1], hidden)
    return states


class Forecaster:
    """Configuration + fitted transform + trained network(s) (an ensemble is averaged)."""

    def __init__(self, cfg: ForecastConfig, spec: SeriesSpec, transform: SeriesTransform, models: list[nn.Module],
                 residuals: np.ndarray | None = None, relative: bool = False):
        self.cfg, self.spec, self.transform, self.models = cfg, spec, transform, models
        self.residuals = np.zeros((0, cfg.horizon)) if residuals is None else residuals  # validation errors [N, H]
        self.relative = relative  # residuals relative to the last observed value (a positive series)

    @property
    def season(self) -> int:
        return self.cfg.season if self.cfg.season is not None else season_from_freq(self.spec.freq)

    @property
    def first_origin(self) -> int:
        return self.transform.lag + self.cfg.seq_len

    def label(self) -> str:
        from textseq.forecast.train import describe_transform

        members = f" x{len(self.models)}" if len(self.models) > 1 else ""
        return f"{self.cfg.model.arch} {describe_transform(self.cfg.transform)}, window {self.cfg.seq_len}{members}"

    def describe(self) -> str:
        return self.cfg.model.arch

    def _arrays(self, series: SeriesData) -> tuple[np.ndarray, np.ndarray]:
        missing = [c for c in [self.spec.target, *self.spec.inputs] if c not in series.columns]
        if missing:
            raise TextseqError(f"the data lacks column(s) {', '.join(missing)} the model was trained on")
        inputs = np.stack([series.column(c) for c in self.spec.inputs], axis=1)
        return inputs, series.column(self.spec.target)

    def check_origins(self, origins: np.ndarray, n: int) -> None:
        first = self.transform.lag + self.cfg.seq_len
        if len(origins) == 0 or origins.min() < first or origins.max() > n:
            raise TextseqError(
                f"need at least {first} points of history before a forecast "
                f"(window {self.cfg.seq_len} + differencing lag {self.transform.lag}); the series has {n}"
            )

    @torch.no_grad()
    def predict_model_space(self, model: nn.Module, x: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """Forecasts ``[N, horizon]`` in the scaled / differenced space the network works in."""
        model.eval()
        tx = torch.as_tensor(x, dtype=torch.float32)
        if self.cfg.train.stateful:
            start = self.transform.lag  # warm up over all the history, as in training
            if self.cfg.horizon == 1:  # one pass gives every one-step forecast
                out, _ = model.steps(tx[None, start:int(origins.max())])
                return out[0, origins - 1 - start].numpy()
            states = states_along(model, tx[None, start:int(origins.max())])
            hidden = _stack_hidden([states[o - 1 - start] for o in origins])
            last = torch.stack([tx[o - 1:o] for o in origins])
            return rollout(model, last, self.cfg.horizon, hidden).numpy()
        windows = torch.stack([tx[o - self.cfg.seq_len:o] for o in origins])
        if self.cfg.recursive:
            return rollout(model, windows, self.cfg.horizon).numpy()
        return model(windows).numpy()

    def predict(self, series: SeriesData, origins: np.ndarray | list[int]) -> np.ndarray:
        """Forecasts ``[N, horizon]`` in target units from each origin (index of the first forecast
        value; only rows before it are used). Ensemble members are averaged."""
        inputs, target = self._arrays(series)
        origins = np.asarray(origins, dtype=np.int64)
        self.check_origins(origins, len(target))
        x, _ = self.transform.encode(inputs, target)
        forecasts = [self.transform.decode(self.predict_model_space(m, x, origins), target, origins)
                     for m in self.models]
        return np.mean(forecasts, axis=0)

    def predict_steps(self, series: SeriesData, origins: np.ndarray, steps: int) -> np.ndarray:
        """``[N, steps]``: beyond the trained horizon the forecasts are fed back as history (target-only models)."""
        if steps <= self.cfg.horizon:
            return self.predict(series, origins)[:, :steps]
        if list(self.spec.inputs) != [self.spec.target]:
            raise TextseqError(f"forecasting beyond the trained horizon {self.cfg.horizon} feeds forecasts back, "
                               "so the target must be the only input; train with a longer --horizon")
        return np.stack([self._recursive(series.head(int(o)), steps) for o in origins])

    def _recursive(self, history: SeriesData, steps: int) -> np.ndarray:
        out: list[float] = []
        while len(out) < steps:
            known = np.concatenate([history.column(self.spec.target), out])
            extended = SeriesData(known[:, None], [self.spec.target], self.spec.target, [self.spec.target])
            out.extend(self.predict(extended, [len(known)])[0].tolist())
        return np.asarray(out[:steps])

    def forecast_next(self, series: SeriesData, steps: int | None = None) -> np.ndarray:
        """The next ``steps`` (default: the horizon) values after the end of ``series``."""
        return self.predict_steps(series, np.array([len(series)]), steps or self.cfg.horizon)[0]

    def to_payload(self) -> dict:
        return {
            "config": asdict(self.cfg),
            "series": asdict(self.spec),
            "transform": self.transform.to_dict(),
            "model_states": [m.state_dict() for m in self.models],
            "residuals": np.asarray(self.residuals).tolist(),
            "relative": self.relative,
        }

    @classmethod
    def from_payload(cls, data: dict) -> Forecaster:
        cfg = ForecastConfig.from_dict(data["config"])
        spec = SeriesSpec(**data["series"])
        models = []
        for state in data["model_states"]:
            model = build_models(cfg, len(spec.inputs))
            model.load_state_dict(state)
            models.append(model.eval())
        residuals = np.asarray(data.get("residuals", []), dtype=np.float64).reshape(-1, cfg.horizon)
        return cls(cfg, spec, SeriesTransform.from_dict(data["transform"]), models, residuals,
                   bool(data.get("relative", False)))


def save_forecaster(path: str | os.PathLike, forecaster: Forecaster, extra: dict | None = None) -> Path:
    """Atomic, self-contained checkpoint (``kind="forecast"``); check ``--force`` before calling."""
    return save_checkpoint(path, "forecast", {**forecaster.to_payload(), **(extra or {})})


def load_forecaster(path: str | os.PathLike):
    """A :class:`Forecaster` or, for the default ``auto`` model, an :class:`~textseq.forecast.auto.AutoForecaster`."""
    data = load_checkpoint(path, kind="forecast")
    try:
        if data.get("auto"):
            from textseq.forecast.auto import AutoForecaster

            return AutoForecaster.from_payload(data)
        return Forecaster.from_payload(data)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise TextseqError(f"checkpoint {path} is not a usable forecast model ({type(exc).__name__}: {exc})") from None
