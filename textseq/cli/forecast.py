"""`textseq forecast`: train / predict / evaluate numeric series forecasters; list built-in datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from textseq.cli.options import DATA as DATA_PANEL
from textseq.cli.options import (
    FORCE,
    MODEL,
    OUTPUT,
    QUIET,
    TRAINING,
    Command,
    alias,
    either,
    opt,
    set_threads,
    usage_error,
)
from textseq.errors import TextseqError
from textseq.forecast.config import ForecastConfig, ForecastModelConfig, ForecastTrainConfig, TransformConfig
from textseq.settings import default_of, merge

forecast_app = typer.Typer(help="Forecast numeric series (CSV or built-in datasets) with MLP / RNN / LSTM / GRU.",
                           no_args_is_help=True)

DATA = typer.Option(None, "--data", help="CSV file with the series (one row per time step).",
                    rich_help_panel=DATA_PANEL)
DATASET = typer.Option(None, "--dataset", help="Built-in dataset name (see `textseq forecast datasets`).",
                       rich_help_panel=DATA_PANEL)
TARGET = typer.Option(None, "--target", help="Column to forecast.",
                      rich_help_panel=DATA_PANEL)
INPUTS = typer.Option(None, "--inputs", help="Comma-separated input columns. \\[default: the target alone]",
                      rich_help_panel=DATA_PANEL)
DATE_COLUMN = typer.Option(None, "--date-column", help="Optional date column (for frequency and plots).",
                           rich_help_panel=DATA_PANEL)
FILL = typer.Option("none", "--fill", help="Missing values: none (error naming the cell) | ffill | interpolate | drop.",
                    rich_help_panel=DATA_PANEL)
ENCODING = typer.Option("utf-8", "--encoding", help="CSV text encoding.",
                        rich_help_panel=DATA_PANEL)
THREADS = typer.Option(0, "--threads", help="CPU threads for torch (0: automatic, 1 for these small nets).",
                       rich_help_panel=TRAINING)
BASELINES = typer.Option("naive,seasonal_naive,drift,ets,arima,theta", "--baselines",
                         help="Baselines printed next to the model (ets / arima are the slow ones).",
                         rich_help_panel=OUTPUT)


def _split_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _source(data: Path | None, dataset: str | None, date_column: str | None, fill: str, encoding: str,
            fallback: dict | None = None) -> dict:
    """The data to load (see ``load_source``, which also refuses an empty one)."""
    if data and dataset:
        raise TextseqError("give either --data or --dataset, not both")
    if dataset:
        return {"dataset": dataset}
    if data:
        return {"csv": str(Path(data).resolve()), "date_column": date_column, "fill": fill, "encoding": encoding}
    return fallback or {}


def _check_outputs(force: bool, *paths: Path | None) -> None:
    """Refuse existing outputs before any work is done."""
    from textseq.io import check_output

    for path in paths:
        if path:
            check_output(path, force)


def _checkpoint(checkpoint: Path | None, old: Path | None) -> Path:
    checkpoint = either(checkpoint, old, "CHECKPOINT", "--checkpoint")
    if checkpoint is None:
        raise usage_error("Missing argument 'CHECKPOINT'.")
    return checkpoint


def _model_and_series(checkpoint: Path, data: Path | None, dataset: str | None, date_column: str | None,
                      fill: str, encoding: str, threads: int):
    """Load a checkpoint and its series: the given data, or by default the data it was trained on."""
    from textseq.forecast.datasets import load_source
    from textseq.forecast.forecaster import load_forecaster

    set_threads(threads, auto=1)
    forecaster = load_forecaster(checkpoint)
    spec = forecaster.spec
    source = _source(data, dataset, date_column or spec.source.get("date_column"), fill, encoding, spec.source)
    return forecaster, load_source(source, spec.target, spec.inputs)


@forecast_app.command("datasets", cls=Command)
def datasets_command() -> None:
    """List the built-in real series (loaded offline from the statsmodels / sktime wheels)."""
    from textseq.forecast.datasets import list_datasets

    for info in list_datasets():
        typer.echo(f"{info.name:12s} {info.description} [{info.source}]")


def _f(name: str):
    return default_of(ForecastConfig, name)


def _m(name: str):
    return default_of(ForecastModelConfig, name)


def _t(name: str):
    return default_of(ForecastTrainConfig, name)


LEVELS = typer.Option("80,95", "--level", help="Prediction interval levels in percent ('' for none).",
                      rich_help_panel=OUTPUT)
JSON = typer.Option(False, "--json", help="Print one JSON object instead of the tables.", rich_help_panel=OUTPUT)
MODEL_CHOICES = "auto | network | lstm | gru | rnn_tanh | rnn_relu | mlp"


def _method_and_arch(model: str | None, cell: str | None) -> tuple[str | None, str | None]:
    """``--model auto`` (networks + statistical models) or ``network`` (one network of ``--cell``); a cell name
    as ``--model`` (its meaning before 0.3) is ``--model network --cell NAME``."""
    from textseq.forecast.config import ARCHS, METHODS

    if model is None or model in METHODS:
        return model, cell
    if model not in ARCHS:
        raise TextseqError(f"unknown --model {model!r}; choose {MODEL_CHOICES}")
    return "network", either(cell, model, "--cell", "--model")


@forecast_app.command("train", cls=Command)
def train_command(
    data: Path | None = DATA, dataset: str | None = DATASET, target: str | None = TARGET,
    inputs: str | None = INPUTS, date_column: str | None = DATE_COLUMN, fill: str = FILL, encoding: str = ENCODING,
    seq_len: int = opt("--seq-len", help="Input window length (0: two seasons / two horizons, fitted to the data).",
                       default="automatic", panel=DATA_PANEL),
    days: int = alias("--days"),
    horizon: int = opt("--horizon", help="Steps to forecast.", default=_f("horizon"), panel=DATA_PANEL),
    test_frac: float = opt("--test-frac", help="Held-out tail fraction.", default=_f("test_frac"), panel=DATA_PANEL),
    val_frac: float = opt("--val-frac", help="Validation fraction of the training part.", default=_f("val_frac"),
                          panel=DATA_PANEL),
    season: int = opt("--season", help="Season length m.", default="from the frequency, if the data shows it",
                      panel=DATA_PANEL),
    scale: str = opt("--scale", help="standard | minmax | none (fit on the training part).",
                     default=default_of(TransformConfig, "scale"), panel=DATA_PANEL),
    log: bool = typer.Option(False, "--log", help="Networks model log(y) (fixes the transform: no search).",
                             rich_help_panel=DATA_PANEL),
    diff: int = opt("--diff", help="Networks model differences at this lag: 1, or the season (fixes the transform).",
                    default="chosen on validation", panel=DATA_PANEL),
    model: str = opt("--model", help=f"{MODEL_CHOICES}: auto chooses / combines the network, the MLP, ETS, ARIMA, "
                     "theta and the naive forecasts on validation.", default=_f("method"), panel=MODEL),
    cell: str = opt("--cell", help="The recurrent cell: lstm | gru | rnn_tanh | rnn_relu (or mlp).",
                    default=_m("arch"), panel=MODEL),
    hidden: int = opt("--hidden", help="Hidden units per layer.", default=_m("hidden_size"), panel=MODEL),
    hidden_size: int = alias("--hidden-size"),
    layers: int = opt("--layers", help="Recurrent layers.", default=_m("num_layers"), panel=MODEL),
    dropout: float = opt("--dropout", help="Dropout probability.", default=_m("dropout"), panel=MODEL),
    bidirectional: bool = typer.Option(False, "--bidirectional", help="Bidirectional encoder (--mode direct).",
                                       rich_help_panel=MODEL),
    impl: str = opt("--impl", help="torch | scratch (from-scratch cells).", default=_m("impl"), panel=MODEL),
    mode: str = opt("--mode", help="direct | teacher-forcing (then recursive) | free-running.", default=_t("mode"),
                    panel=TRAINING),
    stateful: bool = typer.Option(False, "--stateful", help="Carry the hidden state across consecutive chunks.",
                                  rich_help_panel=TRAINING),
    loss: str = opt("--loss", help="mse | mae | huber.", default=_t("loss"), panel=TRAINING),
    optimizer: str = opt("--optimizer", help="sgd | adam | adamw.", default=_t("optimizer"), panel=TRAINING),
    epochs: int = opt("--epochs", help="Passes over the training windows.", default=_t("epochs"), panel=TRAINING),
    batch_size: int = opt("--batch-size", help="Windows per update.", default=_t("batch_size"), panel=TRAINING),
    lr: float = opt("--lr", help="Learning rate.", default=_t("lr"), panel=TRAINING),
    momentum: float = opt("--momentum", help="SGD momentum.", default=_t("momentum"), panel=TRAINING),
    weight_decay: float = opt("--weight-decay", help="Weight decay.", default=_t("weight_decay"), panel=TRAINING),
    clip: float = opt("--clip", help="Max gradient norm (0: off).", default=_t("clip"), panel=TRAINING),
    patience: int = opt("--patience", help="Stop after N epochs without validation gain (0: off).",
                        default=_t("patience"), panel=TRAINING),
    seed: int = opt("--seed", help="Random seed.", default=_t("seed"), panel=TRAINING),
    ensemble: int = opt("--ensemble", help="Average this many networks (seeds seed, seed+1, ...).",
                        default=_t("ensemble"), panel=TRAINING),
    threads: int = THREADS,
    output: Path = opt("-o", "--output", help="Checkpoint to write.", panel=OUTPUT),
    out: Path = alias("--out"),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the test-tail forecasts (with --test-frac "
                                     "0: of the forecast after the data).", rich_help_panel=OUTPUT),
    baselines: str = BASELINES,
    level: str = LEVELS,
    json_output: bool = JSON,
    force: bool = FORCE,
    quiet: bool = QUIET,
) -> None:
    """Train a forecaster; prints the test-tail metrics next to the baselines."""
    from textseq.forecast.datasets import load_source
    from textseq.forecast.forecaster import save_forecaster
    from textseq.forecast.intervals import parse_levels
    from textseq.forecast.train import train_forecaster

    output = either(output, out, "--output", "--out")
    if output is None:
        raise usage_error("Missing option '-o' / '--output'.")
    set_threads(threads, auto=1)
    _check_outputs(force, output, plot)
    baseline_names, levels = _baselines(baselines), parse_levels(level)  # checked before training, not after
    method, arch = _method_and_arch(model, cell)
    fixed_transform = bool(log or diff is not None)
    cfg = ForecastConfig.from_dict(merge({}, dict(
        method=method, seq_len=either(seq_len, days, "--seq-len", "--days"), horizon=horizon, test_frac=test_frac,
        val_frac=val_frac, season=season, choose_transform=False if fixed_transform else None,
        transform=merge({}, dict(scale=scale, log=log or None, diff=diff)),
             model=merge({}, dict(arch=arch,
                                  hidden_size=either(hidden, hidden_size, "--hidden", "--hidden-size"),
                                  num_layers=layers, dropout=dropout, bidirectional=bidirectional or None,
                                  impl=impl)),
             train=merge({}, dict(mode=mode, stateful=stateful or None, loss=loss, optimizer=optimizer,
                                  epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                                  weight_decay=weight_decay, clip=clip, patience=patience, seed=seed,
                                  ensemble=ensemble)))), "forecast")
    source = _source(data, dataset, date_column, fill, encoding)
    series = load_source(source, target, _split_list(inputs))
    result = train_forecaster(series, cfg, source, quiet=quiet or json_output)
    save_forecaster(output, result.forecaster)
    summary = _fit_summary(result, series, output)
    if not json_output:
        typer.echo("\n".join(summary["lines"]))
    if result.split.test_start == len(series):  # --test-frac 0: trained on everything, e.g. to forecast the future
        if plot:
            _plot_future(result.forecaster, series, plot, *_future(result.forecaster, series, levels))
        summary["test"] = None
        if json_output:
            typer.echo(_json(summary))
        else:
            written = f"; plot of the forecast after the data written to {plot}" if plot else ""
            typer.echo(f"no test tail (--test-frac 0): nothing to evaluate{written}")
        return
    report = _report(result.forecaster, series, plot, baseline_names, levels, json_output)
    if json_output:
        summary["test"] = report.to_dict()
        typer.echo(_json(summary))


def _json(data: dict) -> str:
    """Strict JSON: a metric that cannot be computed (NaN, inf) is null."""
    import json
    import math

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "lines"}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (float, np.floating)):
            return float(value) if math.isfinite(value) else None
        if isinstance(value, np.integer):
            return int(value)
        return value

    return json.dumps(clean(data), allow_nan=False)


def _fit_summary(result, series, output: Path) -> dict:
    """What was fitted and chosen: printed lines plus the same facts as data for --json."""
    from textseq.forecast.auto import MIN_NETWORK_POINTS, networks_combined

    forecaster, split = result.forecaster, result.split
    lines = [f"{series.name}: {len(series)} points; train {split.val_start}, validation "
             f"{split.test_start - split.val_start}, test {len(series) - split.test_start}"]
    if result.season is not None:
        lines.append(result.season.describe())
    auto = hasattr(forecaster, "members")
    networks = forecaster.networks if auto else {"network": forecaster}
    for name, network in networks.items():
        lines.append(f"{name}: {network.label()}")
    if auto:
        lines += [f"{kind}: {forecaster.label(kind)}" for kind in forecaster.stats]
    if result.selection:
        lines.append("validation MAE: " + ", ".join(f"{label} {mae:.4g}" for label, mae in result.selection))
    if auto:
        how = forecaster.combination()
        lines.append(f"forecast: {forecaster.composition()}" + (f" ({how})" if how else ""))
        if "rnn" not in forecaster.networks:
            lines.append("networks skipped: the training part has no room for their windows")
        elif not networks_combined(split.val_start):
            lines.append(f"networks printed, not combined: the training part has {split.val_start} points "
                         f"(they are combined from {MIN_NETWORK_POINTS})")
    lines.append(f"saved {output}")
    return {"lines": lines, "series": series.name, "points": len(series),
            "split": {"train": split.val_start, "validation": split.test_start - split.val_start,
                      "test": len(series) - split.test_start},
            "season": None if result.season is None else {"period": result.season.period,
                                                          "reason": result.season.reason},
            "members": list(forecaster.members) if auto else [forecaster.describe()],
            "candidates": {name: (forecaster.label(name) if auto else forecaster.label()) for name in
                           (forecaster.candidates if auto else ["network"])},
            "selection": [{"candidate": label, "val_mae": mae} for label, mae in result.selection]}


def _baselines(text: str) -> list[str]:
    from textseq.forecast.baselines import BASELINES

    names = _split_list(text) or []
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise TextseqError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    return names


def _report(forecaster, series, plot: Path | None, baselines: list[str], levels: list[float], quiet: bool = False):
    from textseq.forecast.evaluation import evaluate_tail

    report = evaluate_tail(forecaster, series, baselines, levels=levels)
    if not quiet:
        typer.echo(f"test tail: {report.n_origins} origins x horizon {report.horizon}, season m={report.season} "
                   f"(MASE scaled by the in-sample seasonal naive MAE)")
        typer.echo(report.table())
        if report.intervals:
            typer.echo("prediction intervals (split conformal on the validation errors; MSIS scaled like MASE):")
            typer.echo(report.interval_table())
        for note in report.notes:
            typer.echo(f"warning: {note}", err=True)
    if plot:
        from textseq.forecast.plot import plot_evaluation

        shown = {name: f for name, f in report.forecasts.items() if name in (report.model, "seasonal_naive", "arima")}
        plot_evaluation(plot, series.column(forecaster.spec.target), report.origins, shown,
                        title=f"{series.name}: test-tail forecasts, horizon {report.horizon}",
                        dates=series.dates, ylabel=forecaster.spec.target, bands=report.bands, model=report.model)
        if not quiet:
            typer.echo(f"plot written to {plot}")
    return report


def _plot_future(forecaster, series, plot: Path, forecast: np.ndarray, bands: dict) -> None:
    from textseq.forecast.data import future_labels
    from textseq.forecast.plot import plot_prediction

    plot_prediction(plot, series.column(forecaster.spec.target), forecast, title=f"{series.name}: forecast",
                    dates=series.dates, future=future_labels(series, len(forecast)), ylabel=forecaster.spec.target,
                    bands=bands)


def _future(forecaster, series, levels: list[float], steps: int | None = None):
    """The forecast after the end of the data and its interval bounds per level."""
    from textseq.forecast.intervals import band

    forecast = forecaster.forecast_next(series, steps)
    last = series.column(forecaster.spec.target)[-1:]
    bands = {}
    if len(forecaster.residuals):
        bands = {f"{lv:g}": tuple(b[0] for b in band(forecast[None, :], last, forecaster.residuals,
                                                      forecaster.relative, lv)) for lv in levels}
    return forecast, bands


CHECKPOINT = typer.Argument(None, help="A forecast checkpoint (from `textseq forecast train`).", show_default=False)
OLD_CHECKPOINT = alias("--checkpoint", "-c")


@forecast_app.command("evaluate", cls=Command, no_args_is_help=True)
def evaluate_command(
    checkpoint: Path = CHECKPOINT,
    old_checkpoint: Path = OLD_CHECKPOINT,
    data: Path | None = DATA, dataset: str | None = DATASET, date_column: str | None = DATE_COLUMN,
    fill: str = FILL, encoding: str = ENCODING,
    backtest: int = typer.Option(0, "--backtest", help="Also refit at this many rolling origins."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the test-tail forecasts."),
    force: bool = FORCE,
    quiet: bool = QUIET,
    baselines: str = BASELINES,
    level: str = LEVELS,
    json_output: bool = JSON,
    threads: int = THREADS,
) -> None:
    """Metrics on the held-out tail next to naive / seasonal naive / drift / ETS / ARIMA / theta baselines."""
    from textseq.forecast.evaluation import backtest as run_backtest
    from textseq.forecast.intervals import parse_levels

    _check_outputs(force, plot)
    chosen, levels = _baselines(baselines), parse_levels(level)
    forecaster, series = _model_and_series(_checkpoint(checkpoint, old_checkpoint), data, dataset, date_column, fill,
                                           encoding, threads)
    report = _report(forecaster, series, plot, chosen, levels, json_output)
    out = {"series": series.name, "points": len(series), "test": report.to_dict(), "backtest": None}
    if backtest:
        bt = run_backtest(series, forecaster.cfg, backtest, chosen, quiet=quiet or json_output)
        out["backtest"] = bt.to_dict()
        if not json_output:
            typer.echo(f"rolling-origin backtest: {backtest} origins from {bt.first_origin}, every "
                       f"{bt.horizon} steps, everything refit at each origin (mean over origins)")
            typer.echo(bt.table())
    if json_output:
        typer.echo(_json(out))



@forecast_app.command("predict", cls=Command, no_args_is_help=True)
def predict_command(
    checkpoint: Path = CHECKPOINT,
    old_checkpoint: Path = OLD_CHECKPOINT,
    data: Path | None = DATA, dataset: str | None = DATASET, date_column: str | None = DATE_COLUMN,
    fill: str = FILL, encoding: str = ENCODING,
    horizon: int = opt("--horizon", help="Steps to forecast (beyond the trained horizon the networks feed their "
                       "forecasts back).", default="the trained horizon"),
    level: str = LEVELS,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the forecast as CSV."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of history + forecast."),
    json_output: bool = JSON,
    force: bool = FORCE,
    threads: int = THREADS,
) -> None:
    """Forecast the values after the end of the series (statistical models refit on all of it first)."""
    from textseq.forecast.data import future_labels
    from textseq.forecast.intervals import parse_levels
    from textseq.io import atomic_write_text

    _check_outputs(force, output, plot)
    levels = parse_levels(level)
    if horizon is not None and horizon < 1:
        raise TextseqError(f"--horizon must be at least 1, got {horizon}")
    forecaster, series = _model_and_series(_checkpoint(checkpoint, old_checkpoint), data, dataset, date_column, fill,
                                           encoding, threads)
    note = _fitted_on(forecaster, series)
    if hasattr(forecaster, "refit"):
        forecaster = forecaster.refit(series)
    forecast, bands = _future(forecaster, series, levels, horizon)
    labels = future_labels(series, len(forecast))
    header = ["step", series.target] + [f"{side}{lv}" for lv in bands for side in ("lo", "hi")]
    rows = [[label, f"{value:.6g}"] + [f"{bands[lv][k][i]:.6g}" for lv in bands for k in (0, 1)]
            for i, (label, value) in enumerate(zip(labels, forecast, strict=True))]
    lines = [",".join(header)] + [",".join(row) for row in rows]
    if json_output:
        typer.echo(_json({"series": series.name, "fitted_on": note, "steps": labels, "forecast": forecast.tolist(),
                          "intervals": {lv: {"lower": b[0].tolist(), "upper": b[1].tolist()}
                                        for lv, b in bands.items()}}))
    else:
        typer.echo(f"# {note}")
        typer.echo("\n".join(lines))
    if output:
        atomic_write_text(output, "\n".join(lines) + "\n")
    if plot:
        _plot_future(forecaster, series, plot, forecast, bands)


def _fitted_on(forecaster, series) -> str:
    if hasattr(forecaster, "refit"):
        trained = "; networks as trained (on the training part)" if forecaster.networks else ""
        return f"statistical models refit on all {len(series)} points{trained}"
    return f"network as trained (its checkpoint); history read up to point {len(series)}"


@forecast_app.command("demo", cls=Command, no_args_is_help=True)
def demo_command(
    name: str = typer.Argument(..., help="stock | rates | sincos (the seed articles' experiments).",
                               show_default=False),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the test stretch.", rich_help_panel=OUTPUT),
    seed: int = opt("--seed", help="Random seed.", default=0, panel=TRAINING),
    json_output: bool = JSON,
    force: bool = FORCE,
) -> None:
    """Rerun a seed article's experiment honestly, next to naive, on one CPU thread."""
    from textseq.forecast.demos import run_demo

    _check_outputs(force, plot)
    result = run_demo(name, plot, seed=seed or 0)
    if json_output:
        typer.echo(_json(result.to_dict()))
        return
    typer.echo(result.title)
    typer.echo(result.table())
    for note in result.notes:
        typer.echo(f"- {note}")
    if plot:
        typer.echo(f"plot written to {plot}")


def register(app: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")
