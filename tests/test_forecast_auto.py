"""The default auto forecaster: season detection, adaptive split and window, statistical baselines on the raw
series, choice / combination on validation, conformal intervals, predict after refitting, JSON output."""

import json
import warnings

import numpy as np
import pytest

from textseq.cli import run
from textseq.errors import TextseqError
from textseq.forecast.config import ForecastConfig, ForecastTrainConfig
from textseq.forecast.data import SeriesData, future_labels
from textseq.forecast.datasets import load_dataset
from textseq.forecast.evaluation import backtest, evaluate_tail
from textseq.forecast.forecaster import load_forecaster, save_forecaster
from textseq.forecast.intervals import conformal_widths, parse_levels
from textseq.forecast.prep import chronological_split
from textseq.forecast.season import detect_season
from textseq.forecast.train import train_forecaster

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def airline():
    return load_dataset("airline")


@pytest.fixture(scope="module")
def short_auto(airline):
    """The first 72 months (6 seasons): 'no room for a window of 24 and horizon 12' before the auto defaults."""
    series = airline.head(72)
    cfg = ForecastConfig(horizon=12, train=ForecastTrainConfig(epochs=15, ensemble=2))
    return series, train_forecaster(series, cfg, quiet=True)


def test_season_is_detected_and_refused_where_the_data_has_none(airline):
    assert detect_season(airline.target_values, airline.freq).period == 12
    walk = 5 + np.cumsum(np.random.default_rng(0).normal(size=240)) * 0.1  # a monthly rate: frequency, no season
    season = detect_season(walk, "MS")
    assert season.period == 1 and "not seasonal" in season.reason
    assert detect_season(walk, "MS", given=12).period == 12  # --season wins
    assert detect_season(walk[:30], "MS").period == 1  # under 3 seasons


def test_every_part_of_a_short_series_holds_a_horizon():
    split = chronological_split(48, 0.3, 0.2, horizon=12)
    assert split.test_start == 34 and split.val_start == 22  # 30% = 14 test, validation raised to 12
    assert chronological_split(100, 0.0, 0.2, horizon=5).test_start == 100


def test_a_short_seasonal_series_trains_with_defaults_and_beats_seasonal_naive(short_auto):
    series, result = short_auto
    forecaster = result.forecaster
    assert result.season.period == 12 and forecaster.members
    assert all(name in forecaster.candidates for name in forecaster.members)
    assert {"ets", "arima", "theta"} <= set(forecaster.stats)
    report = evaluate_tail(forecaster, series)
    assert report.model == "auto" and {"auto", "seasonal_naive", "ets", "arima", "theta"} <= set(report.rows)
    assert report.rows["auto"].mase < report.rows["seasonal_naive"].mase
    assert set(report.intervals["auto"]) == {"80", "95"}
    cover = report.intervals["auto"]
    assert 0 <= cover["80"]["coverage"] <= cover["95"]["coverage"] <= 100


def test_auto_checkpoints_reproduce_and_predict_refits_for_any_horizon(tmp_path, short_auto):
    series, result = short_auto
    path = save_forecaster(tmp_path / "auto.pt", result.forecaster)
    loaded = load_forecaster(path)
    origins = np.array([60])
    assert np.array_equal(loaded.predict(series, origins), result.forecaster.predict(series, origins))
    refit = loaded.refit(series)
    assert refit.fit_end == len(series) and loaded.fit_end < len(series)
    long = refit.forecast_next(series, 30)  # beyond the trained horizon of 12
    assert long.shape == (30,) and np.isfinite(long).all()
    assert np.allclose(long[:12], refit.forecast_next(series, 12))


def test_printed_statistical_baselines_ignore_the_networks_transform(tmp_path, capsys):
    rows = {}
    for flags in ([], ["--log", "--diff", "12"]):
        out = tmp_path / f"m{len(flags)}.pt"
        argv = ["forecast", "train", "--dataset", "airline", "--horizon", "12", "--model", "network", "--epochs",
                "3", "--baselines", "ets,arima,theta", "--json", "-o", str(out), *flags]
        assert run(argv) == 0
        rows[len(flags)] = json.loads(capsys.readouterr().out)["test"]["rows"]
    for kind in ("ets", "arima", "theta"):
        assert rows[0][kind] == rows[3][kind]
    assert rows[0]["network"] != rows[3]["network"] if "network" in rows[0] else True


