"""`textseq evaluate`: held-out perplexity / bits-per-char, teacher-forced and free-running, vs Kneser-Ney."""

from __future__ import annotations

import json

import typer

from textseq.cli.options import DEVICE_HELP, EVALUATION, THREADS_HELP, Command, set_threads
from textseq.errors import TextseqError


def evaluate(
    checkpoint: str = typer.Argument(..., help="An LM checkpoint (e.g. RUN/best.pt).", show_default=False),
    text: str = typer.Argument(..., help="Held-out text file or directory.", show_default=False),
    horizon: int = typer.Option(10, "--horizon", "-k", help="Free-running rollout length (0: skip the rollouts).",
                                rich_help_panel=EVALUATION),
    stride: int = typer.Option(0, "--stride", help="Positions between rollout starts (0: the horizon).",
                               rich_help_panel=EVALUATION),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also score a Kneser-Ney n-gram model.",
                                  rich_help_panel=EVALUATION),
    order: int = typer.Option(0, "--order", help="N-gram order (0: 5 for chars, 3 for words).",
                              rich_help_panel=EVALUATION),
    train_text: str = typer.Option(None, "--train-text", help="Training text for the baseline (default: the "
                                   "checkpoint's).", rich_help_panel=EVALUATION),
    mix_kn: str = typer.Option("auto", "--mix-kn", help="Mix the LM with its Kneser-Ney model: auto (the weight "
                               "fitted on validation when training), off, or the LM's weight in [0, 1].",
                               rich_help_panel=EVALUATION),
    cache: str = typer.Option("auto", "--cache", help="Continuous cache: auto (the size and parameters fitted when "
                              "training), off, or a number of previous positions.", rich_help_panel=EVALUATION),
    dynamic: str = typer.Option("auto", "--dynamic", help="Dynamic evaluation (the model keeps learning from the "
                                "text it has scored): auto (the learning rate fitted when training), off, or an "
                                "SGD learning rate.", rich_help_panel=EVALUATION),
    samples: int = typer.Option(20, "--samples", help="Continue this many held-out prompts, sampled and greedy, and "
                                "measure the text: repetition, distinct-1/2/3, 3-gram overlap (0: skip).",
                                rich_help_panel=EVALUATION),
    sample_tokens: int = typer.Option(100, "--sample-tokens", help="Tokens per sample.", rich_help_panel=EVALUATION),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampled continuations.", rich_help_panel=EVALUATION),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    batch_size: int = typer.Option(16, "--batch-size", help="Parallel streams while scoring."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: int = typer.Option(0, "--threads", help=THREADS_HELP),
) -> None:
    """Score a checkpoint on held-out text: teacher-forced, free-running (k-step) and the n-gram baseline."""
    from rich.console import Console
    from rich.table import Table

    from textseq.lm.evaluate import evaluate_checkpoint

    set_threads(threads)
    if horizon < 0:
        raise TextseqError(f"--horizon must be 0 (no rollouts) or positive, got {horizon}")
    if samples < 0:
        raise TextseqError(f"--samples must be 0 (none) or positive, got {samples}")
    report = evaluate_checkpoint(checkpoint, text, horizon=horizon, stride=None if stride == 0 else stride,
                                 baseline=baseline,
                                 order=order or None, train_text=train_text, batch_size=batch_size, device=device,
                                 mix_kn=mix_kn, cache=cache, dynamic=dynamic, samples=samples,
                                 sample_tokens=sample_tokens, seed=seed)
    if json_output:
        typer.echo(json.dumps(report.to_dict()))
        return
    table = Table(title=f"{report.tokens} tokens, {report.oov_rate:.2%} <unk>")
    for column in ("model", "NLL (nats/token)", report.metric, "vs KN"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in report.rows:
        table.add_row(row.name, f"{row.nll:.4f}", f"{row.metric:.4f}", "" if row.vs_kn is None else f"{row.vs_kn:.3f}")
    Console().print(table)
    if report.horizon_nll:
        per_step = " ".join(f"{nll:.3f}" for nll in report.horizon_nll)
        typer.echo(f"free-running NLL at steps 1..{horizon}: {per_step}")
    if report.generated:
        first = report.generated[0]
        table = Table(title=f"generated text: {first.samples} held-out prompts continued by {first.tokens} tokens")
        for column in ("text", "repeated 4-grams", "distinct-1", "distinct-2", "distinct-3", "3-grams in held-out"):
            table.add_column(column, justify="left" if column == "text" else "right")
        for row in report.generated:
            table.add_row(row.name, *(f"{v:.3f}" for v in (row.repeat_4, row.distinct_1, row.distinct_2,
                                                           row.distinct_3, row.overlap_3)))
        Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("evaluate", cls=Command, no_args_is_help=True)(evaluate)
