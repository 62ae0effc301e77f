"""The seeds' demos (stock, rates, sincos) in quick mode: they run, score a naive row, plot, and show their point."""

import json
import math
from pathlib import Path

import pytest

from textseq.errors import TextseqError
from textseq.forecast.demos import DEMOS, DemoResult, run_demo

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[DemoResult, Path]]:
    out = tmp_path_factory.mktemp("demos")
    return {name: (run_demo(name, plot=out / f"{name}.png", quick=True), out / f"{name}.png") for name in DEMOS}


def metrics(result: DemoResult) -> dict[str, dict[str, float]]:
    return dict(result.rows)


def test_the_three_demos_are_listed():
    assert list(DEMOS) == ["stock", "rates", "sincos"]
    assert all(isinstance(text, str) and "\n" not in text for text in DEMOS.values())


@pytest.mark.parametrize("name", list(DEMOS))
def test_each_demo_scores_finite_metrics_next_to_a_naive_row(results, name):
    result, _ = results[name]
    assert result.name == name and result.title and result.notes
    assert sum(label.startswith("naive") for label, _ in result.rows) == 1
    assert len(result.rows) >= 3
    for _, row in result.rows:
        assert {"MAE", "RMSE"} <= set(row)
        assert all(math.isfinite(value) for value in row.values())
    table = result.table().splitlines()
    assert len(table) == len(result.rows) + 1
    assert len({len(line) for line in table}) == 1


@pytest.mark.parametrize("name", list(DEMOS))
def test_each_demo_writes_a_png(results, name):
    _, plot = results[name]
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert not [p for p in plot.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", list(DEMOS))
def test_to_dict_is_json(results, name):
    result, _ = results[name]
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["name"] == name
    assert [row["label"] for row in data["rows"]] == [label for label, _ in result.rows]


def test_stock_honest_rnn_is_near_naive_and_the_leaks_are_shown(results):
    result, _ = results["stock"]
    rows = metrics(result)
    honest, naive = result.rows[0][1], rows["naive (last close)"]
    assert "scaler fit on train" in result.rows[0][0]
    assert honest["MAE"] < 2.0 * naive["MAE"]
    leaks = [label for label in rows if "leak" in label]
    assert len(leaks) == 2 and any("train+test" in label for label in leaks)
    assert any("honest number is the first row" in note for note in result.notes)


def test_rates_compares_mlp_and_both_rnn_forms(results):
    labels = [label for label, _ in results["rates"][0].rows]
    assert labels == ["MLP N-to-1", "RNN N-to-1", "RNN N-to-N (last step)", "naive (last value)"]


def test_sincos_stateful_beats_stateless(results):
    rows = metrics(results["sincos"][0])
    stateful, stateless = rows["stateful RNN (state carried)"], rows["stateless RNN (zero state per chunk)"]
    assert stateful["MAE"] < stateless["MAE"]
    assert stateful["RMSE"] < 0.5 * stateless["RMSE"]
    assert stateful["MAE step 1"] < 0.5 * stateless["MAE step 1"]
    assert stateful["RMSE"] < rows["naive (cos linear in sin)"]["RMSE"]


def test_a_demo_is_deterministic_given_the_seed(results):
    again = run_demo("rates", seed=0, quick=True)
    assert again.rows == results["rates"][0].rows


def test_an_unknown_demo_is_a_one_line_error():
    with pytest.raises(TextseqError) as err:
        run_demo("bitcoin")
    message = str(err.value)
    assert "\n" not in message and all(name in message for name in DEMOS)
