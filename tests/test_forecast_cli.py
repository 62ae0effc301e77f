"""`textseq forecast` end to end on a CSV: train -> predict -> evaluate, and its user errors."""

import numpy as np
import pytest
import torch

from textseq.cli import run


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()  # the commands set --threads (default 1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def csv_path(tmp_path):
    t = np.arange(90)
    price = 100 + 0.2 * t + 5 * np.sin(2 * np.pi * t / 7)
    dates = np.datetime64("2024-01-01") + t
    rows = [f"{dates[i]},{price[i]:.4f},{1000 + i}" for i in range(len(t))]
    lines = ["date,price,volume", *rows]
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_train_predict_evaluate_end_to_end(tmp_path, csv_path, capsys):
    model = tmp_path / "model.pt"
    train = ["forecast", "train", "--data", str(csv_path), "--target", "price", "--inputs", "price,volume",
             "--model", "gru", "--hidden-size", "8", "--seq-len", "14", "--horizon", "3", "--epochs", "4",
             "--date-column", "date", "--out", str(model), "--plot", str(tmp_path / "eval.png"), "--quiet"]
    assert run(train) == 0
    out = capsys.readouterr().out
    assert "season m=7" in out  # inferred from the daily dates
    assert "seasonal_naive" in out and "arima" in out and "mase" in out
    assert (tmp_path / "eval.png").read_bytes()[:4] == b"\x89PNG"

    assert run(train) == 2  # refuses to overwrite
    assert "already exists" in capsys.readouterr().err

    forecast_csv = tmp_path / "next.csv"
    plot = tmp_path / "p.png"
    predict = ["forecast", "predict", "-c", str(model), "--output", str(forecast_csv), "--plot", str(plot)]
    assert run(predict) == 0
    assert plot.read_bytes()[:4] == b"\x89PNG"
    rows = forecast_csv.read_text().splitlines()
    assert rows[0] == "step,price,lo80,hi80,lo95,hi95" and len(rows) == 4
    assert rows[1].startswith("2024-03-31,")  # the day after the last row
    assert all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])

    evaluate = ["forecast", "evaluate", "-c", str(model), "--data", str(csv_path), "--backtest", "2", "-q"]
    assert run([*evaluate, "--baselines", "naive,seasonal_naive,drift"]) == 0
    out = capsys.readouterr().out
    assert "rolling-origin backtest: 2 origins" in out and out.count("drift") == 2 and "arima" not in out
    assert run([*evaluate, "--baselines", "naive,prophet"]) == 2
    assert "unknown baseline(s) prophet" in capsys.readouterr().err


def test_cli_reports_bad_csv_cells_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("v\n1\n2\noops\n", encoding="utf-8")
    assert run(["forecast", "train", "--data", str(bad), "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: non-numeric value 'oops' in column 'v' at row 3") and err.count("\n") == 1
    assert not (tmp_path / "m.pt").exists()


def test_datasets_lists_builtins(capsys):
    assert run(["forecast", "datasets"]) == 0
    out = capsys.readouterr().out
    assert "airline" in out and "sunspots" in out and "tbilrate" in out


def test_train_on_everything_skips_the_test_report(tmp_path, csv_path, capsys):
    argv = ["forecast", "train", "--data", str(csv_path), "--target", "price", "--seq-len", "8", "--epochs", "2",
            "--test-frac", "0", "--out", str(tmp_path / "all.pt"), "-q"]
    assert run(argv) == 0
    assert "nothing to evaluate" in capsys.readouterr().out
    assert run(["forecast", "predict", "-c", str(tmp_path / "all.pt")]) == 0
    bad = argv[:-3] + ["--out", str(tmp_path / "x.pt"), "--baselines", "oracle"]
    assert run(bad) == 2
    assert not (tmp_path / "x.pt").exists()
