"""`textseq train`: train a char/word recurrent LM (teacher forcing, free running or scheduled sampling)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from textseq.errors import TextseqError

Opt = typer.Option


def train(
    data: str = typer.Argument(None, help="Text file/directory, or a `textseq preprocess` output directory "
                                          "(optional with --resume)."),
    output: str = Opt(None, "-o", "--output", help="Run directory (best.pt, last.pt, loss.png) or a .pt path."),
    config: Path = Opt(None, "--config", help="TOML file with \\[train] and \\[model] tables; flags override it."),
    level: str = Opt(None, help="char | word (raw text only)."),
    lang: str = Opt(None, help="auto | zh | en (raw text only)."),
    min_count: int = Opt(None, help="Drop rarer tokens from the vocabulary (they become <unk>)."),
    max_vocab: int = Opt(None, help="Keep at most this many tokens (0: no limit)."),
    mode: str = Opt(None, help="teacher-forcing | free-running | scheduled-sampling."),
    schedule: str = Opt(None, help="Scheduled sampling decay: linear | exponential | inverse-sigmoid."),
    schedule_k: float = Opt(None, help="Schedule constant k (0: decay over the whole run)."),
    feedback: str = Opt(None, help="Fed-back prediction in free running / scheduled sampling: argmax | sample."),
    cell: str = Opt(None, help="lstm | gru | rnn_tanh | rnn_relu."),
    layers: int = Opt(None, help="Number of recurrent layers."),
    hidden: int = Opt(None, help="Hidden units per layer."),
    emb: int = Opt(None, help="Embedding size."),
    dropout: float = Opt(None, help="Dropout probability."),
    tie: bool = Opt(None, "--tie/--no-tie", help="Tie input and output embeddings (needs --emb == --hidden)."),
    adaptive_softmax: bool = Opt(None, "--adaptive-softmax/--full-softmax", help="Adaptive softmax output."),
    embeddings: str = Opt(None, help="Pretrained word vectors (.kv, word2vec, GloVe) to initialise embeddings."),
    bptt: int = Opt(None, help="Tokens per truncated-BPTT window."),
    k1: int = Opt(None, help="Tokens between updates (default: bptt)."),
    k2: int = Opt(None, help="Tokens back-propagated (default: bptt)."),
    batch_size: int = Opt(None, help="Parallel streams (split across processes under torchrun)."),
    epochs: int = Opt(None, help="Passes over the training text."),
    max_steps: int = Opt(None, help="Stop after this many updates (0: no limit)."),
    lr: float = Opt(None, help="Learning rate."),
    optimizer: str = Opt(None, help="sgd | adam | adamw."),
    momentum: float = Opt(None, help="SGD momentum."),
    weight_decay: float = Opt(None, help="Weight decay."),
    scheduler: str = Opt(None, help="LR schedule: none | step | cosine | plateau."),
    clip: float = Opt(None, help="Max gradient norm (0: off)."),
    valid_ratio: float = Opt(None, help="Tail of the text held out for validation."),
    eval_every: int = Opt(None, help="Validate every N steps (0: every epoch)."),
    patience: int = Opt(None, help="Early stopping after N validations without improvement (0: off)."),
    checkpoint_every: int = Opt(None, help="Write last.pt every N steps (0: every epoch)."),
    seed: int = Opt(None, help="Random seed."),
    device: str = Opt(None, help="auto | cpu | cuda | mps."),
    deterministic: bool = Opt(None, "--deterministic/--nondeterministic",
                              help="torch.use_deterministic_algorithms (bit-identical reruns on GPU too)."),
    log_every: int = Opt(None, help="Steps between log lines / loss-curve points."),
    resume: str = Opt(None, "--resume", help="Continue exactly from a checkpoint (e.g. RUN/last.pt)."),
    force: bool = Opt(False, "--force", help="Overwrite an existing output."),
    quiet: bool = Opt(False, "--quiet", "-q", help="No progress output."),
    threads: int = Opt(0, help="Torch CPU threads (0: torch's default; 1 is often fastest for small models "
                               "or on a busy machine)."),
) -> int:
    """Train a recurrent language model; Ctrl-C saves a checkpoint that --resume continues exactly.

    Other settings (eval batch size, LR step size/gamma, minimum teacher-forcing probability) can be
    set in the --config file's \\[train] table.
    """
    from textseq.lm.train import resolve_config
    from textseq.lm.train import train as run_training

    train_flags = dict(data=data, output=output, level=level, lang=lang, min_count=min_count,
                       max_vocab=max_vocab, embeddings=embeddings, mode=mode, schedule=schedule,
                       schedule_k=schedule_k, feedback=feedback, bptt=bptt, k1=k1, k2=k2, batch_size=batch_size,
                       epochs=epochs, max_steps=max_steps, lr=lr, optimizer=optimizer, momentum=momentum,
                       weight_decay=weight_decay, scheduler=scheduler, clip=clip, valid_ratio=valid_ratio,
                       eval_every=eval_every, patience=patience, checkpoint_every=checkpoint_every, seed=seed,
                       device=device, deterministic=deterministic, log_every=log_every)
    model_flags = dict(cell=cell, num_layers=layers, hidden_size=hidden, emb_size=emb, dropout=dropout,
                       tie_weights=tie, adaptive_softmax=adaptive_softmax)
    if threads < 0:
        raise TextseqError(f"--threads must be 0 (torch's default) or positive, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    cfg, model = resolve_config(train_flags, model_flags, str(config) if config else None, resume)
    result = run_training(cfg, model, resume=resume, force=force, quiet=quiet)
    if not quiet and os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 reports
        why = {"epochs": "all epochs done", "max-steps": "--max-steps reached",
               "early-stopping": "early stopping", "interrupted": "interrupted"}.get(result.stop_reason,
                                                                                   result.stop_reason)
        typer.echo(f"stopped ({why}) after {result.steps} steps; best checkpoint: {result.best_checkpoint}",
                   err=True)
    return 130 if result.stop_reason == "interrupted" else 0


def register(app: typer.Typer) -> None:
    app.command("train", no_args_is_help=True)(train)
