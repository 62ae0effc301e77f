"""`textseq forecast`: train / predict / evaluate numeric series forecasters; list built-in datasets."""

from __future__ import annotations

from pathlib import Path

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
BASELINES = typer.Option("naive,seasonal_naive,drift,arima,ets", "--baselines",
                         help="Baselines printed next to the model (arima / ets are the slow ones).",
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


@forecast_app.command("train", cls=Command)
def train_command(
    data: Path | None = DATA, dataset: str | None = DATASET, target: str | None = TARGET,
    inputs: str | None = INPUTS, date_column: str | None = DATE_COLUMN, fill: str = FILL, encoding: str = ENCODING,
    seq_len: int = opt("--seq-len", help="Input window length.", default=_f("seq_len"), panel=DATA_PANEL),
    days: int = alias("--days"),
    horizon: int = opt("--horizon", help="Steps to forecast.", default=_f("horizon"), panel=DATA_PANEL),
    test_frac: float = opt("--test-frac", help="Held-out tail fraction.", default=_f("test_frac"), panel=DATA_PANEL),
    val_frac: float = opt("--val-frac", help="Validation fraction of the training part.", default=_f("val_frac"),
                          panel=DATA_PANEL),
    season: int = opt("--season", help="Season length m.", default="from the frequency", panel=DATA_PANEL),
    scale: str = opt("--scale", help="standard | minmax | none (fit on the training part).",
                     default=default_of(TransformConfig, "scale"), panel=DATA_PANEL),
    log: bool = typer.Option(False, "--log", help="Model log(y) (multiplicative series, e.g. airline).",
                             rich_help_panel=DATA_PANEL),
    diff: int = opt("--diff", help="Difference at this lag: 1, or the season (e.g. 12).",
                    default=default_of(TransformConfig, "diff"), panel=DATA_PANEL),
    cell: str = opt("--cell", help="lstm | gru | rnn_tanh | rnn_relu | mlp (no recurrent cell).",
                    default=_m("arch"), panel=MODEL),
    model: str = alias("--model"),
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
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the test-tail forecasts.",
                                     rich_help_panel=OUTPUT),
    baselines: str = BASELINES,
    force: bool = FORCE,
    quiet: bool = QUIET,
) -> None:
    """Train a forecaster; prints the test-tail metrics next to the baselines."""
    from textseq.forecast.datasets import load_source
    from textseq.forecast.forecaster import save_forecaster
    from textseq.forecast.train import train_forecaster

    output = either(output, out, "--output", "--out")
    if output is None:
        raise usage_error("Missing option '-o' / '--output'.")
    set_threads(threads, auto=1)
    _check_outputs(force, output, plot)
    baseline_names = _baselines(baselines)  # checked before training, not after
    cfg = ForecastConfig.from_dict(merge({}, dict(
        seq_len=either(seq_len, days, "--seq-len", "--days"), horizon=horizon, test_frac=test_frac,
        val_frac=val_frac, season=season,
        transform=merge({}, dict(scale=scale, log=log or None, diff=diff)),
             model=merge({}, dict(arch=either(cell, model, "--cell", "--model"),
                                  hidden_size=either(hidden, hidden_size, "--hidden", "--hidden-size"),
                                  num_layers=layers, dropout=dropout, bidirectional=bidirectional or None,
                                  impl=impl)),
             train=merge({}, dict(mode=mode, stateful=stateful or None, loss=loss, optimizer=optimizer,
                                  epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                                  weight_decay=weight_decay, clip=clip, patience=patience, seed=seed,
                                  ensemble=ensemble)))), "forecast")
    source = _source(data, dataset, date_column, fill, encoding)
    series = load_source(source, target, _split_list(inputs))
    result = train_forecaster(series, cfg, source, quiet=quiet)
    save_forecaster(output, result.forecaster)
    split = result.split
    typer.echo(f"{series.name}: {len(series)} points; train {split.val_start}, validation "
               f"{split.test_start - split.val_start}, test {len(series) - split.test_start}")
    typer.echo(f"best validation MAE {', '.join(f'{v:.4g}' for v in result.best_val_mae)} "
               f"after {', '.join(map(str, result.epochs_run))} epochs; saved {output}")
    if split.test_start == len(series):  # --test-frac 0: trained on everything, e.g. to forecast the future
        typer.echo("no test tail (--test-frac 0): nothing to evaluate")
        return
    _report(result.forecaster, series, plot, baseline_names)


def _baselines(text: str) -> list[str]:
    from textseq.forecast.baselines import BASELINES

    names = _split_list(text) or []
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise TextseqError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    return names


def _report(forecaster, series, plot: Path | None, baselines: list[str]) -> None:
    from textseq.forecast.evaluation import evaluate_tail

    report = evaluate_tail(forecaster, series, baselines)
    typer.echo(f"test tail: {report.n_origins} origins x horizon {report.horizon}, season m={report.season} "
               f"(MASE scaled by the in-sample seasonal naive MAE)")
    typer.echo(report.table())
    if plot:
        from textseq.forecast.plot import plot_evaluation

        shown = {name: f for name, f in report.forecasts.items() if name not in ("naive", "drift", "ets")}
        plot_evaluation(plot, series.column(forecaster.spec.target), report.origins, shown,
                        title=f"{series.name}: test-tail forecasts")
        typer.echo(f"plot written to {plot}")


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
    threads: int = THREADS,
) -> None:
    """Metrics on the held-out tail next to naive / seasonal naive / drift / ARIMA / ETS baselines."""
    from textseq.forecast.evaluation import backtest as run_backtest

    _check_outputs(force, plot)
    chosen = _baselines(baselines)
    forecaster, series = _model_and_series(_checkpoint(checkpoint, old_checkpoint), data, dataset, date_column, fill,
                                           encoding, threads)
    _report(forecaster, series, plot, chosen)
    if backtest:
        report = run_backtest(series, forecaster.cfg, backtest, chosen, quiet=quiet)
        typer.echo(f"rolling-origin backtest: {backtest} origins from {report.first_origin}, every "
                   f"{report.horizon} steps, everything refit at each origin (mean over origins)")
        typer.echo(report.table())


@forecast_app.command("predict", cls=Command, no_args_is_help=True)
def predict_command(
    checkpoint: Path = CHECKPOINT,
    old_checkpoint: Path = OLD_CHECKPOINT,
    data: Path | None = DATA, dataset: str | None = DATASET, date_column: str | None = DATE_COLUMN,
    fill: str = FILL, encoding: str = ENCODING,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the forecast as CSV."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of history + forecast."),
    force: bool = FORCE,
    threads: int = THREADS,
) -> None:
    """Forecast the next `horizon` values after the end of the series."""
    from textseq.forecast.data import future_labels
    from textseq.io import atomic_write_text

    _check_outputs(force, output, plot)
    forecaster, series = _model_and_series(_checkpoint(checkpoint, old_checkpoint), data, dataset, date_column, fill,
                                           encoding, threads)
    forecast = forecaster.forecast_next(series)
    labels = future_labels(series, len(forecast))
    lines = [f"step,{series.target}"] + [f"{label},{value:.6g}" for label, value in zip(labels, forecast, strict=True)]
    typer.echo("\n".join(lines))
    if output:
        atomic_write_text(output, "\n".join(lines) + "\n")
    if plot:
        from textseq.forecast.plot import plot_prediction

        plot_prediction(plot, series.target_values, forecast, title=f"{series.name}: forecast")


def register(app: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")
