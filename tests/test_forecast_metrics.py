"""Forecast metrics against hand-computed values; baselines on constructed series."""

import math

import numpy as np
import pytest

from textseq.forecast.baselines import baseline_forecasts, drift, naive, seasonal_naive
from textseq.forecast.metrics import compute_metrics, seasonal_naive_scale


def test_metrics_match_hand_computed_values():
    m = compute_metrics(np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0]), scale=0.5)
    assert m.mae == pytest.approx(1.0)
    assert m.rmse == pytest.approx(math.sqrt(5 / 3))
    assert m.mape == pytest.approx(100 * (1 + 0 + 0.5) / 3)
    assert m.smape == pytest.approx(100 * (2 / 3 + 0 + 4 / 6) / 3)
    assert m.mase == pytest.approx(2.0)


def test_mape_skips_zero_truth_and_smape_handles_double_zero():
    m = compute_metrics(np.array([0.0, 2.0]), np.array([0.0, 1.0]), scale=1.0)
    assert m.mape == pytest.approx(50.0)
    assert m.smape == pytest.approx(100 * (0 + 2 / 3) / 2)


def test_seasonal_naive_scale():
    history = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    assert seasonal_naive_scale(history, 1) == pytest.approx(1.75)
    assert seasonal_naive_scale(history, 2) == pytest.approx(10 / 3)
    assert seasonal_naive_scale(history, 12) == pytest.approx(1.75)  # too short for m=12: falls back to 1


def test_simple_baselines_on_a_constructed_series():
    y = np.array([10.0, 20, 30, 11, 21, 31, 12, 22, 32, 13])
    origins = np.array([6, 7])
    assert naive(y, origins, 2).tolist() == [[31, 31], [12, 12]]
    assert seasonal_naive(y, origins, 4, season=3).tolist() == [[11, 21, 31, 11], [21, 31, 12, 21]]
    assert drift(y, origins, 2).tolist() == [[31 + 21 / 5, 31 + 2 * 21 / 5], [12 + 2 / 6, 12 + 4 / 6]]


def test_arima_and_ets_beat_naive_on_a_seasonal_trend():
    t = np.arange(96)
    y = 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, len(t))
    origins = np.arange(72, 85)
    truth = np.stack([y[o:o + 12] for o in origins])
    naive_mae = np.abs(naive(y, origins, 12) - truth).mean()
    for kind in ("arima", "ets"):
        forecast = baseline_forecasts(kind, y, origins, 12, season=12, fit_end=72)
        assert forecast.shape == (len(origins), 12)
        assert np.abs(forecast - truth).mean() < 0.3 * naive_mae
