"""`textseq train`: train a char/word recurrent LM (teacher forcing, free running or scheduled sampling)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from textseq.cli.options import (
    DATA,
    DEVICE_HELP,
    FORCE,
    MODEL,
    OUTPUT,
    QUIET,
    THREADS_HELP,
    TRAINING,
    Command,
    opt,
    set_threads,
    usage_error,
)
from textseq.lm.data import SPREAD_SEGMENTS
from textseq.lm.model import LMConfig
from textseq.lm.train import LMTrainConfig
from textseq.settings import default_of


def _t(name: str):
    return default_of(LMTrainConfig, name)


def _m(name: str):
    return default_of(LMConfig, name)


def train(
    data: str = typer.Argument(None, help="Text file/directory, or a `textseq preprocess` output directory "
                                          "(optional with --resume).", show_default=False),
    config: Path = opt("--config", help="TOML file with \\[train] and \\[model] tables; flags override it.",
                       panel=DATA),
    level: str = opt("--level", help="char | word | subword (raw text only).", default=_t("level"), panel=DATA),
    vocab_size: int = opt("--vocab-size", help="Subword units to learn (--level subword; 0: 8000).",
                          default=_t("vocab_size"), panel=DATA),
    lang: str = opt("--lang", help="auto | zh | en (raw text only).", default=_t("lang"), panel=DATA),
    pretokenized: bool = typer.Option(False, "--pretokenized", help="Raw text already tokenized (WikiText, PTB): "
                                      "split on whitespace only, tokens kept as written (literal <unk>); word level.",
                                      rich_help_panel=DATA),
    min_count: int = opt("--min-count", help="Rarer tokens become <unk>.", default=_t("min_count"), panel=DATA),
    max_vocab: int = opt("--max-vocab", help="Keep at most this many tokens (0: no limit).", default=_t("max_vocab"),
                         panel=DATA),
    valid_ratio: float = opt("--valid-ratio", help="Share of the text held out for validation.",
                             default=_t("valid_ratio"), panel=DATA),
    valid_split: str = opt("--valid-split", default=_t("valid_split"), panel=DATA,
                           help=f"Validation text: spread ({SPREAD_SEGMENTS} blocks across the text) | tail."),
    cell: str = opt("--cell", help="lstm | gru | rnn_tanh | rnn_relu.", default=_m("cell"), panel=MODEL),
    layers: int = opt("--layers", help="Recurrent layers.", default=_m("num_layers"), panel=MODEL),
    hidden: int = opt("--hidden", help="Hidden units per layer.", default=_m("hidden_size"), panel=MODEL),
    emb: int = opt("--emb", help="Embedding size.", default=_m("emb_size"), panel=MODEL),
    dropout: float = opt("--dropout", help="Dropout probability.", default=_m("dropout"), panel=MODEL),
    weight_drop: float = opt("--weight-drop", help="AWD-LSTM DropConnect on the hidden-to-hidden weights.",
                             default=_m("weight_drop"), panel=MODEL),
    dropout_emb: float = opt("--dropout-emb", help="Embedding dropout: drop whole word types.",
                             default=_m("dropout_emb"), panel=MODEL),
    dropout_in: float = opt("--dropout-in", help="Locked (variational) dropout on the embedding output.",
                            default=_m("dropout_in"), panel=MODEL),
    dropout_between: float = opt("--dropout-between", help="Locked dropout between recurrent layers.",
                                 default=_m("dropout_between"), panel=MODEL),
    dropout_out: float = opt("--dropout-out", help="Locked dropout on the last layer's output.",
                             default=_m("dropout_out"), panel=MODEL),
    tie: bool = opt("--tie/--no-tie", help="Tie input and output embeddings (when --emb differs from --hidden, "
                                           "a projection hidden -> emb is added).", default=_m("tie_weights"),
                    panel=MODEL),
    adaptive_softmax: bool = opt("--adaptive-softmax/--full-softmax", help="Adaptive softmax output layer.",
                                 default=_m("adaptive_softmax"), panel=MODEL),
    embeddings: str = opt("--embeddings", help="Pretrained word vectors (.kv, word2vec, GloVe) for the embedding.",
                          panel=MODEL),
    mode: str = opt("--mode", help="teacher-forcing (teacher) | free-running (free) | scheduled-sampling.",
                    default=_t("mode"), panel=TRAINING),
    schedule: str = opt("--schedule", help="Scheduled-sampling decay: linear | exponential | inverse-sigmoid.",
                        default=_t("schedule"), panel=TRAINING),
    schedule_k: float = opt("--schedule-k", help="Schedule constant k (0: decay over the whole run).",
                            default=_t("schedule_k"), panel=TRAINING),
    feedback: str = opt("--feedback", help="Fed-back prediction when not teacher forcing: argmax | sample.",
                        default=_t("feedback"), panel=TRAINING),
    bptt: int = opt("--bptt", help="Tokens per truncated-BPTT window.", default=_t("bptt"), panel=TRAINING),
    k1: int = opt("--k1", help="Tokens between updates (0: bptt).", default=_t("k1"), panel=TRAINING),
    k2: int = opt("--k2", help="Tokens back-propagated (0: bptt).", default=_t("k2"), panel=TRAINING),
    batch_size: int = opt("--batch-size", help="Parallel streams (split across processes under torchrun).",
                          default=_t("batch_size"), panel=TRAINING),
    epochs: int = opt("--epochs", help="Passes over the training text (0: no limit; not given with --max-time: "
                                       "no limit).", default=_t("epochs"), panel=TRAINING),
    max_steps: int = opt("--max-steps", help="Stop after this many updates (0: no limit).", default=_t("max_steps"),
                         panel=TRAINING),
    max_time: float = opt("--max-time", help="Training time budget: stop at the first update after it (0: no "
                                             "limit; per process: a resumed run gets it again). The cosine LR "
                                             "and scheduled sampling span it.",
                          default=_t("max_time"), panel=TRAINING, metavar="SECONDS"),
    lr: float = opt("--lr", help="Learning rate.", default=_t("lr"), panel=TRAINING),
    optimizer: str = opt("--optimizer", help="sgd | adam | adamw.", default=_t("optimizer"), panel=TRAINING),
    momentum: float = opt("--momentum", help="SGD momentum.", default=_t("momentum"), panel=TRAINING),
    weight_decay: float = opt("--weight-decay", help="Weight decay.", default=_t("weight_decay"), panel=TRAINING),
    scheduler: str = opt("--scheduler", help="LR schedule: none | step | cosine | plateau.", default=_t("scheduler"),
                         panel=TRAINING),
    clip: float = opt("--clip", help="Max gradient norm (0: off).", default=_t("clip"), panel=TRAINING),
    precision: str = opt("--precision", help="fp32 | bf16 (mixed precision) | auto: bf16 where the CPU/GPU "
                         "computes it natively (AMX, AVX512-BF16), else fp32.", default=_t("precision"),
                         panel=TRAINING),
    average: str = opt("--average", help="off | nt: average the weights once validation stalls (NT-ASGD's "
                       "trigger); best.pt holds the average.", default=_t("average"), panel=TRAINING),
    ar: float = opt("--ar", help="Activation regularization (AWD-LSTM AR; teacher forcing only).",
                    default=_t("ar"), panel=TRAINING),
    tar: float = opt("--tar", help="Temporal activation regularization (AWD-LSTM TAR; teacher forcing only).",
                     default=_t("tar"), panel=TRAINING),
    eval_every: int = opt("--eval-every", help="Validate every N updates (0: every epoch).", default=_t("eval_every"),
                          panel=TRAINING),
    patience: int = opt("--patience", help="Stop after N validations without improvement (0: off).",
                        default=_t("patience"), panel=TRAINING),
    seed: int = opt("--seed", help="Random seed.", default=_t("seed"), panel=TRAINING),
    device: str = opt("--device", help=DEVICE_HELP, default=_t("device"), panel=TRAINING),
    deterministic: bool = opt("--deterministic/--nondeterministic",
                              help="torch.use_deterministic_algorithms (bit-identical reruns on GPU too).",
                              default=_t("deterministic"), panel=TRAINING),
    threads: int = opt("--threads", help=THREADS_HELP, default=0, panel=TRAINING),
    resume: str = opt("--resume", help="Continue exactly from a checkpoint (e.g. RUN/last.pt).", panel=TRAINING),
    output: str = opt("-o", "--output", help="Run directory (best.pt, last.pt, loss.png) or a .pt path.",
                      panel=OUTPUT),
    kn_mix: bool = opt("--kn-mix/--no-kn-mix", help="At the end, fit a Kneser-Ney model on the training split and "
                       "its mixing weight on validation (used by evaluate/generate --mix-kn).",
                       default=_t("kn_mix"), panel=OUTPUT),
    checkpoint_every: int = opt("--checkpoint-every", help="Write last.pt every N updates (0: every epoch).",
                                default=_t("checkpoint_every"), panel=OUTPUT),
    log_every: int = opt("--log-every", help="Updates between log lines / loss-curve points.",
                         default=_t("log_every"), panel=OUTPUT),
    force: bool = FORCE,
    quiet: bool = QUIET,
) -> int:
    """Train a recurrent language model; Ctrl-C saves a checkpoint that --resume continues exactly.

    More settings (eval batch size, LR step/gamma, least teacher-forcing prob.): --config's \\[train] table.
    """
    from textseq.lm.train import resolve_config
    from textseq.lm.train import train as run_training

    train_flags = dict(data=data, output=output, level=level or ("word" if pretokenized else None), lang=lang,
                       pretokenized=pretokenized or None,
                       min_count=min_count,
                       max_vocab=max_vocab, vocab_size=vocab_size, embeddings=embeddings, mode=mode, schedule=schedule,
                       schedule_k=schedule_k, feedback=feedback, bptt=bptt, k1=k1, k2=k2, batch_size=batch_size,
                       epochs=epochs, max_steps=max_steps, max_time=max_time, lr=lr, optimizer=optimizer,
                       momentum=momentum, weight_decay=weight_decay, scheduler=scheduler, clip=clip,
                       average=average, precision=precision, ar=ar, tar=tar, valid_ratio=valid_ratio,
                       valid_split=valid_split,
                       eval_every=eval_every, patience=patience, checkpoint_every=checkpoint_every, seed=seed,
                       device=device, deterministic=deterministic, kn_mix=kn_mix, log_every=log_every)
    model_flags = dict(cell=cell, num_layers=layers, hidden_size=hidden, emb_size=emb, dropout=dropout,
                       weight_drop=weight_drop, dropout_emb=dropout_emb, dropout_in=dropout_in,
                       dropout_between=dropout_between, dropout_out=dropout_out, tie_weights=tie,
                       adaptive_softmax=adaptive_softmax)
    if data is None and resume is None:
        raise usage_error("Missing argument 'DATA' (or --resume RUN/last.pt).")
    set_threads(threads)
    cfg, model = resolve_config(train_flags, model_flags, str(config) if config else None, resume, auto=True)
    result = run_training(cfg, model, resume=resume, force=force, quiet=quiet)
    if not quiet and os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 reports
        typer.echo(summary(result), err=True)
    return 130 if result.stop_reason == "interrupted" else 0


STOP_REASONS = {"epochs": "all epochs done", "max-steps": "--max-steps reached", "max-time": "--max-time reached",
                "early-stopping": "early stopping: no better validation for --patience evaluations",
                "interrupted": "interrupted"}


def summary(result) -> str:
    """The closing line: why the run stopped, how far it got, the best validation and where it is."""
    from textseq.lm.report import describe

    why = STOP_REASONS.get(result.stop_reason, result.stop_reason)
    best_loss = result.best_valid_loss
    best = (f"best valid {describe(best_loss, result.level, result.chars_per_token)}" if best_loss is not None
            else "no validation data")
    return (f"stopped ({why}) after {result.steps} steps, {result.epochs} epoch(s) in {result.elapsed:.1f} s; "
            f"{best}; best checkpoint: {result.best_checkpoint}")


def register(app: typer.Typer) -> None:
    app.command("train", cls=Command, no_args_is_help=True)(train)
