"""From raw columns to model tensors and back: chronological splits, target transforms (log,
differencing), scaling fit on the training part only, and sliding windows.

Time index convention: a forecast *origin* ``o`` is the index of the first value to forecast; the
model sees rows ``o - seq_len .. o - 1`` and predicts target rows ``o .. o + horizon - 1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from textseq.errors import TextseqError, check_choice
from textseq.forecast.config import TransformConfig

SCALERS = ("standard", "minmax", "none")


@dataclass
class Split:
    """Chronological parts: train ``[0, val_start)``, validation ``[val_start, test_start)``, test the rest."""

    n: int
    val_start: int
    test_start: int


def chronological_split(n: int, test_frac: float = 0.3, val_frac: float = 0.2, horizon: int = 1) -> Split:
    """Test = the last ``test_frac`` of the series (70/30 as in the seeds by default); validation =
    the last ``val_frac`` of what remains for training. Each part holds at least one horizon (a short series
    still gets one forecast origin in each)."""
    if not (0.0 <= test_frac < 1.0 and 0.0 <= val_frac < 1.0):
        raise TextseqError("--test-frac and --val-frac must be in [0, 1)")
    test = max(int(round(n * test_frac)), horizon) if test_frac > 0 else 0
    val = max(int(round((n - test) * val_frac)), horizon) if val_frac > 0 else 0
    return Split(n, max(n - test - val, 0), max(n - test, 0))


MIN_TRAIN_WINDOWS = 8  # fewer windows than this and a network learns nothing a baseline does not know


def default_seq_len(season: int, horizon: int) -> int:
    """Two seasons (the seeds' 24 months), at least two horizons and 8 steps, at most 60."""
    return min(max(2 * season, 2 * horizon, 8), 60)


def fitting_seq_len(wanted: int, split: Split, lag: int, horizon: int) -> int:
    """The longest window up to ``wanted`` that leaves MIN_TRAIN_WINDOWS training windows (0: none fits)."""
    room = split.val_start - lag - horizon + 1 - MIN_TRAIN_WINDOWS
    return max(0, min(wanted, room))


@dataclass
class Scaler:
    """Per-column affine scaling ``(x - center) / scale``, stored as plain lists."""

    kind: str = "standard"
    center: list[float] | None = None
    scale: list[float] | None = None

    def fit(self, values: np.ndarray) -> Scaler:
        check_choice("scaling", self.kind, SCALERS)
        values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        if self.kind == "standard":
            center, scale = values.mean(axis=0), values.std(axis=0)
        elif self.kind == "minmax":
            center, scale = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
        else:
            center, scale = np.zeros(values.shape[1]), np.ones(values.shape[1])
        scale = np.where(scale > 1e-12, scale, 1.0)  # a constant column stays finite
        self.center, self.scale = center.tolist(), scale.tolist()
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - np.asarray(self.center)) / np.asarray(self.scale)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * np.asarray(self.scale) + np.asarray(self.center)


class SeriesTransform:
    """Target: y -> log -> difference at lag ``diff`` -> scale; other input columns: scale only.

    Fit on the training rows only, so nothing about the validation or test part leaks in.
    """

    def __init__(self, cfg: TransformConfig, target_in_inputs: list[bool]):
        self.cfg = cfg
        self.target_in_inputs = list(target_in_inputs)
        self.input_scaler = Scaler(cfg.scale)
        self.target_scaler = Scaler(cfg.scale)

    @property
    def lag(self) -> int:
        return self.cfg.diff

    def _level(self, target: np.ndarray) -> np.ndarray:
        if self.cfg.log:
            if (target <= 0).any():
                row = int(np.flatnonzero(target <= 0)[0]) + 1
                raise TextseqError(f"--log needs positive values; the target is {target[row - 1]:g} at row {row}")
            return np.log(target)
        return np.asarray(target, dtype=np.float64)

    def _unscaled(self, inputs: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        level = self._level(target)
        z = np.full_like(level, np.nan)
        z[self.lag:] = level[self.lag:] - level[: len(level) - self.lag] if self.lag else level
        x = np.array(inputs, dtype=np.float64)
        x[:, self.target_in_inputs] = z[:, None]
        return x, z

    def fit(self, inputs: np.ndarray, target: np.ndarray, end: int) -> SeriesTransform:
        """Fit the scalers on rows ``[lag, end)`` (the training part)."""
        if end - self.lag < 2:
            raise TextseqError("the training part is too short to fit the scaler")
        x, z = self._unscaled(inputs[:end], target[:end])
        self.input_scaler.fit(x[self.lag:])
        self.target_scaler.fit(z[self.lag:])
        return self

    def encode(self, inputs: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model-space arrays ``x[T, F]``, ``z[T]``; the first ``lag`` rows are NaN (no difference yet)."""
        x, z = self._unscaled(inputs, target)
        return self.input_scaler.transform(x), self.target_scaler.transform(z[:, None])[:, 0]

    def decode(self, z_pred: np.ndarray, target: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """Turn model outputs ``z_pred[N, H]`` at ``origins`` back into target units, undoing the
        differences with the known history ``target[:o]`` and the earlier forecasts."""
        z = self.target_scaler.inverse(z_pred[..., None])[..., 0]
        if self.lag:
            level = self._level(target)
            for h in range(z.shape[1]):
                previous = z[:, h - self.lag] if h >= self.lag else level[origins + h - self.lag]
                z[:, h] = z[:, h] + previous
        return np.exp(z) if self.cfg.log else z

    def to_dict(self) -> dict:
        return {"config": asdict(self.cfg), "target_in_inputs": self.target_in_inputs,
                "input_scaler": asdict(self.input_scaler), "target_scaler": asdict(self.target_scaler)}

    @classmethod
    def from_dict(cls, data: dict) -> SeriesTransform:
        transform = cls(TransformConfig(**data["config"]), data["target_in_inputs"])
        transform.input_scaler = Scaler(**data["input_scaler"])
        transform.target_scaler = Scaler(**data["target_scaler"])
        return transform


def origins_between(first: int, end: int, seq_len: int, horizon: int, every_step: bool = False,
                    start: int = 0) -> np.ndarray:
    """Origins ``>= start`` whose input window uses only rows ``>= first`` (the first usable row,
    after the differencing lag) and whose targets all lie before ``end``. N-to-N targets are the
    rows ``o - seq_len + 1 .. o``, so there the last origin is ``end - 1``."""
    last = end - 1 if every_step else end - horizon
    return np.arange(max(first + seq_len, start), last + 1)


def horizon_values(target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The values to forecast from each origin, ``target[o:o + horizon]``: ``[N, horizon]``."""
    return np.stack([target[o:o + horizon] for o in origins])


def make_windows(inputs: np.ndarray, target: np.ndarray, seq_len: int, horizon: int = 1,
                 every_step: bool = False, origins: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows ``X[N, seq_len, F]`` with targets ``Y[N, horizon]`` (N-to-1: the values after
    the window) or, with ``every_step``, ``Y[N, seq_len]`` (N-to-N: the next value at every step)."""
    inputs = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
    if origins is None:
        origins = origins_between(0, len(target), seq_len, horizon, every_step)
    if len(origins) == 0:
        raise TextseqError(
            f"series of {len(target)} points is too short for windows of {seq_len} + horizon {horizon}"
        )
    x = np.stack([inputs[o - seq_len:o] for o in origins])
    if every_step:
        y = np.stack([target[o - seq_len + 1:o + 1] for o in origins])
    else:
        y = horizon_values(target, origins, horizon)
    return x, y
