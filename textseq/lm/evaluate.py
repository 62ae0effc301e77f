"""Held-out evaluation of an LM checkpoint, teacher-forced and free-running, beside a Kneser-Ney baseline.

All three numbers score exactly the same events: the held-out text is tokenized by the
checkpoint's pipeline and mapped through its vocabulary (OOV -> ``<unk>``), and every token of
every line plus the line's ``<eos>`` is predicted once (the RNN reads the stream from an initial
``<eos>``, the n-gram model from ``<bos>``).

Free-running k-step evaluation makes exposure bias visible: from a position t (hidden state
computed on the true prefix) the model reads the true token, then runs k-1 more steps on its own
argmax predictions, while each step is scored on the TRUE next token. Horizon 1 is teacher forcing;
the reported number is the mean over horizons 1..k. Rollouts start every ``stride`` positions.

The LM is also scored with the continuous cache (:mod:`textseq.lm.cache`) and with dynamic evaluation
(:mod:`textseq.lm.dynamic`), each alone and mixed with the Kneser-Ney partner, with the settings fitted on the
validation split when training.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from textseq.errors import TextseqError
from textseq.lm.data import chars_per_token, load_lm_data, split_docs, split_stream
from textseq.lm.mix import event_weights, load_partner, mixed_logp, parse_mix
from textseq.lm.report import PER_CHAR, metric_name, metric_value
from textseq.models.cells import detach_hidden
from textseq.text.pipeline import Pipeline
from textseq.vocab import EOS, UNK, Vocab

IGNORE = -100
FREE_RUNNING_ROWS = 256  # rollouts run in parallel over this many stretches of the text


def stream_rows(ids: np.ndarray, rows: int) -> tuple[Tensor, Tensor]:
    """inputs/targets [rows, n] covering every target of ``ids`` exactly once.

    Row b reads ids[b*n : b*n+n] and predicts the next token of each; the last row is padded
    (inputs with 0, targets with IGNORE).
    """
    n_targets = len(ids) - 1
    if n_targets < 1:
        raise TextseqError("nothing to evaluate: the text has fewer than 2 tokens")
    rows = max(1, min(rows, n_targets))
    n = math.ceil(n_targets / rows)
    flat = torch.as_tensor(np.asarray(ids).astype(np.int64))
    inputs = torch.zeros(rows * n, dtype=torch.long)
    targets = torch.full((rows * n,), IGNORE, dtype=torch.long)
    inputs[:n_targets], targets[:n_targets] = flat[:-1], flat[1:]
    return inputs.view(rows, n), targets.view(rows, n)


@torch.no_grad()
def evaluate_stream(lm, inputs: Tensor, targets: Tensor, bptt: int = 35) -> float:
    """Teacher-forced mean NLL (nats) over all non-padding targets, hidden state carried."""
    lm.eval()
    device = next(lm.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)
    total, hidden = 0.0, None
    for start in range(0, inputs.size(1), bptt):
        features, hidden = lm(inputs[:, start:start + bptt], hidden)
        total += float(lm.loss(features, targets[:, start:start + bptt], reduction="sum", ignore_index=IGNORE))
    return total / int((targets != IGNORE).sum())


@torch.no_grad()
def token_logprobs(lm, ids: np.ndarray, batch_size: int = 16, bptt: int = 35, adapt_lr: float = 0.0) -> np.ndarray:
    """Teacher-forced natural-log P of ``ids[1:]``, each given the stream before it, in stream order.

    ``adapt_lr`` > 0 is dynamic evaluation (``textseq.lm.dynamic``): after a segment is scored, one SGD step on
    its loss, so ``lm`` itself changes (give it a copy). Dropout stays off (evaluation mode) either way."""
    lm.eval()
    device = next(lm.parameters()).device
    inputs, targets = (t.to(device) for t in stream_rows(ids, batch_size))  # [B, n]
    logp, hidden = torch.zeros(targets.shape, dtype=torch.float64, device=device), None
    for start in range(0, inputs.size(1), bptt):
        segment = slice(start, start + bptt)
        with torch.set_grad_enabled(adapt_lr > 0):
            features, hidden = lm(inputs[:, segment], hidden)
            nll = lm.loss(features, targets[:, segment], reduction="none", ignore_index=IGNORE)  # [B, T]
            logp[:, segment] = -nll.detach().double()
            if adapt_lr > 0:
                lm.zero_grad(set_to_none=True)
                (nll.sum() / nll.size(1)).backward()  # summed over rows, averaged over the segment's steps
                hidden = detach_hidden(hidden)
                with torch.no_grad():  # plain SGD, outside autograd
                    for p in lm.parameters():
                        if p.grad is not None:
                            p.add_(p.grad, alpha=-adapt_lr)
    keep = targets.reshape(-1) != IGNORE  # rows are consecutive chunks: row-major order is stream order
    return logp.reshape(-1)[keep].cpu().numpy()


@torch.no_grad()
def free_running_nll(lm, inputs: Tensor, targets: Tensor, horizon: int, stride: int | None = None) -> list[float]:
    """Mean NLL (nats) at each horizon 1..k of greedy rollouts (see the module docstring)."""
    if horizon < 1:
        raise TextseqError(f"the free-running horizon must be at least 1, got {horizon}")
    lm.eval()
    device = next(lm.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)
    stride = stride or horizon
    sums, counts = torch.zeros(horizon, dtype=torch.float64), torch.zeros(horizon, dtype=torch.float64)
    hidden = None
    n = inputs.size(1)
    for start in range(0, n - horizon + 1, stride):
        state, ids = hidden, inputs[:, start]
        for j in range(horizon):
            log_probs, state = lm.step(ids, state)
            truth = targets[:, start + j]
            keep = truth != IGNORE
            nll = -log_probs.gather(1, truth.clamp(min=0).unsqueeze(1)).squeeze(1)
            sums[j] += float((nll * keep).sum())
            counts[j] += float(keep.sum())
            ids = log_probs.argmax(dim=-1)
        _, hidden = lm(inputs[:, start:start + stride], hidden)
    if counts[0] == 0:
        raise TextseqError(f"the held-out text is too short for {horizon}-step rollouts")
    return (sums / counts.clamp(min=1)).tolist()


@dataclass
class LMEvalRow:
    name: str
    nll: float  # mean nats per token
    metric: float  # bits per char (char, subword) or perplexity (word)
    vs_kn: float | None = None  # metric / the Kneser-Ney row's metric (lower is better)


@dataclass
class LMEvalReport:
    level: str
    tokens: int
    oov_rate: float
    rows: list[LMEvalRow]
    horizon_nll: list[float] = field(default_factory=list)
    mix_weight: float | None = None  # the LM's weight in the "RNN + KN" row
    generated: list = field(default_factory=list)  # TextStats rows: sampled, greedy, the held-out text itself
    chars: int = 0  # characters of text the predicted tokens spell (char and subword levels; line ends included)

    @property
    def metric(self) -> str:
        return metric_name(self.level)

    def to_markdown(self) -> str:
        lines = [f"| model | NLL (nats/token) | {self.metric} | vs KN |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {r.name} | {r.nll:.4f} | {r.metric:.4f} | {_ratio(r.vs_kn)} |" for r in self.rows]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"metric": self.metric, "level": self.level, "tokens": self.tokens, "chars": self.chars or None,
                "oov_rate": self.oov_rate,
                "mix_weight": self.mix_weight, "horizon_nll": self.horizon_nll,
                "rows": [asdict(row) for row in self.rows], "generated": [asdict(row) for row in self.generated]}


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _row(name: str, nll: float, level: str, chars_per_token: float = 1.0) -> LMEvalRow:
    return LMEvalRow(name, nll, metric_value(nll, level, chars_per_token))


def heldout_ids(text: str | os.PathLike, pipeline: Pipeline, vocab: Vocab) -> list[list[int]]:
    """Held-out lines as the model reads them: the checkpoint's pipeline, then ids (OOV -> ``<unk>``), once."""
    from textseq.text.reader import read_lines

    return [vocab.encode(tokens) for tokens in pipeline.process_lines(read_lines(text))]


