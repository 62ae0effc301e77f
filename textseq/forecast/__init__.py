"""Numeric time-series forecasting with the same recurrent cells as the language models.

Load a series (:func:`load_csv`, :func:`load_dataset`), describe the run with a
:class:`ForecastConfig`, :func:`train_forecaster`, then :func:`evaluate_tail` (model next to the
naive / seasonal naive / drift / ARIMA / ETS baselines) or :func:`backtest`; checkpoints via
:func:`save_forecaster` / :func:`load_forecaster`.
"""

from textseq.forecast.config import ForecastConfig, ForecastModelConfig, ForecastTrainConfig, TransformConfig
from textseq.forecast.data import SeriesData, load_csv
from textseq.forecast.datasets import list_datasets, load_dataset
from textseq.forecast.evaluation import backtest, evaluate_tail
from textseq.forecast.forecaster import Forecaster, load_forecaster, save_forecaster
from textseq.forecast.train import train_forecaster

__all__ = [
    "ForecastConfig", "ForecastModelConfig", "ForecastTrainConfig", "Forecaster", "SeriesData", "TransformConfig",
    "backtest",
    "evaluate_tail", "list_datasets", "load_csv", "load_dataset", "load_forecaster", "save_forecaster",
    "train_forecaster",
]
