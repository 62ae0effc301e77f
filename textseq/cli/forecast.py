"""`textseq forecast`: train / predict / evaluate numeric series forecasters; list built-in datasets."""

from __future__ import annotations

from pathlib import Path

import typer

forecast_app = typer.Typer(help="Forecast numeric series (CSV or built-in datasets) with MLP / RNN / LSTM / GRU.",
                           no_args_is_help=True)

DATA = typer.Option(None, "--data", help="CSV file with the series (one row per time step).")
DATASET = typer.Option(None, "--dataset", help="Built-in dataset name (see `textseq forecast datasets`).")
TARGET = typer.Option(None, "--target", help="Column to forecast.")
INPUTS = typer.Option(None, "--inputs", help="Comma-separated input columns (default: the target alone).")
DATE_COLUMN = typer.Option(None, "--date-column", help="Optional date column (for frequency and plots).")
FILL = typer.Option("none", "--fill", help="Missing values: none (error naming the cell) | ffill | interpolate | drop.")
ENCODING = typer.Option("utf-8", "--encoding", help="CSV text encoding.")
THREADS = typer.Option(1, "--threads", help="Torch CPU threads (1 is fastest for small models).")
BASELINES = typer.Option("naive,seasonal_naive,drift,arima,ets", "--baselines",
                         help="Baselines printed next to the model (arima / ets are the slow ones).")


def _split_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _source(data: Path | None, dataset: str | None, date_column: str | None, fill: str, encoding: str,
            fallback: dict | None = None) -> dict:
    """The data to load (see ``load_source``, which also refuses an empty one)."""
    from textseq.errors import TextseqError

    if data and dataset:
        raise TextseqError("give either --data or --dataset, not both")
    if dataset:
        return {"dataset": dataset}
    if data:
        return {"csv": str(Path(data).resolve()), "date_column": date_column, "fill": fill, "encoding": encoding}
    return fallback or {}


def _set_threads(threads: int) -> None:
    import torch

    from textseq.errors import TextseqError

    if threads < 1:
        raise TextseqError("--threads must be at least 1")
    torch.set_num_threads(threads)


def _check_outputs(force: bool, *paths: Path | None) -> None:
    """Refuse existing outputs before any work is done."""
    from textseq.io import check_output

    for path in paths:
        if path:
            check_output(path, force)


def _model_and_series(checkpoint: Path, data: Path | None, dataset: str | None, date_column: str | None,
                      fill: str, encoding: str, threads: int):
    """Load a checkpoint and its series: the given data, or by default the data it was trained on."""
    from textseq.forecast.datasets import load_source
    from textseq.forecast.forecaster import load_forecaster

    _set_threads(threads)
    forecaster = load_forecaster(checkpoint)
    spec = forecaster.spec
    source = _source(data, dataset, date_column or spec.source.get("date_column"), fill, encoding, spec.source)
    return forecaster, load_source(source, spec.target, spec.inputs)


@forecast_app.command("datasets")
def datasets_command() -> None:
    """List the built-in real series (loaded offline from the statsmodels / sktime wheels)."""
    from textseq.forecast.datasets import list_datasets

    for info in list_datasets():
        typer.echo(f"{info.name:12s} {info.description} [{info.source}]")