def heldout_docs(text: str | os.PathLike, pipeline: dict, vocab: Vocab) -> list[list[str]]:
    """Held-out lines as tokens (OOV replaced by ``<unk>``), for token-level models such as the n-gram baseline."""
    from textseq.text.pipeline import PipelineConfig

    return [vocab.decode(ids) for ids in heldout_ids(text, Pipeline(PipelineConfig.from_dict(pipeline)), vocab)]


def training_part(ids: np.ndarray, train_config: dict) -> np.ndarray:
    """The ids a checkpoint (its ``read_lm`` train_config) was trained on, out of its whole corpus stream."""
    return split_stream(ids, train_config["valid_ratio"], valid_split=train_config["valid_split"]).train


def training_docs(ckpt: dict, vocab: Vocab, train_text: str | None) -> list[list[str]]:
    """The training part of the checkpoint's corpus (same split), as token lines."""
    sources = [train_text] if train_text else ckpt.get("sources") or []
    if not sources or not all(os.path.exists(s) for s in sources):
        raise TextseqError(f"the training text {', '.join(sources) or '(unknown)'} is not available; "
                           "pass --train-text to fit the n-gram baseline (or --no-baseline)")
    docs = []
    for source in sources:
        data = load_lm_data(source, vocab=vocab, pipeline=ckpt["pipeline"])
        ids = data.ids if train_text else training_part(data.ids, ckpt["train_config"])
        docs += [vocab.decode(doc.tolist()) for doc in split_docs(ids, vocab.stoi[EOS])]
    return docs


