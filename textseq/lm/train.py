"""Train a recurrent language model on a token stream: ``train(LMTrainConfig, model_settings) -> LMTrainResult``.

The loop follows pytorch/examples word_language_model: parallel streams walked in TBPTT windows
with the hidden state carried (detached) from update to update, gradient clipping, validation on
the tail of the stream. See :mod:`textseq.lm.tbptt` for the three feeding modes and k1/k2. The loss
that is back-propagated includes the AR/TAR penalties (``ar``/``tar``); the loss that is logged,
reported and checked is the pure NLL of the window (also checked: the penalised loss is finite).

When the run stops (``stop_reason``): ``epochs`` (all ``epochs`` passes done; 0 = no epoch limit),
``max-steps``, ``max-time`` (the time budget ``max_time`` seconds is used up: checked at every update
boundary, so the run ends at the first boundary after the budget), ``early-stopping`` (``patience``
validations without improvement) or ``interrupted`` (Ctrl-C). Unless it stopped early right after a
validation, one more validation runs at the last step when the last one was at an earlier step, so
``best`` is never stale.

The time budget is measured from the start of the training loop (data loading and model building
excluded; validations and checkpoints included). A resumed run gets the whole budget again: it
counts the time of the current process only. With a time budget, the schedules span it: the
run's progress is the fraction ``max(step / total_steps, elapsed / max_time)`` (a resumed run maps
the rest of its schedule onto its own budget), which drives the cosine LR and, unless
``schedule_k`` is set, the scheduled-sampling decay. Epochs vs. the budget: when ``max_time`` is set
and ``epochs`` is given nowhere (flag, TOML, resumed checkpoint), :func:`resolve_config` sets
``epochs = 0`` (no epoch limit), so the run lasts until the budget or ``max_steps``; an explicit
``epochs`` still ends the run (with a warning when that happens before ``max_steps``/``max_time``).

Checkpoints (written atomically by rank 0 only): ``last`` every ``checkpoint_every`` steps, at
every epoch end, at the end and on Ctrl-C; ``best`` whenever the validation loss improves (or at
the end without validation). A run resumed from ``last`` continues exactly: weights, optimizer,
scheduler, every rank's RNG states, the stream position and the carried hidden state are restored,
so it ends with the same weights as an uninterrupted run. That holds for runs bounded by steps and
epochs; a time-bounded run stops (and, with time-driven schedules, sets its LR and teacher-forcing
probability) depending on the wall clock, so it is not bit-reproducible, resumed or not. The
validation run when Ctrl-C stops a run may update ``best`` but stays out of the resumable
training state (history, early-stopping counter, plateau scheduler), so a resume continues exactly
as if the run had not been interrupted.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from textseq import distributed as dist_util
from textseq.errors import TextseqError, check_choice
from textseq.io import LOCK_SUFFIX, OutputLock, check_output, check_output_dir, lock_owner
from textseq.lm.auto import MODEL_FIELDS as AUTO_MODEL_FIELDS
from textseq.lm.auto import TRAIN_FIELDS as AUTO_TRAIN_FIELDS
from textseq.lm.auto import choose as choose_auto
from textseq.lm.auto import min_count as auto_min_count
from textseq.lm.checkpoint import capture_rng, read_lm, restore_rng, save_lm
from textseq.lm.data import (
    SPREAD_SEGMENTS,
    VALID_SPLITS,
    batchify,
    chars_per_token,
    load_lm_data,
    shard_streams,
    split_stream,
    stream_digest,
)
from textseq.lm.evaluate import evaluate_stream, stream_rows
from textseq.lm.model import LMConfig, RNNLanguageModel
from textseq.lm.report import describe, plot_history
from textseq.lm.tbptt import (
    FEEDBACKS,
    MODES,
    SCHEDULES,
    WindowLoss,
    default_schedule_k,
    span_at,
    spans_per_epoch,
    teacher_forcing_prob,
)
from textseq.progress import ProgressReporter
from textseq.settings import Settings, check_keys, load_toml, merge
from textseq.text.tokenize import DEFAULT_LEVEL
from textseq.training import (
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULERS,
    EarlyStopping,
    autocast,
    guarded_update,
    make_optimizer,
    make_scheduler,
    resolve_precision,
)
from textseq.vocab import EOS, Vocab, VocabConfig

MODE_ALIASES = {"teacher": "teacher-forcing", "free": "free-running"}  # short names, as for the forecasters
AVERAGES = ("off", "nt")
# NT-ASGD (Merity et al. 2017): averaging starts once a validation is worse than the best of those before
# the last NONMONO ones.
NONMONO = 3
LOCK_NAME = ".textseq.lock"  # in a run directory, while a process trains into it
PRECISION_NAMES = {"fp32": "float32", "bf16": "bfloat16 mixed precision"}
# Steps over which a time-driven scheduled-sampling decay is laid out when the run has no step bound.
NOMINAL_SCHEDULE_STEPS = 10_000


def cosine_lr(base_lr: float, fraction: float) -> float:
    """Cosine annealing from ``base_lr`` at fraction 0 to 0 at fraction 1 (the run's progress)."""
    fraction = min(1.0, max(0.0, fraction))
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * fraction))


