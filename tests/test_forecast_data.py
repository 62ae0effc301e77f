"""Forecast data: CSV parsing and its errors, built-in datasets, windows, splits, leak-free scaling."""

import numpy as np
import pytest

from textseq.errors import TextseqError
from textseq.forecast.config import TransformConfig
from textseq.forecast.data import load_csv, season_from_freq
from textseq.forecast.datasets import load_dataset
from textseq.forecast.prep import Scaler, SeriesTransform, chronological_split, make_windows, origins_between


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_n_to_1_windows_hold_the_values_after_each_window():
    series = np.arange(10.0)
    x, y = make_windows(series, series, seq_len=3, horizon=2)
    assert x.shape == (6, 3, 1) and y.shape == (6, 2)  # origins 3..8
    assert x[0, :, 0].tolist() == [0, 1, 2] and y[0].tolist() == [3, 4]
    assert x[-1, :, 0].tolist() == [5, 6, 7] and y[-1].tolist() == [8, 9]


def test_n_to_n_windows_target_the_next_value_at_every_step():
    inputs = np.stack([np.arange(8.0), -np.arange(8.0)], axis=1)
    target = np.arange(8.0) * 10
    x, y = make_windows(inputs, target, seq_len=4, every_step=True)
    assert x.shape == (4, 4, 2) and y.shape == (4, 4)  # origins 4..7
    assert x[0, :, 1].tolist() == [0, -1, -2, -3]
    assert y[0].tolist() == [10, 20, 30, 40]  # input row t -> target row t + 1


def test_windows_too_short_is_a_clear_error():
    with pytest.raises(TextseqError, match="too short"):
        make_windows(np.arange(5.0), np.arange(5.0), seq_len=4, horizon=2)


def test_origins_respect_the_first_usable_row_and_the_end():
    assert origins_between(2, 12, seq_len=3, horizon=2).tolist() == list(range(5, 11))


def test_split_is_chronological_70_30_with_validation_from_the_end_of_train():
    split = chronological_split(100)
    assert (split.val_start, split.test_start) == (56, 70)


def test_scaler_round_trip_and_constant_column():
    values = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    for kind in ("standard", "minmax", "none"):
        scaler = Scaler(kind).fit(values)
        assert np.allclose(scaler.inverse(scaler.transform(values)), values)
        assert np.isfinite(scaler.transform(values)).all()
    assert Scaler("minmax").fit(values).transform(values)[:, 0].tolist() == [0.0, 0.5, 1.0]


def test_scaler_is_fit_on_the_training_part_only():
    rng = np.random.default_rng(0)
    series = rng.normal(size=100).cumsum() + 50
    changed = series.copy()
    changed[70:] *= 100  # a wildly different test part
    params = []
    for y in (series, changed):
        transform = SeriesTransform(TransformConfig("standard", log=True, diff=1), [True]).fit(y[:, None], y, 56)
        params.append(transform.to_dict())
    assert params[0] == params[1]


def test_decode_inverts_log_and_seasonal_differencing_exactly():
    t = np.arange(60)
    y = np.exp(0.01 * t) * (10 + np.sin(2 * np.pi * t / 12))
    transform = SeriesTransform(TransformConfig("standard", log=True, diff=12), [True]).fit(y[:, None], y, 40)
    _, z = transform.encode(y[:, None], y)
    origins = np.array([20, 33, 45])
    horizon = 15  # longer than the lag: later steps undo differences of earlier forecasts
    z_future = np.stack([z[o:o + horizon] for o in origins])
    truth = np.stack([y[o:o + horizon] for o in origins])
    assert np.allclose(transform.decode(z_future, y, origins), truth)


def test_log_rejects_non_positive_values():
    y = np.array([1.0, 2.0, 0.0, 3.0])
    with pytest.raises(TextseqError, match="row 3"):
        SeriesTransform(TransformConfig(log=True), [True]).fit(y[:, None], y, 4)


def test_csv_with_date_and_several_columns(tmp_path):
    path = write(tmp_path, "date,price,volume\n2020-01-01,1.5,10\n2020-02-01,2.5,11\n2020-03-01,3.5,12\n")
    series = load_csv(path, target="price", inputs=["price", "volume"], date_column="date")
    assert series.input_values.shape == (3, 2) and series.target_values.tolist() == [1.5, 2.5, 3.5]
    assert series.freq == "MS" and season_from_freq(series.freq) == 12
    assert load_csv(path, target="volume").inputs == ["volume"]


def test_csv_text_in_numeric_column_names_row_and_column(tmp_path):
    path = write(tmp_path, "price,volume\n1,2\n3,abc\n")
    with pytest.raises(TextseqError, match=r"'abc' in column 'volume' at row 2 \(line 3\)"):
        load_csv(path, target="price", inputs=["price", "volume"])


@pytest.mark.parametrize("cell", ["inf", "-Infinity"])
def test_csv_infinite_values_are_errors(tmp_path, cell):
    path = write(tmp_path, f"v\n1\n{cell}\n3\n")
    with pytest.raises(TextseqError, match="infinite value .* row 2"):
        load_csv(path)


def test_csv_missing_values_error_or_fill_policy(tmp_path):
    path = write(tmp_path, "v\n1\n\n5\nNaN\n9\n\n")  # a blank line is a missing row, trailing ones are not
    with pytest.raises(TextseqError, match="missing value in column 'v' at row 2.*--fill"):
        load_csv(path)
    assert load_csv(path, fill="ffill").target_values.tolist() == [1, 1, 5, 5, 9]
    assert load_csv(path, fill="interpolate").target_values.tolist() == [1, 3, 5, 7, 9]
    assert load_csv(path, fill="drop").target_values.tolist() == [1, 5, 9]


def test_csv_structural_errors(tmp_path):
    with pytest.raises(TextseqError, match="does not exist"):
        load_csv(tmp_path / "nope.csv")
    with pytest.raises(TextseqError, match="empty"):
        load_csv(write(tmp_path, ""))
    with pytest.raises(TextseqError, match="no column 'x'.*available: a, b"):
        load_csv(write(tmp_path, "a,b\n1,2\n"), target="x")
    with pytest.raises(TextseqError, match="--target"):
        load_csv(write(tmp_path, "a,b\n1,2\n"))
    with pytest.raises(TextseqError, match="not strictly increasing at row 3"):
        load_csv(write(tmp_path, "d,v\n2020-01-01,1\n2020-03-01,2\n2020-02-01,3\n"), target="v", date_column="d")


def test_builtin_airline_loads_offline():
    series = load_dataset("airline")
    assert len(series) == 144 and season_from_freq(series.freq) == 12
    assert series.target_values[:3].tolist() == [112, 118, 132]


def test_builtin_multicolumn_dataset_and_unknown_name():
    series = load_dataset("macrodata", inputs=["tbilrate", "infl"])
    assert series.target == "tbilrate" and series.input_values.shape == (203, 2)
    assert season_from_freq(series.freq) == 4
    with pytest.raises(TextseqError, match="unknown dataset"):
        load_dataset("nope")


def test_builtin_fertility_has_one_complete_annual_column_per_country():
    series = load_dataset("fertility")
    assert series.target == "USA" and len(series) == 52 and series.dates[0] == "1960" and series.dates[-1] == "2011"
    assert season_from_freq(series.freq) == 1 and {"JPN", "NGA", "FRA"} <= set(series.columns)
    assert np.isfinite(series.values).all()  # countries with gaps are left out, not filled
    assert 1.0 < load_dataset("fertility", "JPN").target_values.min() < 2.0
