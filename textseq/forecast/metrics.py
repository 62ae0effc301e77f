"""Point-forecast accuracy: MAE, RMSE, MAPE, sMAPE (in percent) and MASE."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRIC_NAMES = ("mae", "rmse", "mape", "smape", "mase")


@dataclass
class Metrics:
    mae: float
    rmse: float
    mape: float  # percent, over the non-zero true values
    smape: float  # percent, 200 |e| / (|y| + |y_hat|)
    mase: float  # MAE / in-sample seasonal-naive MAE


def seasonal_naive_scale(history: np.ndarray, season: int = 1) -> float:
    """In-sample MAE of the seasonal naive forecast ``y[t] = y[t - m]`` (the MASE denominator);
    falls back to m = 1 when the history is shorter than two seasons."""
    history = np.asarray(history, dtype=np.float64)
    m = season if len(history) > 2 * season else 1
    if len(history) <= m:
        return float("nan")
    return float(np.abs(history[m:] - history[:-m]).mean())


def compute_metrics(truth: np.ndarray, pred: np.ndarray, scale: float) -> Metrics:
    truth = np.asarray(truth, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    error = pred - truth
    nonzero = truth != 0
    denominator = np.abs(truth) + np.abs(pred)
    both_zero = denominator == 0
    mae = float(np.abs(error).mean())
    return Metrics(
        mae=mae,
        rmse=float(np.sqrt((error**2).mean())),
        mape=float(100 * np.abs(error[nonzero] / truth[nonzero]).mean()) if nonzero.any() else float("nan"),
        smape=float(100 * np.where(both_zero, 0.0, 2 * np.abs(error) / np.where(both_zero, 1, denominator)).mean()),
        mase=mae / scale if scale > 0 else float("nan"),
    )