@dataclass
class LMTrainConfig(Settings):
    """Everything about a run except the model architecture (LMConfig). 0 / "" mean "not set"."""

    data: str = ""  # text file/directory, or a `textseq preprocess` output directory
    output: str = ""  # run directory (best.pt, last.pt, loss.png) or a .pt path
    level: str = DEFAULT_LEVEL
    lang: str = "auto"
    pretokenized: bool = False  # raw text already tokenized (WikiText): split on whitespace, nothing else
    min_count: int = 1
    max_vocab: int = 0
    vocab_size: int = 0  # subword level: the number of units to learn (0: textseq.text.subword.DEFAULT_VOCAB)
    embeddings: str = ""  # pretrained word vectors to initialise the embedding
    mode: str = "teacher-forcing"  # also "teacher" / "free" (MODE_ALIASES)
    schedule: str = "linear"  # scheduled sampling: how the teacher-forcing probability decays
    schedule_k: float = 0.0  # 0: decay over the whole run (see tbptt.default_schedule_k)
    min_teacher_prob: float = 0.0
    feedback: str = "argmax"  # fed-back prediction: argmax or a sample
    bptt: int = 35
    k1: int = 0  # tokens between updates (0: bptt)
    k2: int = 0  # tokens back-propagated (0: bptt)
    batch_size: int = 20
    eval_batch_size: int = 10
    epochs: int = 1  # 0: no epoch limit (needs max_steps or max_time)
    max_steps: int = 0
    max_time: float = 0.0  # seconds of training in this process (0: no limit); see the module docstring
    optimizer: str = "adam"
    lr: float = 0.002
    momentum: float = 0.0
    weight_decay: float = 0.0
    scheduler: str = "none"
    lr_step_size: int = 1000  # steps between decays of the "step" scheduler
    lr_gamma: float = 0.5  # decay factor of "step" and "plateau"
    clip: float = 1.0  # max gradient norm (0: no clipping)
    precision: str = "auto"  # fp32 | bf16 (mixed precision) | auto: bf16 where the device has it natively
    average: str = "off"  # "nt": average the weights once validation stalls (NT-ASGD's trigger), see _maybe_average
    auto: tuple[str, ...] = ()  # settings (train or model) to choose from the data and budget (textseq.lm.auto)
    kn_mix: bool = True  # at the end, fit a Kneser-Ney model and its mixing weight on validation (lm.mix)
    ar: float = 0.0  # activation regularization (AWD-LSTM AR), teacher forcing only
    tar: float = 0.0  # temporal activation regularization (AWD-LSTM TAR), teacher forcing only
    valid_ratio: float = 0.1
    valid_split: str = "spread"  # where validation comes from: "spread" over the stream or its "tail" (split_stream)
    eval_every: int = 0  # steps between validations (0: every epoch)
    patience: int = 0  # stop after this many validations without improvement (0: never)
    checkpoint_every: int = 0  # steps between periodic checkpoints (0: every epoch)
    log_every: int = 50
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False

    def validate(self) -> None:
        unknown = set(self.auto) - set(AUTO_TRAIN_FIELDS) - set(AUTO_MODEL_FIELDS)
        if unknown:
            raise TextseqError(f"cannot choose {', '.join(sorted(unknown))} automatically")
        self.mode = MODE_ALIASES.get(self.mode, self.mode)
        for name, value, allowed in (("mode", self.mode, MODES), ("schedule", self.schedule, SCHEDULES),
                                     ("feedback", self.feedback, FEEDBACKS),
                                     ("optimizer", self.optimizer, OPTIMIZERS),
                                     ("scheduler", self.scheduler, SCHEDULERS),
                                     ("average", self.average, AVERAGES),
                                     ("precision", self.precision, PRECISIONS),
                                     ("valid_split", self.valid_split, VALID_SPLITS)):
            check_choice(name, value, allowed)
        for name in ("bptt", "batch_size", "eval_batch_size", "log_every", "lr_step_size"):
            if getattr(self, name) < 1:
                raise TextseqError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("k1", "k2", "epochs", "max_steps", "max_vocab", "eval_every", "patience", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise TextseqError(f"{name.replace('_', '-')} must not be negative")
        for name in ("max_time", "ar", "tar"):
            if not 0.0 <= getattr(self, name) < math.inf:
                raise TextseqError(f"{name.replace('_', '-')} must be a finite number >= 0, got {getattr(self, name)}")
        if self.epochs == 0 and not (self.max_steps or self.max_time):
            raise TextseqError("epochs 0 (no epoch limit) needs max-steps or max-time to end the run")
        if (self.ar or self.tar) and self.mode != "teacher-forcing":
            raise TextseqError(f"ar/tar (activation regularization) work with teacher forcing only, not {self.mode}")
        if not self.lr > 0 or self.clip < 0 or self.weight_decay < 0 or self.momentum < 0:
            raise TextseqError("lr must be positive; clip, weight decay and momentum must not be negative")
        if not 0.0 < self.lr_gamma < 1.0:
            raise TextseqError(f"lr-gamma is a decay factor and must be in (0, 1), got {self.lr_gamma}")
        if self.schedule_k < 0 or (self.schedule == "exponential" and self.schedule_k >= 1):
            raise TextseqError(f"schedule-k must be 0 (default) or positive, and below 1 for the exponential "
                               f"schedule; got {self.schedule_k}")

    @property
    def tbptt(self) -> tuple[int, int]:
        return self.k1 or self.bptt, self.k2 or self.bptt


@dataclass
class LMTrainResult:
    best_checkpoint: str
    last_checkpoint: str
    steps: int
    epochs: int  # completed epochs
    stop_reason: str  # epochs | max-steps | max-time | early-stopping | interrupted
    train_loss: float  # mean NLL (nats, without AR/TAR) of the last update
    best_valid_loss: float | None  # validation NLL of the model in best_checkpoint
    tokens_per_sec: float
    history: dict
    model: nn.Module = field(repr=False)
    level: str = DEFAULT_LEVEL  # char | word | subword: how to read the losses (bpc or perplexity)
    chars_per_token: float = 1.0  # subword level: characters per piece of validation text (for bits per char)
    elapsed: float = 0.0  # seconds from the start of the training loop to the end of the run (this process)


@dataclass
class Progress:
    """Where the run is; stored in checkpoints (the carried hidden state is stored beside it)."""

    epoch: int = 0
    pos: int = 0  # next stream column to score
    step: int = 0
    tokens: int = 0  # tokens trained on, all ranks
    data_tokens: int = 0  # length of the id stream, to refuse resuming on different data
    data_digest: str | None = None  # its content (lm.data.stream_digest); None in older checkpoints
    best_valid: float | None = None
    bad_evals: int = 0
    history: dict = field(default_factory=lambda: {"train": [], "valid": []})
    # Validation NLL of the model in ``best``: below best_valid when the validation run at a Ctrl-C
    # (kept out of the training state above) found a better model. None in older checkpoints.
    best_saved: float | None = None
    schedule_fraction: float = 0.0  # the run's progress in [0, 1] at the last update (see run docstring)
    average_from: int | None = None  # step at which weight averaging started (average "nt")


@dataclass(frozen=True)
class RunPaths:
    """A run directory holds best.pt, last.pt, loss.png; ``-o model.pt`` gives model.pt,
    model.last.pt, model.loss.png instead."""

    best: Path
    last: Path
    plot: Path
    ngram: Path  # the Kneser-Ney partner of best.pt (see textseq.lm.mix)
    directory: Path | None

    @property
    def lock(self) -> Path:
        """Held by the process writing this output (see textseq.io.OutputLock)."""
        return self.directory / LOCK_NAME if self.directory is not None else self.best.with_name(
            self.best.name + LOCK_SUFFIX)

    @staticmethod
    def output_of_checkpoint(checkpoint: str | Path) -> str:
        """The output a checkpoint belongs to: RUN for RUN/last.pt or RUN/best.pt, model.pt for model.last.pt."""
        path = Path(checkpoint)
        if path.name in ("best.pt", "last.pt"):
            return str(path.parent)
        if path.name.endswith(".last.pt"):
            return str(path.with_name(path.name[: -len(".last.pt")] + ".pt"))
        return str(path)

    @classmethod
    def for_output(cls, output: str) -> RunPaths:
        out = Path(output)
        if out.suffix == ".pt":
            return cls(out, out.with_name(out.stem + ".last.pt"), out.with_name(out.stem + ".loss.png"),
                       out.with_name(out.stem + ".ngram.npz"), None)
        return cls(out / "best.pt", out / "last.pt", out / "loss.png", out / "ngram.npz", out)

    def refuse_existing(self, force: bool, check_lock: bool = True) -> None:
        """Fail fast, before any work and without creating anything, if outputs would be overwritten or another
        process is writing them (``--force`` does not override that)."""
        owner = lock_owner(self.lock) if check_lock else None
        if owner is not None:
            raise TextseqError(f"output {self.directory or self.best} is in use by another textseq process "
                               f"(pid {owner}); wait for it to finish or choose another output")
        if self.directory is not None:
            if self.directory.exists() and not self.directory.is_dir():
                raise TextseqError(f"output {self.directory} exists and is not a directory")
            others = self.directory.is_dir() and any(p.name != LOCK_NAME for p in self.directory.iterdir())
            if others and not force:
                raise TextseqError(f"output directory {self.directory} is not empty (use --force to overwrite)")
            return
        for path in (self.best, self.last):
            if path.exists() and not force:
                raise TextseqError(f"output {path} already exists (use --force to overwrite)")

    def prepare(self, force: bool) -> None:
        """Create the output location (once data and model are built, so bad input leaves nothing behind)."""
        self.refuse_existing(force, check_lock=False)  # the lock is taken next (Trainer), atomically
        if self.directory is not None:
            check_output_dir(self.directory, force=True)
        else:
            check_output(self.best, force)
            check_output(self.last, force)


def check_fits_in_memory(cfg: LMConfig) -> None:
    """Refuse, before anything is allocated or written, a model whose training state (weights, gradients and
    two Adam moments, 16 bytes per parameter) would not fit in this machine's memory."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}.get(cfg.cell, 4)
    h, e, v = cfg.hidden_size, cfg.emb_size or cfg.hidden_size, cfg.vocab_size
    recurrent = sum(gates * ((e if layer == 0 else h) * h + h * h + 2 * h) for layer in range(cfg.num_layers))
    output = 0 if cfg.tie_weights else h * v
    need = 16 * (v * e + recurrent + output)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not available on this platform: let allocation decide
        return
    if need > total:
        raise TextseqError(f"a {cfg.num_layers}x{h} model with a vocabulary of {v:,} needs about "
                           f"{need / 2**30:,.0f} GB to train; this machine has {total / 2**30:,.0f} GB; "
                           "choose a smaller --hidden/--emb")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def model_settings_from(model: dict | None) -> dict:
    model = dict(model or {})
    check_keys(LMConfig, model, "model", exclude=("vocab_size",))
    return model


class Trainer:
    """One training run; ``run()`` drives it. Built by :func:`train`."""

    def __init__(self, cfg: LMTrainConfig, model_settings: dict, info: dist_util.DistInfo,
                 resume: dict | None = None, quiet: bool = False, force: bool = False,
                 on_step: Callable[[Trainer], None] | None = None, lock: OutputLock | None = None,
                 new_output: bool = True):
        self.cfg, self.info, self.on_step = cfg, info, on_step
        self.paths = RunPaths.for_output(cfg.output)
        self.auto_model: dict = {}
        self.auto_reasons: list[str] = []
        self._load_data(resume)
        self._build_model({**self.auto_model, **model_settings} if resume is None else resume["model_config"])
        # only once data and model settings proved valid: bad input leaves nothing behind
        if new_output:
            self.paths.prepare(force)
        if lock is not None and info.is_main:
            lock.acquire()
        dist_util.barrier(info)
        self.data_digest = stream_digest(self.data.ids)
        self.progress = Progress(data_tokens=len(self.data.ids), data_digest=self.data_digest)
        self.hidden = None
        self.np_rng = np.random.default_rng(cfg.seed)
        seed_everything(cfg.seed + info.rank)
        if resume is not None:
            self._restore(resume)
        self.start_fraction = self.progress.schedule_fraction  # a resumed time budget spans the rest
        self.reporter = ProgressReporter("train", self.total_steps if math.isfinite(self.total_steps) else None,
                                         enabled=info.is_main and not quiet, log_every=cfg.log_every)
        if resume is None:
            self.reporter.log(self.header())
        self.stop_requested = False
        self.at_boundary = True
        self.elapsed = 0.0  # seconds since the loop started, the same on every rank (see _sync_boundary)
        self.side_valid: list | None = None  # [step, nll] of the validation at a Ctrl-C (not in progress)

    # ------------------------------------------------------------------ setup

    def _load_data(self, resume: dict | None) -> None:
        cfg = self.cfg
        min_count = auto_min_count(cfg.level, cfg.pretokenized) if "min_count" in cfg.auto else cfg.min_count
        vocab_cfg = VocabConfig(min_count=min_count, max_size=cfg.max_vocab or None)
        vocab = Vocab.from_dict(resume["vocab"]) if resume else None
        data = load_lm_data(cfg.data, cfg.level, cfg.lang, vocab=vocab,
                            pipeline=resume["pipeline"] if resume else None, vocab_config=vocab_cfg,
                            pretokenized=cfg.pretokenized and not resume, vocab_size=cfg.vocab_size or None)
        self.data = data
        self.level = data.pipeline.get("tokenize", {}).get("level", cfg.level)
        if cfg.auto:
            cfg = self.cfg = self._choose_settings(cfg)
        self.k1, self.k2 = cfg.tbptt
        split = split_stream(data.ids, cfg.valid_ratio, valid_split=cfg.valid_split)
        self.chars_per_token = chars_per_token(data.vocab, split.valid, self.level)
        full = batchify(split.train, cfg.batch_size)
        self.train_data = shard_streams(full, self.info.rank, self.info.world_size).to(self.info.device)
        self.n_cols = self.train_data.size(1)
        self.valid_data = stream_rows(split.valid, cfg.eval_batch_size) if len(split.valid) >= 2 else None
        epoch_steps = spans_per_epoch(self.n_cols, self.k1)
        # math.inf when neither epochs nor max_steps bound the run (a time budget does)
        self.total_steps = min(cfg.epochs * epoch_steps if cfg.epochs else math.inf, cfg.max_steps or math.inf)
        self.schedule_steps = self.total_steps if math.isfinite(self.total_steps) else NOMINAL_SCHEDULE_STEPS
        self.schedule_k = cfg.schedule_k or default_schedule_k(cfg.schedule, self.schedule_steps)

    def describe(self, nll: float) -> str:
        return describe(nll, self.level, self.chars_per_token)

    def header(self) -> str:
        """One screen on what is about to be trained, and why the automatic settings are what they are."""
        cfg, m = self.cfg, self.lm.cfg
        budget = [f"{cfg.max_time:g} s"] if cfg.max_time else []
        budget += [f"{cfg.max_steps} updates"] if cfg.max_steps else []
        budget += [f"{cfg.epochs} epoch(s)"] if cfg.epochs else []
        regs = {"dropout": m.dropout, "weight-drop": m.weight_drop, "dropout-emb": m.dropout_emb,
                "dropout-in": m.dropout_in, "dropout-between": m.dropout_between, "dropout-out": m.dropout_out,
                "ar": cfg.ar, "tar": cfg.tar}
        output = "adaptive softmax" if m.adaptive_softmax else "tied softmax" if m.tie_weights else "softmax"
        lines = [
            f"data: {self.level} level, vocabulary {len(self.data.vocab):,}, {self.n_cols * cfg.batch_size:,} "
            f"training tokens per epoch, {len(self.valid_data[0].view(-1)) if self.valid_data else 0:,} validation "
            f"({f'{SPREAD_SEGMENTS} blocks across the text' if cfg.valid_split == 'spread' else 'the tail'})",
            f"model: {m.cell.upper()} {m.num_layers}x{m.hidden_size}, embedding {m.emb_size}, {output}, "
            f"{self.lm.num_parameters():,} parameters",
            f"training: {cfg.mode}, {cfg.optimizer} lr {cfg.lr:g} ({cfg.scheduler} schedule), batch {cfg.batch_size} "
            f"x bptt {cfg.bptt}, clip {cfg.clip:g}, {PRECISION_NAMES[self.precision]}, "
            f"until {' / '.join(budget) or 'stopped'}"
            + (", weights averaged once validation stalls (NT)" if cfg.average == "nt" else ""),
            "regularization: " + (", ".join(f"{k} {v:g}" for k, v in regs.items() if v) or "none"),
        ]
        if self.auto_reasons:
            lines.append("chosen automatically (flags not given): " + "; ".join(self.auto_reasons))
        return "\n".join(lines)

    def _choose_settings(self, cfg: LMTrainConfig) -> LMTrainConfig:
        """Fill in the settings listed in ``cfg.auto`` (see textseq.lm.auto); the stored config holds the result."""
        train_tokens = int(len(self.data.ids) * (1 - cfg.valid_ratio))
        chosen = choose_auto(self.level, train_tokens, len(self.data.vocab), cfg.max_time, cfg.pretokenized)
        self.auto_model = {k: v for k, v in chosen.model.items() if k in cfg.auto}
        self.auto_reasons = chosen.reasons
        if "min_count" in cfg.auto and chosen.train["min_count"] > 1:
            self.auto_reasons.append(f"tokens seen fewer than {chosen.train['min_count']} times read as <unk> "
                                     "(--min-count)")
        return replace(cfg, auto=(), **{k: v for k, v in chosen.train.items() if k in cfg.auto})

    def _build_model(self, settings: dict) -> None:
        cfg, info = self.cfg, self.info
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        lm_cfg = LMConfig.from_dict({**settings, "vocab_size": len(self.data.vocab)})
        check_fits_in_memory(lm_cfg)
        try:
            self.lm = RNNLanguageModel(lm_cfg)
        except (RuntimeError, MemoryError):
            raise TextseqError(f"cannot allocate a {lm_cfg.num_layers}x{lm_cfg.hidden_size} model with a "
                               f"vocabulary of {lm_cfg.vocab_size:,}; choose a smaller --hidden/--emb") from None
        if cfg.embeddings:
            self._load_embeddings()
        self.lm.to(info.device)
        # token-by-token modes (free running, scheduled sampling) run many small steps, where autocast's casts cost
        # more than bfloat16 saves (bench_lm: 57 s vs 22 s for 300 free-running updates): auto keeps float32 there
        per_token = cfg.mode != "teacher-forcing"
        self.precision = resolve_precision("fp32" if cfg.precision == "auto" and per_token else cfg.precision,
                                           info.device)
        self.window_loss = WindowLoss(self.lm, cfg.mode, cfg.feedback, ar=cfg.ar, tar=cfg.tar)
        self.step_fn = self.window_loss
        if info.enabled:
            self.step_fn = nn.parallel.DistributedDataParallel(
                self.window_loss, find_unused_parameters=lm_cfg.adaptive_softmax)
        self.optimizer = make_optimizer(cfg.optimizer, self.lm.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
        # cosine: the LR is set before every update from the run's progress (_train_step), no scheduler state
        self.scheduler = None if cfg.scheduler == "cosine" else make_scheduler(
            cfg.scheduler, self.optimizer, self.schedule_steps, cfg.lr_step_size, cfg.lr_gamma)
        self.averaged: AveragedModel | None = None  # the running mean of the weights, once averaging started

    def _load_embeddings(self) -> None:
        from textseq.features.embeddings import load_vectors

        found = self.lm.init_embeddings(load_vectors(self.cfg.embeddings), self.data.vocab)
        if found == 0:
            raise TextseqError(f"none of the vocabulary is in {self.cfg.embeddings}; wrong vectors file?")

    def _restore(self, ckpt: dict) -> None:
        self.lm.load_state_dict(ckpt["model_state"])
        if ckpt.get("optimizer") is None or ckpt.get("progress") is None:
            raise TextseqError("this checkpoint has no training state (optimizer/progress); cannot resume")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("average") is not None:
            self.averaged = AveragedModel(self.lm)
            self.averaged.load_state_dict(ckpt["average"])
        rngs = ckpt["rng"]
        if len(rngs) != self.info.world_size:
            raise TextseqError(f"the checkpoint was written by {len(rngs)} process(es); resume with the same "
                               f"number (got {self.info.world_size}) to continue exactly")
        restore_rng(rngs[self.info.rank], self.np_rng)
        progress = dict(ckpt["progress"])
        self.hidden = self._local_hidden(progress.pop("hidden"))
        self.progress = Progress(**progress)
        if self.progress.best_saved is None:  # a checkpoint from before best_saved existed
            self.progress.best_saved = self.progress.best_valid
        if self.progress.data_tokens != len(self.data.ids):
            raise TextseqError(f"the training data changed since the checkpoint ({self.progress.data_tokens} "
                               f"tokens then, {len(self.data.ids)} now); resume on the same data")
        if self.progress.data_digest not in (None, self.data_digest):
            raise TextseqError("the training data changed since the checkpoint (same length, different "
                               "content); resume on the same data")
        self.progress.data_digest = self.data_digest

    def _local_hidden(self, hidden):
        """This rank's block of the saved (all-streams) hidden state."""
        if hidden is None:
            return None
        if isinstance(hidden, (list, tuple)):
            return tuple(self._local_hidden(h) for h in hidden)
        return shard_streams(hidden.transpose(0, 1), self.info.rank, self.info.world_size) \
            .transpose(0, 1).contiguous().to(self.info.device)

    # ------------------------------------------------------------------ the loop

    def run(self) -> LMTrainResult:
        self.start_time, self.start_tokens = time.perf_counter(), self.progress.tokens
        self.last_loss = math.nan
        with self.reporter, _deferred_sigint(self):
            try:
                reason = self._loop()
            except KeyboardInterrupt:
                if not self.at_boundary:
                    raise
                reason = "interrupted"
            self._final_validation(reason)
        return self._finish(reason)

    def _loop(self) -> str:
        cfg, progress = self.cfg, self.progress
        while not cfg.epochs or progress.epoch < cfg.epochs:
            if progress.pos >= self.n_cols - 1:
                reason = self._end_epoch()
                if reason:
                    return reason
                if self._sync_boundary():  # the epoch-end validation and checkpoint take time too
                    return "interrupted"
            if cfg.max_steps and progress.step >= cfg.max_steps:
                return "max-steps"
            if self.time_up():
                return "max-time"
            self.at_boundary = False
            self._train_step()
            self.at_boundary = True
            if cfg.eval_every and progress.step % cfg.eval_every == 0 and self._validate():
                return "early-stopping"
            if cfg.checkpoint_every and progress.step % cfg.checkpoint_every == 0:
                self._save(self.paths.last)
            if self.on_step is not None:
                self.on_step(self)
            if self._sync_boundary():
                return "interrupted"
        return "epochs"

    def _end_epoch(self) -> str | None:
        progress = self.progress
        progress.epoch, progress.pos, self.hidden = progress.epoch + 1, 0, None
        early_stop = not self.cfg.eval_every and self._validate()
        self._save(self.paths.last)
        if early_stop:
            return "early-stopping"
        return "epochs" if self.cfg.epochs and progress.epoch >= self.cfg.epochs else None

    def time_up(self) -> bool:
        return self.cfg.max_time > 0 and self.elapsed >= self.cfg.max_time

    def schedule_fraction(self) -> float:
        """The run's progress in [0, 1]: ``step / total_steps``, or with a time budget the larger of
        that and the share of the budget used (from where a resumed run's schedule had got to)."""
        fraction = self.progress.step / self.total_steps if math.isfinite(self.total_steps) else 0.0
        if self.cfg.max_time > 0:
            used = min(1.0, self.elapsed / self.cfg.max_time)
            fraction = max(fraction, self.start_fraction + (1.0 - self.start_fraction) * used)
        return min(1.0, fraction)

    def _teacher_prob(self, fraction: float) -> float:
        cfg = self.cfg
        if cfg.mode != "scheduled-sampling":
            return 1.0 if cfg.mode == "teacher-forcing" else 0.0
        if cfg.max_time > 0 and not cfg.schedule_k:  # the decay spans the time budget
            return teacher_forcing_prob(cfg.schedule, fraction * self.schedule_steps, self.schedule_k,
                                        cfg.min_teacher_prob)
        return teacher_forcing_prob(cfg.schedule, self.progress.step, self.schedule_k, cfg.min_teacher_prob)

    def _sync_boundary(self) -> bool:
        """At an update boundary: whether Ctrl-C was pressed on any rank (every rank then stops at the
        same update), and the elapsed time as every rank sees it (the mean over ranks), so the time
        budget and the time-driven schedules agree across ranks. One collective."""
        local = torch.tensor([float(self.stop_requested), time.perf_counter() - self.start_time],
                             dtype=torch.float64, device=self.info.device)
        stop, elapsed = dist_util.mean_across(local, self.info).tolist()
        self.elapsed = elapsed
        return stop > 0

    def _train_step(self) -> None:
        cfg, progress = self.cfg, self.progress
        span = span_at(progress.pos, self.n_cols, self.k1, self.k2)
        fraction = progress.schedule_fraction = self.schedule_fraction()
        if cfg.scheduler == "cosine":
            for group in self.optimizer.param_groups:
                group["lr"] = cosine_lr(cfg.lr, fraction)
        self.lm.train()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.precision, self.info.device):
            loss, hidden = self.step_fn(self.train_data, span, self.hidden, self._teacher_prob(fraction))
        nll = guarded_update(loss, self.optimizer, self.lm.parameters(), cfg.clip, reduce=self._reported_nll,
                             hint=f"at step {progress.step + 1}; lower --lr or set --clip (e.g. --clip 0.25)")
        if self.scheduler is not None and cfg.scheduler != "plateau":
            self.scheduler.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.lm)
        self.hidden = _as_float(hidden)  # a bfloat16 state is carried exactly as float32
        progress.pos, progress.step = span.end, progress.step + 1
        progress.tokens += (span.end - span.loss_start) * cfg.batch_size
        self._record(nll)

    def _reported_nll(self, loss: torch.Tensor) -> torch.Tensor:
        """What guarded_update checks and returns: the pure NLL of the window (without AR/TAR), the mean
        over ranks; or the back-propagated (penalised) loss itself when that is not finite."""
        both = torch.stack([self.window_loss.last_nll.float(), loss.detach().float()])
        both = dist_util.mean_across(both, self.info)
        return both[0] if torch.isfinite(both[1]) else both[1]

    def _record(self, nll: float) -> None:
        progress = self.progress
        self.last_loss = nll
        if progress.step % self.cfg.log_every == 0 or progress.step == 1:
            progress.history["train"].append([progress.step, nll])
        self.reporter.update(progress.step,
                             stats=f"{self.describe(nll)} {self.tokens_per_sec():,.0f} tok/s")

    def tokens_per_sec(self) -> float:
        elapsed = time.perf_counter() - self.start_time
        return (self.progress.tokens - self.start_tokens) / elapsed if elapsed > 0 else 0.0

    def _validate(self) -> bool:
        """Evaluate on the validation tail; save ``best`` on improvement; returns "stop early"."""
        if self.valid_data is None:
            return False
        progress = self.progress
        nll = evaluate_stream(self.weights(), *self.valid_data, self.cfg.bptt)
        self._maybe_average(nll)
        progress.history["valid"].append([progress.step, nll])
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(nll)
        stopper = EarlyStopping(self.cfg.patience, progress.best_valid, progress.bad_evals)
        stopper.update(nll)
        progress.best_valid, progress.bad_evals = stopper.best, stopper.bad_evals
        saved = self._save_best_if_better(nll)
        self.reporter.log(f"step {progress.step} valid {self.describe(nll)}" + (" (best)" if saved else ""))
        self._plot()
        return stopper.should_stop

    def weights(self) -> RNNLanguageModel:
        """The model that is validated and saved as ``best``: the averaged weights once averaging started."""
        return self.averaged.module if self.averaged is not None else self.lm

    def _maybe_average(self, nll: float) -> None:
        """NT-ASGD's trigger (Merity et al. 2017), here for any optimizer: once a validation is worse than
        the best one before the last NONMONO, the weights from then on are averaged (Polyak averaging:
        the mean of the weights after every update) and that mean is what is validated and saved."""
        earlier = [loss for _, loss in self.progress.history["valid"]]
        if self.cfg.average != "nt" or self.averaged is not None or len(earlier) <= NONMONO:
            return
        if nll > min(earlier[:-NONMONO]):
            self.averaged = AveragedModel(self.lm)
            self.averaged.update_parameters(self.lm)
            self.progress.average_from = self.progress.step
            self.reporter.log(f"step {self.progress.step}: validation stalled, averaging the weights from here on")

    def _save_best_if_better(self, nll: float) -> bool:
        progress = self.progress
        if progress.best_saved is not None and not nll < progress.best_saved:
            return False
        progress.best_saved = nll
        self._save(self.paths.best)
        return True

    def _final_validation(self, reason: str) -> None:
        """Validate at the last step unless that just happened (or the run stopped early right after a
        validation), so that ``best`` is never stale. After a Ctrl-C, ``last`` is written first and the
        validation stays out of the resumable state (only ``best`` and ``best_saved`` may change)."""
        progress = self.progress
        valid = progress.history["valid"]
        if reason == "early-stopping" or self.valid_data is None or (valid and valid[-1][0] == progress.step):
            return
        if reason != "interrupted":
            self._validate()  # the run is over: its early-stopping verdict does not matter any more
            return
        self._save(self.paths.last)  # the exact state first: a second Ctrl-C may cut the validation short
        nll = evaluate_stream(self.weights(), *self.valid_data, self.cfg.bptt)
        self.side_valid = [progress.step, nll]
        saved = self._save_best_if_better(nll)
        self.reporter.log(f"step {progress.step} valid {self.describe(nll)}" + (" (best)" if saved else ""))

    # ------------------------------------------------------------------ output

    def _save(self, path: Path) -> None:
        """Collective (every rank must call it: RNG states and hidden states are gathered); rank 0 writes."""
        rngs = dist_util.gather_objects(capture_rng(self.np_rng), self.info)
        hidden = self._global_hidden()
        if not self.info.is_main:
            return
        # best holds the validated weights (averaged, once averaging started); last the training state
        best = path == self.paths.best
        save_lm(path, self.weights() if best else self.lm, train_config=asdict(self.cfg),
                pipeline=self.data.pipeline, vocab=self.data.vocab, sources=self.data.sources,
                optimizer=self.optimizer, scheduler=self.scheduler, rng=rngs,
                progress={**asdict(self.progress), "hidden": hidden},
                average=None if best or self.averaged is None else self.averaged.state_dict())

    def _global_hidden(self):
        if self.hidden is None:
            return None
        parts = dist_util.gather_objects(_to_cpu(self.hidden), self.info)
        if isinstance(self.hidden, tuple):
            return tuple(torch.cat([p[i] for p in parts], dim=1) for i in range(len(self.hidden)))
        return torch.cat(parts, dim=1)

    def history(self) -> dict:
        """The loss history, with the validation at a Ctrl-C (not part of the resumable state)."""
        history = self.progress.history
        if self.side_valid is None:
            return history
        return {**history, "valid": [*history["valid"], self.side_valid]}

    def _plot(self) -> None:
        if self.info.is_main:
            plot_history(self.history(), self.paths.plot, self.level, self.chars_per_token)

    def _finish(self, reason: str) -> LMTrainResult:
        tokens_per_sec = self.tokens_per_sec()
        elapsed = time.perf_counter() - self.start_time
        self._save(self.paths.last)
        if self.valid_data is None or self.progress.best_saved is None:
            self._save(self.paths.best)
        self._plot()
        if reason == "interrupted":
            self.reporter.log(f"interrupted: saved {self.paths.last} (resume with --resume {self.paths.last})")
        elif self.cfg.kn_mix and self.info.is_main:
            self._fit_ngram_mix()
        self._warn_if_epochs_cut_short(reason, elapsed)
        return LMTrainResult(str(self.paths.best), str(self.paths.last), self.progress.step, self.progress.epoch,
                             reason, self.last_loss, self.progress.best_saved, tokens_per_sec,
                             self.history(), self.weights(), level=self.level,
                             chars_per_token=self.chars_per_token, elapsed=elapsed)

    def _fit_ngram_mix(self) -> None:
        """Fit the KN partner of best.pt on the training split, its order and the mixing weight on the
        validation split; store the model beside best.pt and the mix settings in it. The continuous cache's
        parameters (textseq.lm.cache) and the dynamic evaluation's learning rate (textseq.lm.dynamic) are fitted
        on the validation split too."""
        from textseq.checkpoint import save_checkpoint
        from textseq.lm.cache import DEFAULT_SIZE as CACHE_SIZE
        from textseq.lm.cache import fit_cache
        from textseq.lm.checkpoint import KIND, build_lm
        from textseq.lm.dynamic import describe_dynamic, fit_dynamic
        from textseq.lm.evaluate import token_logprobs
        from textseq.lm.mix import (
            NGRAM_ORDERS,
            NgramMix,
            complete_lines,
            describe_mix,
            fit_bucket_weights,
            fit_ngram,
            fit_weight,
            mixed_logp,
        )

        eos = self.data.vocab.stoi[EOS]
        split = split_stream(self.data.ids, self.cfg.valid_ratio, valid_split=self.cfg.valid_split)
        valid = complete_lines(split.valid, eos)
        if len(valid) < 2:
            return
        kn, kn_logp, strength = fit_ngram(np.asarray(split.train), valid, self.data.vocab, NGRAM_ORDERS[self.level])
        best = read_lm(self.paths.best)
        best_lm, stream = build_lm(best, self.info.device), np.concatenate([[eos], valid])
        lm_logp = token_logprobs(best_lm, stream, self.cfg.eval_batch_size, self.cfg.bptt)
        weight, _ = fit_weight(lm_logp, kn_logp)
        weights, mix_nll = fit_bucket_weights(lm_logp, kn_logp, strength, kn.strength_levels, weight)
        rows = stream_rows(stream, self.cfg.eval_batch_size)
        cache = fit_cache(best_lm, *rows, lm_logp, CACHE_SIZE[self.level], self.cfg.bptt)
        # the cache once more, on top of the LM+KN mix (its own weight: the mix already covers part of what it adds)
        mix_logp = mixed_logp(lm_logp, kn_logp, np.asarray(weights)[strength])
        cache_with_kn = fit_cache(best_lm, *rows, mix_logp, CACHE_SIZE[self.level], self.cfg.bptt)
        dynamic, dynamic_logp = fit_dynamic(best_lm, stream, lm_logp, self.cfg.bptt)
        if dynamic.lr > 0:
            dynamic.kn_weight, _ = fit_weight(dynamic_logp, kn_logp)
            dynamic.kn_weights, dynamic.valid_nll_dynamic_kn = fit_bucket_weights(
                dynamic_logp, kn_logp, strength, kn.strength_levels, dynamic.kn_weight)
        kn.save(self.paths.ngram)
        mix = NgramMix(self.paths.ngram.name, kn.order, weight, float(-lm_logp.mean()), float(-kn_logp.mean()),
                       mix_nll, weights)
        save_checkpoint(self.paths.best, KIND, {**best, "ngram": mix.to_dict(), "cache": cache.to_dict(),
                                                "cache_with_kn": cache_with_kn.to_dict(),
                                                "dynamic": dynamic.to_dict()})
        self.reporter.log(describe_mix(mix, self.level, self.chars_per_token))
        for name, fitted in (("cache", cache), ("LM+KN+cache", cache_with_kn)):
            before, after = (describe(nll, self.level, self.chars_per_token)
                             for nll in (fitted.valid_nll_lm, fitted.valid_nll_cache))
            self.reporter.log(f"{name} of {fitted.size}: weight {fitted.weight:.2f}, theta {fitted.theta:g} "
                              f"(validation: {before} -> {after})")
        self.reporter.log(describe_dynamic(dynamic, self.level, self.chars_per_token))

    def _warn_if_epochs_cut_short(self, reason: str, elapsed: float) -> None:
        cfg = self.cfg
        if reason != "epochs":
            return
        missed = []
        if cfg.max_steps and self.progress.step < cfg.max_steps:
            missed.append(f"--max-steps {cfg.max_steps}")
        if cfg.max_time and elapsed < cfg.max_time:
            missed.append(f"--max-time {cfg.max_time:g}")
        if missed:
            self.reporter.log(f"warning: --epochs {cfg.epochs} ended the run after {self.progress.step} steps, "
                              f"before {' and '.join(missed)}; raise --epochs (or --epochs 0: no epoch limit) "
                              f"to train longer")


