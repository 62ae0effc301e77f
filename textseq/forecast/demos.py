"""The seeds' three classic RNN experiments, rerun honestly on offline data and printed next to a naive baseline.

``stock``
    Seed 000 ("RNN--递归神经网络", hjw 2019): a window of 7 past closing prices -> the next close, chronological
    70/30 split, scikit-learn's ``StandardScaler``, ``nn.RNN`` with 50 hidden units trained by SGD with momentum
    0.9. The seed's CSV is not available; the data is Google's daily close 2004-08-19..2008-10-14, shipped with
    matplotlib as sample data (``goog.npz``). The honest pipeline fits the scaler on the training part only; two
    leaky variants are scored next to it: a scaler fitted on the whole series, and the seed's own ``load_data``,
    which fits a fresh scaler on the test part.
``rates``
    Seed 001 ("深度学习 | 基本循环神经网络", 2023): the seed's 10-year Treasury yield (FRED GS10, online only) is
    replaced by the 3-month T-bill rate of statsmodels' ``macrodata`` (quarterly 1959Q1-2009Q3). Window 6 -> next
    value with the seed's MLP (10 ReLU units) and RNN (10 units), Adam lr 0.01, batch 4, 20 epochs; the RNN in
    N-to-1 form (output at the last step) and in N-to-N form (the next value at every step, forecast = last step).
``sincos``
    Seeds 003/004 (正弦预测余弦): input sin(t), target cos(t), consecutive chunks of 10 steps spanning pi, an RNN
    with 32 units whose hidden state is carried (detached) from chunk to chunk, i.e. truncated BPTT; against the
    same RNN restarted from a zero state for every chunk, scored on a later held-out stretch.

:func:`run_demo` returns a :class:`DemoResult` (rows of metrics, notes) and optionally writes a PNG plot.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textseq.errors import TextseqError, check_choice
from textseq.forecast.config import ForecastModelConfig
from textseq.forecast.models import MLPForecaster, RNNForecaster
from textseq.forecast.prep import Scaler, make_windows
from textseq.io import atomic_path
from textseq.training import guarded_update, make_optimizer

DEMOS: dict[str, str] = {
    "stock": "GOOG daily close 2004-2008: 7-day window -> next close, RNN + SGD momentum; the scaler leak exposed",
    "rates": "US 3-month T-bill rate, quarterly 1959-2009: MLP vs RNN, N-to-1 and N-to-N, next to naive",
    "sincos": "sin(t) -> cos(t): stateful RNN (state carried across chunks, TBPTT) vs the same RNN restarted per chunk",
}

CLIP = 1.0
Forward = Callable[[nn.Module, Tensor], Tensor]
Row = tuple[str, dict[str, float]]


@dataclass
class DemoResult:
    """A demo's scores on its test stretch: model rows and a naive row, each ``(label, {"MAE": ..., ...})``."""

    name: str
    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """One aligned line per row under a header of metric names (the title and notes are printed separately)."""
        columns = list(dict.fromkeys(key for _, metrics in self.rows for key in metrics))
        lines = [["", *columns]] + [[label, *(_fmt(metrics.get(key)) for key in columns)]
                                    for label, metrics in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(columns) + 1)]
        return "\n".join(_aligned(line, widths) for line in lines)

    def to_dict(self) -> dict:
        rows = [{"label": label, "metrics": {k: _json_number(v) for k, v in metrics.items()}}
                for label, metrics in self.rows]
        return {"name": self.name, "title": self.title, "rows": rows, "notes": list(self.notes)}