def test_json_output_has_every_metric_and_the_intervals(tmp_path, capsys):
    series = load_dataset("nile")
    argv = ["forecast", "train", "--dataset", "nile", "--horizon", "6", "--epochs", "10", "--ensemble", "1",
            "--level", "90", "--json", "-o", str(tmp_path / "n.pt")]
    assert run(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["points"] == len(series) and data["season"]["period"] == 1
    rows = data["test"]["rows"]
    assert {"auto", "naive", "drift", "ets", "arima", "theta"} <= set(rows)
    assert all(set(m) == {"mae", "rmse", "mape", "smape", "mase"} for m in rows.values())
    assert set(data["test"]["intervals"]["auto"]) == {"90"}
    assert run(["forecast", "evaluate", str(tmp_path / "n.pt"), "--json", "--level", "80"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test"]["rows"]["auto"] == rows["auto"] and set(again["test"]["intervals"]["auto"]) == {"80"}
    assert run(["forecast", "predict", str(tmp_path / "n.pt"), "--horizon", "9", "--json"]) == 0
    future = json.loads(capsys.readouterr().out)
    assert len(future["forecast"]) == 9 and future["steps"][0] == "1971"
    assert "refit on all 100 points" in future["fitted_on"]
    lower, upper = future["intervals"]["80"]["lower"], future["intervals"]["80"]["upper"]
    assert all(lo < f < hi for lo, f, hi in zip(lower, future["forecast"], upper, strict=True))


def test_conformal_intervals_cover_at_their_level():
    rng = np.random.default_rng(0)
    residuals = rng.normal(size=(400, 3))
    fresh = rng.normal(size=(4000, 3))
    for level in (80.0, 95.0):
        widths = conformal_widths(residuals, level)
        coverage = (np.abs(fresh) <= widths).mean() * 100
        assert abs(coverage - level) < 3
    few = conformal_widths(rng.normal(size=(5, 4)) * np.sqrt(np.arange(1, 5)), 80.0, steps=8)
    assert few.shape == (8,) and np.all(np.diff(few) > 0)  # pooled, growing with the step
    assert parse_levels("95,80") == [80.0, 95.0]
    for bad in ("0", "100", "abc", "nan"):
        with pytest.raises(TextseqError, match="--level"):
            parse_levels(bad)


def test_no_room_errors_name_the_flags_and_backtest_names_the_fold(tmp_path, capsys):
    series = load_dataset("airline").head(60)
    cfg = ForecastConfig(method="network", seq_len=40, horizon=12, choose_transform=False,
                         train=ForecastTrainConfig(epochs=2))
    with pytest.raises(TextseqError, match="--seq-len"):
        train_forecaster(series, cfg, quiet=True)
    ok = ForecastConfig(method="network", seq_len=16, horizon=6, choose_transform=False,
                        train=ForecastTrainConfig(epochs=2))
    with pytest.raises(TextseqError, match=r"backtest fold 1 of 6 \(first 24 points\)"):
        backtest(load_dataset("airline").head(60), ok, 6)


def test_plot_with_no_test_tail_shows_the_future(tmp_path, capsys):
    plot = tmp_path / "future.png"
    argv = ["forecast", "train", "--dataset", "nile", "--horizon", "5", "--test-frac", "0", "--epochs", "5",
            "--ensemble", "1", "--plot", str(plot), "-o", str(tmp_path / "f.pt")]
    assert run(argv) == 0
    assert "plot of the forecast after the data" in capsys.readouterr().out
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_business_day_dates_continue_without_pandas_warnings():
    series = SeriesData(np.zeros((3, 1)), ["y"], "y", ["y"], ["2024-01-03", "2024-01-04", "2024-01-05"], "B")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert future_labels(series, 2) == ["2024-01-08", "2024-01-09"]


def test_demo_command_refuses_unknown_names(capsys):
    assert run(["forecast", "demo", "stocks"]) == 2
    assert "choose one of stock, rates, sincos" in capsys.readouterr().err


def test_members_are_combined_by_their_median_so_a_runaway_member_cannot_drag_the_forecast():
    from textseq.forecast.auto import choose_members, combine_forecasts

    runaway = [np.full((2, 3), 1.0), np.full((2, 3), 2.0), np.full((2, 3), 1e6)]
    assert np.array_equal(combine_forecasts(runaway), np.full((2, 3), 2.0))
    assert combine_forecasts(runaway, "mean")[0, 0] > 1e5  # what checkpoints saved before the median did
    scores = {"rnn": 1.0, "mlp": 2.0, "ets": 3.0, "arima": 4.0, "theta": np.inf, "naive": 0.5}
    assert choose_members(scores) == ["rnn", "mlp", "ets"]
    assert choose_members(scores, networks=False) == ["ets", "arima"]
    assert choose_members({"rnn": 1.0, "naive": 3.0, "drift": 2.0}, networks=False) == ["drift"]


def test_on_a_short_annual_series_the_networks_are_printed_but_not_combined(tmp_path, capsys):
    argv = ["forecast", "train", "--dataset", "fertility", "--target", "JPN", "--horizon", "6", "--epochs", "10",
            "--ensemble", "1", "-o", str(tmp_path / "f.pt")]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "networks printed, not combined: the training part has 29 points" in out
    forecaster = load_forecaster(tmp_path / "f.pt")
    assert set(forecaster.networks) == {"rnn", "mlp"} and set(forecaster.members) <= {"ets", "arima", "theta"}
    series = load_dataset("fertility", "JPN")
    origins = np.array([40, 44])
    parts = forecaster.forecasts(series, origins, forecaster.members)
    assert np.allclose(forecaster.predict(series, origins), np.median(np.stack(list(parts.values())), axis=0))
    report = evaluate_tail(forecaster, series)
    assert {"rnn", "mlp", "ets"} <= set(report.rows)
