"""Forecaster training: sin -> cos (stateful), multi-step modes, no look-ahead, exact checkpoints."""

import numpy as np
import pytest

from textseq.errors import TextseqError
from textseq.forecast.config import ForecastConfig, ForecastModelConfig, ForecastTrainConfig, TransformConfig
from textseq.forecast.data import SeriesData
from textseq.forecast.datasets import load_dataset
from textseq.forecast.evaluation import evaluate_tail
from textseq.forecast.forecaster import load_forecaster, save_forecaster
from textseq.forecast.train import train_forecaster

pytestmark = pytest.mark.usefixtures("one_thread")
NET = {"method": "network", "choose_transform": False}  # one network, the transform as given


def sine(n=160, period=16.0):
    t = np.arange(n)
    values = 10 + np.sin(2 * np.pi * t / period) + 0.01 * t
    return SeriesData(values[:, None], ["y"], "y", ["y"], name="sine")


def config(arch="gru", mode="direct", horizon=4, epochs=3, **train):
    return ForecastConfig(**NET, seq_len=16, horizon=horizon, model=ForecastModelConfig(arch=arch, hidden_size=8),
                          train=ForecastTrainConfig(mode=mode, epochs=epochs, **train))


def test_sin_to_cos_is_learned_with_a_stateful_rnn():
    # the seeds' demo: sin in, cos out, hidden state carried (and detached) across consecutive chunks
    steps = np.linspace(0, 60 * np.pi, 600)
    series = SeriesData(np.stack([np.sin(steps), np.cos(steps)], 1), ["sin", "cos"], "cos", ["sin"])
    cfg = ForecastConfig(**NET, seq_len=10, horizon=1, transform=TransformConfig(scale="none"),
                         model=ForecastModelConfig(arch="lstm", hidden_size=16),
                         train=ForecastTrainConfig(mode="teacher", stateful=True, epochs=40, lr=0.02, batch_size=8))
    report = evaluate_tail(train_forecaster(series, cfg, quiet=True).forecaster, series, baselines=("naive",))
    assert report.rows["lstm"].rmse < 0.1
    assert report.rows["lstm"].rmse < 0.5 * report.rows["naive"].rmse


@pytest.mark.parametrize("arch", ["mlp", "gru"])
@pytest.mark.parametrize("mode", ["direct", "teacher", "free"])
def test_every_mode_forecasts_the_whole_horizon(arch, mode):
    series = sine()
    forecaster = train_forecaster(series, config(arch, mode, horizon=5), quiet=True).forecaster
    head = forecaster.models[0].net[-1] if arch == "mlp" else forecaster.models[0].head
    assert head.out_features == (5 if mode == "direct" else 1)  # recursive modes output one step
    forecast = forecaster.predict(series, [100, 120, 160])
    assert forecast.shape == (3, 5) and np.isfinite(forecast).all()


@pytest.mark.parametrize("arch", ["mlp", "gru"])
@pytest.mark.parametrize("mode", ["teacher", "free"])
def test_one_step_recursive_modes_accept_several_inputs(arch, mode):
    two = SeriesData(np.random.default_rng(0).normal(size=(120, 2)), ["a", "b"], "a", ["a", "b"])
    cfg = ForecastConfig(**NET, seq_len=8, horizon=1, model=ForecastModelConfig(arch=arch, hidden_size=4),
                         train=ForecastTrainConfig(mode=mode, epochs=1))
    assert train_forecaster(two, cfg, quiet=True).forecaster.predict(two, [100, 120]).shape == (2, 1)


def test_forecasts_never_look_past_the_origin():
    series = sine()
    forecaster = train_forecaster(series, config(mode="teacher", stateful=True, epochs=2), quiet=True).forecaster
    changed = SeriesData(series.values.copy(), ["y"], "y", ["y"])
    changed.values[120:] += 100
    origins = [60, 100, 120]
    assert np.array_equal(forecaster.predict(series, origins), forecaster.predict(changed, origins))


def test_training_is_deterministic_and_checkpoints_reproduce_predictions(tmp_path):
    series = sine()
    cfg = config("lstm", "direct", epochs=3, ensemble=2)
    cfg.transform = TransformConfig("minmax", log=True, diff=1)
    first = train_forecaster(series, cfg, source={"dataset": "none"}, quiet=True).forecaster
    again = train_forecaster(series, cfg, quiet=True).forecaster
    origins = np.arange(100, 157)
    expected = first.predict(series, origins)
    assert np.array_equal(expected, again.predict(series, origins))
    path = save_forecaster(tmp_path / "f.pt", first)
    loaded = load_forecaster(path)
    assert np.array_equal(loaded.predict(series, origins), expected)
    assert loaded.spec.source == {"dataset": "none"} and len(loaded.models) == 2


def test_bidirectional_encoder_only_in_direct_mode():
    series = sine()
    cfg = config("gru", "direct", epochs=1)
    cfg.model.bidirectional = True
    assert train_forecaster(series, cfg, quiet=True).forecaster.predict(series, [150]).shape == (1, 4)
    cfg.train.mode = "teacher"
    with pytest.raises(TextseqError, match="bidirectional"):
        train_forecaster(series, cfg, quiet=True)


def test_invalid_setups_are_clear_errors():
    two = SeriesData(np.random.default_rng(0).normal(size=(80, 2)), ["a", "b"], "a", ["a", "b"])
    with pytest.raises(TextseqError, match="only input"):
        train_forecaster(two, config(mode="free"), quiet=True)
    with pytest.raises(TextseqError, match="shorter than window 16 \\+ horizon 4"):
        train_forecaster(sine(n=19), config(), quiet=True)
    with pytest.raises(TextseqError, match="stateful"):
        train_forecaster(sine(), config(mode="direct", stateful=True), quiet=True)
    negative_season = config()
    negative_season.season = -3  # seasonal naive would read y[o + 3], past the origin
    with pytest.raises(TextseqError, match="--season"):
        train_forecaster(sine(), negative_season, quiet=True)
    with pytest.raises(TextseqError, match="--lr"):
        train_forecaster(sine(), config(lr=-1.0), quiet=True)


def test_lstm_on_airline_beats_naive_on_the_validation_tail():
    series = load_dataset("airline")
    cfg = ForecastConfig(**NET, seq_len=24, horizon=12, transform=TransformConfig(log=True, diff=12),
                         model=ForecastModelConfig(arch="lstm", hidden_size=16), train=ForecastTrainConfig(epochs=25))
    result = train_forecaster(series, cfg, quiet=True)
    split = result.split
    origins = np.arange(split.val_start, split.test_start - 11)
    truth = np.stack([series.target_values[o:o + 12] for o in origins])
    naive_mae = np.abs(series.target_values[origins - 1][:, None] - truth).mean()
    assert result.best_val_mae[0] < naive_mae


@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_other_losses_train_and_early_stopping_stops(loss):
    noise = np.random.default_rng(1).normal(size=(200, 1))
    series = SeriesData(noise, ["y"], "y", ["y"])
    result = train_forecaster(series, config("gru", epochs=200, loss=loss, patience=3, lr=0.01), quiet=True)
    assert result.epochs_run[0] < 200  # nothing to learn in noise: validation stops improving
    assert np.isfinite(result.best_val_mae[0])