def evaluate_checkpoint(checkpoint: str | os.PathLike, text: str | os.PathLike, *, horizon: int = 10,
                        stride: int | None = None, baseline: bool = True, order: int | None = None,
                        train_text: str | None = None, batch_size: int = 16, device: str = "cpu",
                        mix_kn: str | float | None = "auto", cache: str | int | None = "auto",
                        dynamic: str | float | None = "auto", samples: int = 0, sample_tokens: int = 100,
                        seed: int = 0) -> LMEvalReport:
    """Teacher-forced and free-running scores of a checkpoint on ``text``, the Kneser-Ney baseline, and the
    two mixed (``mix_kn``: "auto" = the weight fitted on validation at training time, a number = the LM's
    weight, None = no mix). ``cache``: "auto" (the continuous cache with the size and parameters fitted when
    training), a cache size (those parameters), or None. ``dynamic``: dynamic evaluation
    (:mod:`textseq.lm.dynamic`) with "auto" (the learning rate fitted when training), a learning rate, or None.
    ``horizon`` 0 skips the free-running rollouts.
    ``samples`` > 0 continues that many held-out prompts by ``sample_tokens`` tokens, sampled and greedy, and
    measures the text (:mod:`textseq.lm.textstats`) next to the held-out text that really follows."""
    from textseq.distributed import pick_device
    from textseq.lm.checkpoint import LMCheckpoint

    if stride is not None and stride < 1:
        raise TextseqError(f"--stride must be at least 1 (0: the horizon), got {stride}")
    if horizon < 0:
        raise TextseqError(f"the horizon (-k) must be 0 (no rollouts) or positive, got {horizon}")
    ckpt = LMCheckpoint.load(checkpoint, pick_device(device))
    vocab, level = ckpt.vocab, ckpt.level
    id_docs = heldout_ids(text, ckpt.pipeline, vocab)
    eos = vocab.stoi[EOS]
    stream = np.asarray([eos] + [i for doc in id_docs for i in doc + [eos]], dtype=np.int64)
    unk = vocab.stoi.get(UNK)
    if unk is not None and len(stream) > 1 and np.all(stream[stream != eos] == unk):
        raise TextseqError(f"none of the tokens of {text} is known to the model (all read as {UNK}); "
                           "evaluate on text like the training text")
    lm_logp = token_logprobs(ckpt.model, stream, batch_size, ckpt.train_config.get("bptt", 35))
    per_char = chars_per_token(vocab, stream, level)  # 1 but for subword pieces
    rows = [_row("RNN teacher-forced", float(-lm_logp.mean()), level, per_char)]
    horizons: list[float] = []
    if horizon:
        free_rows = max(batch_size, min(FREE_RUNNING_ROWS, (len(stream) - 1) // (2 * horizon)))  # rollouts fit
        inputs, targets = stream_rows(stream, free_rows)
        horizons = free_running_nll(ckpt.model, inputs, targets, horizon, stride)
        rows.append(_row(f"RNN free-running ({horizon}-step)", float(np.mean(horizons)), level, per_char))
    weight, mix_logp, kn_logp, strength = None, None, None, None
    if baseline or mix_kn is not None:
        token_docs = [vocab.decode(doc) for doc in id_docs]  # the n-gram model reads tokens
        ngram, stored = _ngram_model(ckpt, Path(checkpoint), order, train_text)
        kn_logp, strength = ngram.score_events(token_docs)
        kn_row = _row(f"Kneser-Ney {ngram.order}-gram", float(-kn_logp.mean()), level, per_char)
        rows.append(kn_row)
        weight = _mix_weight(mix_kn, stored)
        if weight is not None:
            by_context = parse_mix(mix_kn) == "auto" and bool(stored.get("weights"))
            weights = event_weights(stored, strength) if by_context else weight
            label = f"LM weight by KN context, mean {np.mean(weights):.2f}" if by_context else \
                f"weights {weight:.2f} / {1 - weight:.2f}"
            mix_logp = mixed_logp(lm_logp, kn_logp, weights)
            rows.append(_row(f"RNN + KN ({label})", float(-mix_logp.mean()), level, per_char))
    rows += _cache_rows(ckpt, stream, lm_logp, mix_logp, batch_size, cache, per_char)
    mix_choice = parse_mix(mix_kn) if weight is not None else None  # "auto", a weight, or None: no mix
    rows += _dynamic_rows(ckpt, stream, dynamic, kn_logp, strength, mix_choice, per_char)
    if baseline or mix_kn is not None:
        for row in rows:
            row.vs_kn = row.metric / kn_row.metric
    unk = vocab.unk_id
    oov = float(np.mean(stream[1:] == unk)) if unk is not None else 0.0
    generated = generated_text_stats(ckpt, stream, samples, sample_tokens, seed) if samples else []
    return LMEvalReport(level, len(stream) - 1, oov, rows, horizons, weight, generated,
                        round(per_char * (len(stream) - 1)) if level in PER_CHAR else 0)


def generated_text_stats(ckpt, stream: np.ndarray, n: int, length: int, seed: int = 0) -> list:
    """Continuations of ``n`` held-out prompts (20 characters or 10 words of the true text before each start),
    sampled at temperature 1 and greedy, measured next to the true continuations."""
    from textseq.lm.sampling import SamplingConfig, generate
    from textseq.lm.textstats import prompt_positions, text_stats

    if length < 4:
        raise TextseqError(f"--sample-tokens must be at least 4 (4-grams are counted), got {length}")
    prompt = 20 if ckpt.level == "char" else 10
    length = min(length, len(stream) - prompt - 1)  # a short held-out text gets shorter samples
    starts = prompt_positions(len(stream), n, prompt, length) if length >= 4 else []
    if not starts:
        return []
    decode = ckpt.vocab.itos
    runs: dict[str, list[list[str]]] = {"sampled (temperature 1)": [], "greedy": []}
    for i, start in enumerate(starts):
        context = stream[start - prompt:start].tolist()
        for name, cfg in (("sampled (temperature 1)", SamplingConfig(max_tokens=length, seed=seed + i)),
                          ("greedy", SamplingConfig(max_tokens=length, greedy=True))):
            ids = generate(ckpt.model, context, cfg, eos_id=ckpt.vocab.stoi[EOS])[0]
            runs[name].append([decode[t] for t in ids])
    truth = [[decode[t] for t in stream[start:start + length]] for start in starts]
    reference = [decode[t] for t in stream]
    spans = [(start - 2, start + length) for start in starts]  # the 3-grams that reach into the continuation
    rows = [text_stats(name, texts, reference, spans) for name, texts in runs.items()]
    return rows + [text_stats("held-out text (what really follows)", truth, reference, spans)]


def _cache_rows(ckpt, stream: np.ndarray, lm_logp: np.ndarray, mix_logp: np.ndarray | None, batch_size: int,
                cache: str | int | None, per_char: float = 1.0) -> list[LMEvalRow]:
    """"RNN + cache" and, when the KN mix is on and the checkpoint has its parameters, "RNN + KN + cache"."""
    from textseq.lm.cache import cache_probs, mixed_nll, parse_cache, states_and_targets

    cache = parse_cache(cache)
    if cache is None:
        return []
    size = None if cache == "auto" else cache
    stored = ckpt.data.get("cache")
    if not stored:
        if size is None:
            return []
        raise TextseqError("this checkpoint has no fitted cache parameters (trained with --no-kn-mix)")
    states, targets = states_and_targets(ckpt.model, *stream_rows(stream, batch_size),
                                         ckpt.train_config.get("bptt", 35))
    keep = (targets != IGNORE).reshape(-1).cpu().numpy()
    fits = [("RNN + cache", stored, lm_logp)]
    if mix_logp is not None and ckpt.data.get("cache_with_kn"):
        fits.append(("RNN + KN + cache", ckpt.data["cache_with_kn"], mix_logp))
    rows = []
    for name, fitted, base_logp in fits:
        fit_size = fitted["size"] if size is None else size
        probs = cache_probs(states, targets, fit_size, fitted["theta"], IGNORE).reshape(-1).cpu().numpy()[keep]
        rows.append(_row(f"{name} ({fit_size}, weight {fitted['weight']:.2f})",
                         mixed_nll(base_logp, probs, fitted["weight"]), ckpt.level, per_char))
    return rows


def _dynamic_rows(ckpt, stream: np.ndarray, dynamic: str | float | None, kn_logp: np.ndarray | None,
                  strength: np.ndarray | None, mix_kn: str | float | None, per_char: float) -> list[LMEvalRow]:
    """"RNN + dynamic" and, with the KN mix on, "RNN + dynamic + KN" (its own weights fitted when training,
    or the weight ``mix_kn`` asked for)."""
    from textseq.lm.dynamic import ROWS, dynamic_logprobs, parse_dynamic

    dynamic = parse_dynamic(dynamic)
    stored = ckpt.data.get("dynamic")
    if dynamic is None or (dynamic == "auto" and not (stored and stored["lr"] > 0)):
        return []  # auto: off when the checkpoint has no fitted rate or adapting did not help on validation
    lr = stored["lr"] if dynamic == "auto" else dynamic
    rows_read = stored["rows"] if stored else ROWS
    logp = dynamic_logprobs(ckpt.model, stream, lr, ckpt.train_config.get("bptt", 35), rows_read)
    rows = [_row(f"RNN + dynamic (SGD lr {lr:g})", float(-logp.mean()), ckpt.level, per_char)]
    if kn_logp is None or mix_kn is None:
        return rows
    if mix_kn == "auto" and stored and stored.get("kn_weight") is not None:
        weights = event_weights({"weight": stored["kn_weight"], "weights": stored.get("kn_weights")}, strength)
        label = f"LM weight by KN context, mean {np.mean(weights):.2f}"
    elif mix_kn == "auto":
        return rows
    else:
        weights = float(mix_kn)
        label = f"weights {weights:.2f} / {1 - weights:.2f}"
    rows.append(_row(f"RNN + dynamic + KN ({label})", float(-mixed_logp(logp, kn_logp, weights).mean()),
                     ckpt.level, per_char))
    return rows


def _ngram_model(ckpt, checkpoint: Path, order: int | None, train_text: str | None):
    """The checkpoint's stored KN partner (fitted at training time, order chosen on validation) unless another
    order or training text is asked for; then one is fitted here. Returns (model, stored mix settings)."""
    from textseq.features.ngram_lm import KneserNeyLM

    partner = load_partner(checkpoint, ckpt.data) if order is None and train_text is None else None
    if partner is not None and (order in (None, partner[0].order)):
        return partner
    order = order or (5 if ckpt.level == "char" else 3)
    return KneserNeyLM(order=order, vocab=ckpt.vocab).fit(training_docs(ckpt.data, ckpt.vocab, train_text)), None


def _mix_weight(mix_kn: str | float | None, stored: dict | None) -> float | None:
    mix_kn = parse_mix(mix_kn)
    if mix_kn == "auto":
        return stored["weight"] if stored else None
    return mix_kn