@forecast_app.command("train")
def train_command(
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write."),
    data: Path | None = DATA, dataset: str | None = DATASET, target: str | None = TARGET,
    inputs: str | None = INPUTS, date_column: str | None = DATE_COLUMN, fill: str = FILL, encoding: str = ENCODING,
    model: str = typer.Option("lstm", "--model", help="mlp | rnn_tanh | rnn_relu | lstm | gru."),
    hidden_size: int = typer.Option(64, "--hidden-size"),
    layers: int = typer.Option(1, "--layers"),
    dropout: float = typer.Option(0.0, "--dropout"),
    bidirectional: bool = typer.Option(False, "--bidirectional", help="Bidirectional encoder (--mode direct)."),
    impl: str = typer.Option("torch", "--impl", help="torch | scratch (from-scratch cells)."),
    seq_len: int = typer.Option(24, "--seq-len", "--days", help="Input window length."),
    horizon: int = typer.Option(1, "--horizon", help="Steps to forecast."),
    mode: str = typer.Option("direct", "--mode", help="direct | teacher (then recursive) | free (free-running)."),
    stateful: bool = typer.Option(False, "--stateful", help="Carry the hidden state across consecutive chunks."),
    loss: str = typer.Option("mse", "--loss", help="mse | mae | huber."),
    epochs: int = typer.Option(300, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(3e-3, "--lr"),
    weight_decay: float = typer.Option(0.0, "--weight-decay"),
    patience: int = typer.Option(30, "--patience", help="Early stopping patience (epochs without val gain)."),
    seed: int = typer.Option(0, "--seed"),
    ensemble: int = typer.Option(1, "--ensemble", help="Average this many networks (seeds seed, seed+1, ...)."),
    scale: str = typer.Option("standard", "--scale", help="standard | minmax | none (fit on training part)."),
    log: bool = typer.Option(False, "--log", help="Model log(y) (multiplicative series, e.g. airline)."),
    diff: int = typer.Option(0, "--diff", help="Difference at this lag: 1, or the season (e.g. 12)."),
    test_frac: float = typer.Option(0.3, "--test-frac", help="Held-out tail fraction."),
    val_frac: float = typer.Option(0.2, "--val-frac", help="Validation fraction of the training part."),
    season: int | None = typer.Option(None, "--season", help="Season length m (default: from the frequency)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the test-tail forecasts."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    baselines: str = BASELINES,
    threads: int = THREADS,
) -> None:
    """Train a forecaster; prints the test-tail metrics next to the baselines."""
    from textseq.forecast.config import ForecastConfig, ForecastModelConfig, ForecastTrainConfig, TransformConfig
    from textseq.forecast.datasets import load_source
    from textseq.forecast.forecaster import save_forecaster
    from textseq.forecast.train import train_forecaster

    _set_threads(threads)
    _check_outputs(force, out, plot)
    baseline_names = _baselines(baselines)  # checked before training, not after
    source = _source(data, dataset, date_column, fill, encoding)
    series = load_source(source, target, _split_list(inputs))
    cfg = ForecastConfig(
        seq_len=seq_len, horizon=horizon, test_frac=test_frac, val_frac=val_frac, season=season,
        transform=TransformConfig(scale=scale, log=log, diff=diff),
        model=ForecastModelConfig(arch=model, hidden_size=hidden_size, num_layers=layers, dropout=dropout,
                          bidirectional=bidirectional, impl=impl),
        train=ForecastTrainConfig(mode=mode, stateful=stateful, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr,
                          weight_decay=weight_decay, patience=patience, seed=seed, ensemble=ensemble),
    )
    result = train_forecaster(series, cfg, source, quiet=quiet)
    save_forecaster(out, result.forecaster)
    split = result.split
    typer.echo(f"{series.name}: {len(series)} points; train {split.val_start}, validation "
               f"{split.test_start - split.val_start}, test {len(series) - split.test_start}")
    typer.echo(f"best validation MAE {', '.join(f'{v:.4g}' for v in result.best_val_mae)} "
               f"after {', '.join(map(str, result.epochs_run))} epochs; saved {out}")
    if split.test_start == len(series):  # --test-frac 0: trained on everything, e.g. to forecast the future
        typer.echo("no test tail (--test-frac 0): nothing to evaluate")
        return
    _report(result.forecaster, series, plot, baseline_names)


def _baselines(text: str) -> list[str]:
    from textseq.errors import TextseqError
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


@forecast_app.command("evaluate")
def evaluate_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="Forecast checkpoint."),
    data: Path | None = DATA, dataset: str | None = DATASET, date_column: str | None = DATE_COLUMN,
    fill: str = FILL, encoding: str = ENCODING,
    backtest: int = typer.Option(0, "--backtest", help="Also refit at this many rolling origins."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the test-tail forecasts."),
    force: bool = typer.Option(False, "--force", help="Overwrite the plot."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    baselines: str = BASELINES,
    threads: int = THREADS,
) -> None:
    """Metrics on the held-out tail next to naive / seasonal naive / drift / ARIMA / ETS baselines."""
    from textseq.forecast.evaluation import backtest as run_backtest

    _check_outputs(force, plot)
    chosen = _baselines(baselines)
    forecaster, series = _model_and_series(checkpoint, data, dataset, date_column, fill, encoding, threads)
    _report(forecaster, series, plot, chosen)
    if backtest:
        report = run_backtest(series, forecaster.cfg, backtest, chosen, quiet=quiet)
        typer.echo(f"rolling-origin backtest: {backtest} origins from {report.first_origin}, every "
                   f"{report.horizon} steps, everything refit at each origin (mean over origins)")
        typer.echo(report.table())


@forecast_app.command("predict")
def predict_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="Forecast checkpoint."),
    data: Path | None = DATA, dataset: str | None = DATASET, date_column: str | None = DATE_COLUMN,
    fill: str = FILL, encoding: str = ENCODING,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the forecast as CSV."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of history + forecast."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    threads: int = THREADS,
) -> None:
    """Forecast the next `horizon` values after the end of the series."""
    from textseq.forecast.data import future_labels
    from textseq.io import atomic_write_text

    _check_outputs(force, output, plot)
    forecaster, series = _model_and_series(checkpoint, data, dataset, date_column, fill, encoding, threads)
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