def _aligned(line: list[str], widths: list[int]) -> str:
    cells = [line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
    return "  ".join(cells).rstrip()


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def run_demo(name: str, plot: str | os.PathLike | None = None, seed: int = 0, quick: bool = False) -> DemoResult:
    """Run one of :data:`DEMOS` on one CPU thread; ``quick`` trains for far fewer epochs (for tests)."""
    check_choice("demo", name, DEMOS)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _RUNNERS[name](plot, seed, quick)
    finally:
        torch.set_num_threads(threads)


def _scores(truth: np.ndarray, pred: np.ndarray, scale: float | None = None) -> dict[str, float]:
    error = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    scores = {"MAE": float(np.abs(error).mean()), "RMSE": float(np.sqrt((error**2).mean()))}
    if scale is not None:
        scores["MASE"] = scores["MAE"] / scale
    return scores


def _naive_scale(train: np.ndarray) -> float:
    """In-sample MAE of the last-value forecast on the training part (the MASE denominator)."""
    return float(np.abs(np.diff(train)).mean())


def _last_step(model: nn.Module, x: Tensor) -> Tensor:
    return model(x)


def _every_step(model: nn.Module, x: Tensor) -> Tensor:
    return model.steps(x)[0][..., 0]


def _windows(z: np.ndarray, origins: np.ndarray, seq_len: int, every_step: bool = False) -> tuple[Tensor, Tensor]:
    x, y = make_windows(z, z, seq_len, 1, every_step, origins)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def _train(model: nn.Module, x: Tensor, y: Tensor, forward: Forward, optimizer: torch.optim.Optimizer,
           epochs: int, batch_size: int, seed: int) -> nn.Module:
    """Shuffled mini-batches, MSE loss, clipped gradient."""
    generator = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            guarded_update(F.mse_loss(forward(model, x[idx]), y[idx]), optimizer, params, CLIP,
                           hint="try another seed")
    return model.eval()


def _predict(model: nn.Module, x: Tensor, forward: Forward) -> np.ndarray:
    with torch.no_grad():
        return forward(model, x).numpy().astype(np.float64)


def _rnn(hidden: int, seed: int) -> RNNForecaster:
    torch.manual_seed(seed)
    return RNNForecaster(ForecastModelConfig(arch="rnn_tanh", hidden_size=hidden), 1, 1)


def _plot(path: str | os.PathLike, x: np.ndarray, truth: np.ndarray, preds: dict[str, np.ndarray], title: str,
          xlabel: str, ylabel: str) -> None:
    """Truth and every row's predictions; the legend sits right of the axes, outside the data."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    ax.plot(x, truth, color="black", linewidth=1.8, label="truth")
    for label, pred in preds.items():
        naive = label.startswith("naive")
        ax.plot(x, pred, linewidth=0.9 if naive else 1.2, linestyle="--" if naive else "-", label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


# ---- stock: N-to-1 window regression on a real price series, with the scaler leak --------------------------

STOCK_WINDOW, STOCK_HIDDEN, STOCK_LR, STOCK_BATCH = 7, 50, 0.03, 64


def _goog_close() -> tuple[np.ndarray, np.ndarray]:
    from matplotlib import cbook

    with np.load(cbook.get_sample_data("goog.npz", asfileobj=False)) as archive:
        prices = archive["price_data"]
    return prices["date"], prices["close"].astype(np.float64)


def _standard_scaler():
    try:
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        raise TextseqError("the stock demo uses scikit-learn's StandardScaler: pip install scikit-learn") from None
    return StandardScaler()


def _fit_scaler(values: np.ndarray):
    return _standard_scaler().fit(values[:, None])


def _scaled(scaler, values: np.ndarray) -> np.ndarray:
    return scaler.transform(values[:, None])[:, 0]


def _unscaled(scaler, values: np.ndarray) -> np.ndarray:
    return scaler.inverse_transform(values.reshape(-1, 1))[:, 0]


def _stock_model(z: np.ndarray, origins: np.ndarray, epochs: int, seed: int) -> RNNForecaster:
    x, y = _windows(z, origins, STOCK_WINDOW)
    model = _rnn(STOCK_HIDDEN, seed)
    optimizer = make_optimizer("sgd", model.parameters(), lr=STOCK_LR, momentum=0.9)
    return _train(model, x, y, _last_step, optimizer, epochs, STOCK_BATCH, seed)


def _stock_forecast(model: RNNForecaster, scaler, close: np.ndarray, origins: np.ndarray) -> np.ndarray:
    x, _ = _windows(_scaled(scaler, close), origins, STOCK_WINDOW)
    return _unscaled(scaler, _predict(model, x, _last_step)[:, 0])


def _stock(plot: str | os.PathLike | None, seed: int, quick: bool) -> DemoResult:
    dates, close = _goog_close()
    split = int(len(close) * 0.7)
    train_origins = np.arange(STOCK_WINDOW, split)
    test_origins = np.arange(split + STOCK_WINDOW, len(close))
    epochs = 10 if quick else 100
    honest_scaler, whole_scaler, test_scaler = (_fit_scaler(close[:split]), _fit_scaler(close),
                                                _fit_scaler(close[split:]))
    honest = _stock_model(_scaled(honest_scaler, close), train_origins, epochs, seed)
    leaky = _stock_model(_scaled(whole_scaler, close), train_origins, epochs, seed)
    preds = {
        "RNN (scaler fit on train)": _stock_forecast(honest, honest_scaler, close, test_origins),
        "RNN, leak: scaler fit on train+test": _stock_forecast(leaky, whole_scaler, close, test_origins),
        "RNN, leak: test scaled on its own (seed)": _stock_forecast(honest, test_scaler, close, test_origins),
        "naive (last close)": close[test_origins - 1],
    }
    truth, scale = close[test_origins], _naive_scale(close[:split])
    rows = [(label, _scores(truth, pred, scale)) for label, pred in preds.items()]
    period = f"{dates[0]}..{dates[-1]}"
    title = (f"GOOG daily close {period} (matplotlib sample data): {STOCK_WINDOW} closes -> next close, "
             f"test from {dates[split + STOCK_WINDOW]} ({len(test_origins)} days), USD")
    if plot is not None:
        _plot(plot, dates[test_origins], truth, preds, title, "date", "close (USD)")
    return DemoResult("stock", title, rows, _stock_notes(close, split, dates, rows))


def _stock_notes(close: np.ndarray, split: int, dates: np.ndarray, rows: list[Row]) -> list[str]:
    honest, naive = rows[0][1]["MAE"], rows[-1][1]["MAE"]
    verdict = "beats" if honest < naive else "trails"
    return [
        f"The honest number is the first row: its scaler saw only the training part ({dates[0]}..{dates[split - 1]}), "
        "as it would at forecast time; every row forecasts the same test days one day ahead.",
        "The second row fits the scaler on train+test, so the test period's mean and spread leak into the inputs "
        "the network is trained on. The third row is what the seed's load_data(isTraining=False) does: it fits a "
        "fresh scaler on the test part itself, so each test window is expressed, and each prediction mapped back, "
        "with the test period's own mean and standard deviation - future information no forecaster has.",
        f"The test prices reach {close[split:].max():.0f} USD while the training part tops out at "
        f"{close[:split].max():.0f}: a tanh RNN on standardized levels saturates outside the range it was trained "
        f"on. The honest RNN {verdict} the naive last close (MAE {honest:.2f} vs {naive:.2f}); the seed also put a "
        "tanh on the output, which caps predictions at one training standard deviation (here the head is linear).",
    ]


# ---- rates: MLP vs RNN, N-to-1 and N-to-N, on the 3-month T-bill rate -------------------------------------

RATES_WINDOW, RATES_HIDDEN, RATES_LR, RATES_BATCH = 6, 10, 0.01, 4


def _tbill() -> tuple[np.ndarray, np.ndarray]:
    """Dates as fractional years (1959.0 = 1959Q1) and the rate in percent."""
    from statsmodels.datasets import macrodata

    frame = macrodata.load_pandas().data
    years = frame["year"].to_numpy(dtype=np.float64) + (frame["quarter"].to_numpy(dtype=np.float64) - 1) / 4
    return years, frame["tbilrate"].to_numpy(dtype=np.float64)


def _quarter(year: float) -> str:
    return f"{int(year)}Q{round((year % 1) * 4) + 1}"


def _rates_model(kind: str, z: np.ndarray, origins: np.ndarray, epochs: int, seed: int) -> tuple[nn.Module, Forward]:
    every_step = kind == "n-to-n"
    x, y = _windows(z, origins, RATES_WINDOW, every_step)
    if kind == "mlp":
        torch.manual_seed(seed)
        model: nn.Module = MLPForecaster(ForecastModelConfig(arch="mlp", hidden_size=RATES_HIDDEN), 1, 1, RATES_WINDOW)
    else:
        model = _rnn(RATES_HIDDEN, seed)
    forward = _every_step if every_step else _last_step
    optimizer = make_optimizer("adam", model.parameters(), lr=RATES_LR)
    return _train(model, x, y, forward, optimizer, epochs, RATES_BATCH, seed), forward


def _rates(plot: str | os.PathLike | None, seed: int, quick: bool) -> DemoResult:
    years, rate = _tbill()
    split = len(rate) - round(0.3 * len(rate))
    scaler = Scaler().fit(rate[:split])
    z = scaler.transform(rate[:, None])[:, 0]
    train_origins, test_origins = np.arange(RATES_WINDOW, split), np.arange(split, len(rate))
    x_test, _ = _windows(z, test_origins, RATES_WINDOW)
    epochs = 5 if quick else 20
    preds: dict[str, np.ndarray] = {}
    for label, kind in [("MLP N-to-1", "mlp"), ("RNN N-to-1", "n-to-1"), ("RNN N-to-N (last step)", "n-to-n")]:
        model, forward = _rates_model(kind, z, train_origins, epochs, seed)
        preds[label] = scaler.inverse(_predict(model, x_test, forward)[:, -1, None])[:, 0]
    preds["naive (last value)"] = rate[test_origins - 1]
    truth, scale = rate[test_origins], _naive_scale(rate[:split])
    rows = [(label, _scores(truth, pred, scale)) for label, pred in preds.items()]
    title = (f"US 3-month T-bill rate, quarterly {_quarter(years[0])}-{_quarter(years[-1])} (statsmodels macrodata): "
             f"{RATES_WINDOW} quarters -> next, test {_quarter(years[split])}-{_quarter(years[-1])}, percent")
    if plot is not None:
        _plot(plot, years[test_origins], truth, preds, title, "year", "rate (%)")
    return DemoResult("rates", title, rows, _rates_notes(years, rate, split, rows))


def _rates_notes(years: np.ndarray, rate: np.ndarray, split: int, rows: list[Row]) -> list[str]:
    best = min(rows, key=lambda row: row[1]["MAE"])[0]
    low = split + int(np.argmin(rate[split:]))
    return [
        "The seed's series is the 10-year Treasury yield (FRED GS10), which needs the internet; this is the 3-month "
        "T-bill rate, a different (shorter-maturity, quarterly) US rate that ships with statsmodels.",
        f"Every row forecasts the same {len(rate) - split} test quarters one step ahead; the scaler is fit on the "
        "training part. The N-to-N RNN is trained on the next value at every step of each window and forecasts "
        "with the output at the last step; the N-to-1 models are trained on the value after the window only.",
        "The seed scored its models on the training loader (its 'validation loss'); on the held-out tail, rates move "
        f"little from one quarter to the next and the naive forecast is hard to beat. Lowest MAE here: {best}.",
        f"The test stretch falls to {rate[low]:.2f}% ({_quarter(years[low])}), below anything in the training part "
        f"(min {rate[:split].min():.2f}%): the networks must extrapolate there, the naive forecast need not.",
    ]


# ---- sincos: stateful sin -> cos mapping, hidden state carried across chunks ------------------------------

SINCOS_CHUNK, SINCOS_HIDDEN, SINCOS_LR = 10, 32, 0.01
SINCOS_TRAIN_CHUNKS, SINCOS_TEST_CHUNKS = 300, 100


def _stream(values: np.ndarray) -> Tensor:
    return torch.tensor(values, dtype=torch.float32)[None, :, None]


def _sincos_data() -> tuple[np.ndarray, Tensor, Tensor]:
    """One long stream ``[1, T, 1]`` sampled 10 times per pi."""
    t = np.arange((SINCOS_TRAIN_CHUNKS + SINCOS_TEST_CHUNKS) * SINCOS_CHUNK) * (np.pi / SINCOS_CHUNK)
    return t, _stream(np.sin(t)), _stream(np.cos(t))


def _train_chunks(x: Tensor, y: Tensor, stateful: bool, passes: int, seed: int) -> RNNForecaster:
    """One update per consecutive chunk; ``stateful`` starts each chunk from the previous one's final state,
    detached so the gradient stops at the chunk boundary (truncated BPTT)."""
    model = _rnn(SINCOS_HIDDEN, seed)
    optimizer = make_optimizer("adam", model.parameters(), lr=SINCOS_LR)
    params = list(model.parameters())
    for _ in range(passes):
        hidden = None
        for start in range(0, x.shape[1], SINCOS_CHUNK):
            optimizer.zero_grad()
            out, last = model.steps(x[:, start:start + SINCOS_CHUNK], hidden if stateful else None)
            guarded_update(F.mse_loss(out, y[:, start:start + SINCOS_CHUNK]), optimizer, params, CLIP,
                           hint="try another seed")
            hidden = last.detach()
    return model.eval()


def _sincos(plot: str | os.PathLike | None, seed: int, quick: bool) -> DemoResult:
    t, x, y = _sincos_data()
    split = SINCOS_TRAIN_CHUNKS * SINCOS_CHUNK
    passes = 1 if quick else 3
    stateful = _train_chunks(x[:, :split], y[:, :split], True, passes, seed)
    stateless = _train_chunks(x[:, :split], y[:, :split], False, passes, seed)
    with torch.no_grad():
        carried = stateful.steps(x)[0][0, split:, 0].numpy()
        restarted = stateless.steps(x[0, split:].reshape(-1, SINCOS_CHUNK, 1))[0].reshape(-1).numpy()
    sin_train, cos_train = x[0, :split, 0].numpy(), y[0, :split, 0].numpy()
    slope, intercept = np.polyfit(sin_train, cos_train, 1)
    preds = {
        "stateful RNN (state carried)": carried,
        "stateless RNN (zero state per chunk)": restarted,
        "naive (cos linear in sin)": slope * x[0, split:, 0].numpy() + intercept,
    }
    truth = y[0, split:, 0].numpy()
    first = np.arange(0, len(truth), SINCOS_CHUNK)
    rows = [(label, {**_scores(truth, pred), "MAE step 1": float(np.abs(pred[first] - truth[first]).mean())})
            for label, pred in preds.items()]
    title = (f"sin(t) -> cos(t), chunks of {SINCOS_CHUNK} steps spanning pi; trained on {SINCOS_TRAIN_CHUNKS} chunks, "
             f"scored on the next {SINCOS_TEST_CHUNKS}")
    if plot is not None:
        shown = slice(0, 8 * SINCOS_CHUNK)
        _plot(plot, t[split:][shown], truth[shown], {k: v[shown] for k, v in preds.items()},
              title + " (first 8 test chunks shown)", "t (radians)", "cos(t)")
    return DemoResult("sincos", title, rows, _sincos_notes(passes))


def _sincos_notes(passes: int) -> list[str]:
    return [
        "sin(t) alone does not determine cos(t): each sin value occurs once with cos > 0 (sin rising) and once with "
        "cos < 0 (falling), so the naive row, the best straight line in sin, is nearly the constant 0.",
        "Every chunk starts at a multiple of pi, where sin = 0 and cos = +1 or -1. The stateless RNN restarts from a "
        "zero state and can only guess there (an error near 1 at one step in ten: 'MAE step 1'); a few steps in, "
        "the rise or fall of sin inside the chunk gives the sign away.",
        "The stateful RNN starts each chunk from the previous chunk's final hidden state, detached (truncated BPTT "
        f"over {SINCOS_CHUNK} steps), so it knows the sign from the first step; it is scored after running "
        f"through the training stretch with its state carried. Training: {passes} pass(es) over the chunks in "
        f"order, one Adam update (lr {SINCOS_LR}) per chunk.",
    ]


_RUNNERS: dict[str, Callable[[str | os.PathLike | None, int, bool], DemoResult]] = {
    "stock": _stock,
    "rates": _rates,
    "sincos": _sincos,
}