def _as_float(hidden):
    return tuple(h.float() for h in hidden) if isinstance(hidden, tuple) else hidden.float()


def _to_cpu(hidden):
    return tuple(h.detach().cpu() for h in hidden) if isinstance(hidden, tuple) else hidden.detach().cpu()


class _deferred_sigint:
    """Ctrl-C asks the loop to stop after the current update (then it saves and exits cleanly);
    a second Ctrl-C interrupts at once."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.previous = trainer, None

    def _handler(self, signum, frame) -> None:
        self.trainer.stop_requested = True
        signal.signal(signal.SIGINT, self.previous)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def train(cfg: LMTrainConfig, model: dict | None = None, *, resume: str | None = None, force: bool = False,
          quiet: bool = False, on_step: Callable[[Trainer], None] | None = None) -> LMTrainResult:
    """Train (or resume) an LM. ``model`` holds LMConfig fields except vocab_size (ignored on resume:
    the checkpoint's architecture is used). ``on_step(trainer)`` runs after every update."""
    if not cfg.data:
        raise TextseqError("no training data given")
    if not cfg.output:
        raise TextseqError("no output given (-o RUN_DIR or -o model.pt)")
    settings = model_settings_from(model)
    # absolute paths in the stored config: a resume may start from another working directory
    cfg = replace(cfg, data=str(Path(cfg.data).resolve()), output=str(Path(cfg.output).resolve()))
    info = dist_util.setup(cfg.device)
    paths = RunPaths.for_output(cfg.output)
    lock = OutputLock(paths.lock, f"output {paths.directory or paths.best}")
    created = paths.directory is not None and not paths.directory.exists()
    try:
        ckpt = read_lm(resume) if resume else None
        # a resumed run continues in its own output; any other output must be free (or --force)
        in_place = ckpt is not None and Path(cfg.output) == Path(RunPaths.output_of_checkpoint(resume)).resolve()
        if not in_place:
            paths.refuse_existing(force, check_lock=info.is_main)
        trainer = Trainer(cfg, settings, info, resume=ckpt, quiet=quiet, force=force, on_step=on_step, lock=lock,
                          new_output=not in_place)
        result = trainer.run()
        dist_util.barrier(info)  # no rank tears gloo down while another still talks to it (it aborts then)
        return result
    finally:
        lock.release()
        if created and info.is_main:  # a run that failed before writing anything leaves no empty directory
            with contextlib.suppress(OSError):
                paths.directory.rmdir()
        dist_util.teardown(info)


# The layout of the data streams and the hidden state carried across them.
FIXED_ON_RESUME = ("level", "lang", "pretokenized", "vocab_size", "batch_size", "valid_ratio", "valid_split")


def resolve_config(train_overrides: dict, model_overrides: dict, config_file: str | None = None,
                   resume: str | None = None, auto: bool = False) -> tuple[LMTrainConfig, dict]:
    """Defaults < resumed checkpoint's config < TOML file < command-line flags (None = not given).

    Epochs vs. a time budget: when ``max_time`` ends up > 0 and ``epochs`` was given nowhere (no flag,
    no TOML key, not a resume: a checkpoint's config always holds it), ``epochs`` becomes 0, no epoch
    limit, so that the budget (or ``max_steps``) ends the run rather than the default single epoch."""
    train_base: dict = {}
    model_base: dict = {}
    if resume:
        ckpt = read_lm(resume)
        train_base = dict(ckpt["train_config"])
        model_base = {k: v for k, v in ckpt["model_config"].items() if k != "vocab_size"}
    if resume:  # a resumed run continues where its checkpoint is (not where the copied run came from)
        train_base["output"] = RunPaths.output_of_checkpoint(resume)
    if config_file:
        tables = load_toml(config_file, ("train", "model"))
        train_base.update(tables["train"])
        model_base.update(tables["model"])
    model = merge(model_base, model_overrides)
    if resume and model != model_base:
        raise TextseqError("the model architecture cannot change when resuming; drop the model flags")
    train = merge(train_base, train_overrides)
    if "epochs" not in train and isinstance(train.get("max_time"), (int, float)) and train["max_time"] > 0:
        train["epochs"] = 0
    if auto and not resume:  # what the user gave nowhere is chosen from the data and budget
        train["auto"] = tuple(k for k in AUTO_TRAIN_FIELDS if k not in train) + tuple(
            k for k in AUTO_MODEL_FIELDS if k not in model)
    if resume:
        changed = [key for key in FIXED_ON_RESUME if train.get(key) != train_base.get(key)]
        if changed:
            flags = ", ".join("--" + key.replace("_", "-") for key in changed)
            raise TextseqError(f"{flags} cannot change when resuming (the carried streams depend on it)")
    return LMTrainConfig.from_dict(train, "train"), model_settings_from(model)
