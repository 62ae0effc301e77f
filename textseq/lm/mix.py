"""Interpolation with the Kneser-Ney n-gram model, as classic RNNLM toolkits mix with KN5.

At the end of training a KN model is fitted on the training split with the LM's own vocabulary, its
order chosen on the validation split, and the LM weight ``lam`` of

    p(w | h) = lam * p_rnn(w | h) + (1 - lam) * p_kn(w | h)

fitted on the validation split too. ``lam`` is searched on a grid that contains 0 and 1, so on the
validation data the mix is never worse than the better of the two models. Both models score exactly the
same events: every token of every complete line, then the line's ``<eos>``.

How far to trust the n-gram model depends on its context: after a long context seen many times in training
its estimate is sharp, after an unseen one it is backed off to a few counts (Jelinek-Mercer smoothing
buckets its weights by context count for the same reason). So ``lam`` is fitted once more for each context
strength (:meth:`KneserNeyLM.context_strength`: the longest order seen and the log-count of that context)
that has at least ``MIN_BUCKET_EVENTS`` validation events; rarer strengths keep the global ``lam``. Each
bucket's grid holds the global ``lam``, so on validation the bucketed mix is never worse than the global one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from textseq.errors import TextseqError
from textseq.features.ngram_lm import KneserNeyLM
from textseq.lm.report import metric_name, metric_value
from textseq.settings import parse_auto_off
from textseq.vocab import EOS, Vocab

NGRAM_ORDERS = {"char": (3, 4, 5, 6, 7), "word": (2, 3, 4), "subword": (2, 3, 4, 5)}
WEIGHT_GRID = np.linspace(0.0, 1.0, 201)
MIN_BUCKET_EVENTS = 200  # validation events a context strength needs to get a weight of its own


@dataclass
class NgramMix:
    """What a checkpoint records about its n-gram partner (the model itself sits beside it in ``file``)."""

    file: str  # name of the KN model file, in the checkpoint's directory
    order: int
    weight: float  # the LM's weight lam; the n-gram model gets 1 - lam
    valid_nll_lm: float  # mean nats per token on the validation split
    valid_nll_kn: float
    valid_nll_mix: float
    # the LM's weight per context strength of the n-gram model (None in older checkpoints: ``weight`` everywhere)
    weights: list[float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def event_weights(stored: dict, strength: np.ndarray) -> np.ndarray | float:
    """The LM's weight at each event, from a stored mix (its per-strength table when it has one)."""
    table = stored.get("weights")
    if not table:
        return float(stored["weight"])
    return np.asarray(table, dtype=np.float64)[np.minimum(strength, len(table) - 1)]


def mixed_nll(lm_logp: np.ndarray, kn_logp: np.ndarray, weight: float | np.ndarray) -> float:
    """Mean NLL (nats) of ``weight * p_lm + (1 - weight) * p_kn`` from per-event natural-log probabilities;
    ``weight`` is one number or one per event."""
    return float(-mixed_logp(lm_logp, kn_logp, weight).mean())


def mixed_logp(lm_logp: np.ndarray, kn_logp: np.ndarray, weight: float | np.ndarray) -> np.ndarray:
    """Per-event natural-log probability of ``weight * p_lm + (1 - weight) * p_kn``."""
    weight = np.asarray(weight, dtype=np.float64)
    if not np.all((weight >= 0.0) & (weight <= 1.0)):
        raise TextseqError(f"the mixing weight must be in [0, 1], got {weight}")
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log(weight) + lm_logp, np.log1p(-weight) + kn_logp)


def fit_weight(lm_logp: np.ndarray, kn_logp: np.ndarray) -> tuple[float, float]:
    """The LM weight minimising the mixed NLL on these events, and that NLL (the grid includes 0 and 1)."""
    if len(lm_logp) != len(kn_logp) or len(lm_logp) == 0:
        raise TextseqError("the two models must score the same, non-empty list of events")
    nlls = [mixed_nll(lm_logp, kn_logp, float(w)) for w in WEIGHT_GRID]
    best = int(np.argmin(nlls))
    return float(WEIGHT_GRID[best]), float(nlls[best])


def fit_bucket_weights(lm_logp: np.ndarray, kn_logp: np.ndarray, strength: np.ndarray, levels: int,
                       weight: float) -> tuple[list[float], float]:
    """The LM's weight for each of ``levels`` context strengths (``weight``, the global one, where fewer than
    MIN_BUCKET_EVENTS events have that strength) and the mean NLL of the mix with them."""
    table = np.full(levels, weight)
    grid = np.union1d(WEIGHT_GRID, [weight])
    for level in np.unique(strength):
        events = strength == level
        if events.sum() >= MIN_BUCKET_EVENTS:
            nlls = [mixed_nll(lm_logp[events], kn_logp[events], float(w)) for w in grid]
            table[level] = grid[int(np.argmin(nlls))]
    return table.tolist(), mixed_nll(lm_logp, kn_logp, table[strength])


def complete_lines(ids: np.ndarray, eos_id: int) -> np.ndarray:
    """The part of an id stream made of whole lines: from after its first ``<eos>`` to its last one."""
    ends = np.flatnonzero(np.asarray(ids) == eos_id)
    if len(ends) < 2:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(ids[ends[0] + 1:ends[-1] + 1], dtype=np.int64)


def lines_as_tokens(ids: np.ndarray, vocab: Vocab) -> list[list[str]]:
    """Whole lines of an id stream (ending in ``<eos>``) as token lists, for the n-gram model."""
    eos = vocab.stoi[EOS]
    ends = np.flatnonzero(ids == eos)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [vocab.decode(ids[s:e].tolist()) for s, e in zip(starts, ends, strict=True)]


def fit_ngram(train_ids: np.ndarray, valid_ids: np.ndarray, vocab: Vocab,
              orders: tuple[int, ...]) -> tuple[KneserNeyLM, np.ndarray, np.ndarray]:
    """KN models of each order fitted on the training ids; the best on the validation lines, its
    per-event log-probabilities there and the context strength of each event."""
    train_docs = lines_as_tokens(complete_lines(np.concatenate([[vocab.stoi[EOS]], train_ids]), vocab.stoi[EOS]),
                                 vocab)
    valid_docs = lines_as_tokens(valid_ids, vocab)
    best: tuple[float, KneserNeyLM, np.ndarray, np.ndarray] | None = None
    for order in orders:
        model = KneserNeyLM(order=order, vocab=vocab).fit(train_docs)
        logp, strength = model.score_events(valid_docs)
        nll = float(-logp.mean())
        if best is None or nll < best[0]:
            best = (nll, model, logp, strength)
        elif nll > best[0]:  # past the best order the held-out score only gets worse
            break
    if best is None:
        raise TextseqError("no n-gram order to fit")
    return best[1], best[2], best[3]


def describe_mix(mix: NgramMix, level: str, chars_per_token: float = 1.0) -> str:
    def unit(nll: float) -> str:
        return f"{metric_value(nll, level, chars_per_token):.3f} {metric_name(level)}"

    weights = f"LM weight {mix.weight:.2f}" + (f", {min(mix.weights):.2f}-{max(mix.weights):.2f} by KN context"
                                               if mix.weights else "")
    return (f"mix with the KN {mix.order}-gram: {weights} (validation: LM {unit(mix.valid_nll_lm)}, "
            f"KN {unit(mix.valid_nll_kn)}, mix {unit(mix.valid_nll_mix)})")


class MixedLM(torch.nn.Module):
    """An LM whose next-token distribution is mixed with its KN partner's, for generation.

    It steps like :class:`~textseq.lm.model.RNNLanguageModel` (``model(ids)``, ``step``, ``log_probs``), so the
    samplers use it unchanged. Its state is the LM's hidden state plus the n-gram context of every sequence
    (the last ``order - 1`` ids of the current line, -1 where the line started), kept as a tensor shaped like a
    hidden state, ``[1, B, order - 1]``, so beams and samples copy and reorder it like the rest.
    """

    def __init__(self, lm, ngram: KneserNeyLM, vocab: Vocab, weight: float | list[float]):
        super().__init__()
        table = [float(weight)] if isinstance(weight, (int, float)) else [float(w) for w in weight]
        if not table or not all(0.0 <= w <= 1.0 for w in table):
            raise TextseqError(f"the mixing weight must be in [0, 1], got {weight}")
        self.lm, self.ngram, self.vocab = lm, ngram, vocab
        self.table = table  # the LM's weight, one for all or one per context strength of the n-gram model
        self.cfg = lm.cfg
        self.width = max(1, ngram.order - 1)
        self.eos_id = vocab.stoi[EOS]
        known = [ngram._stoi.get(token) for token in vocab.itos]  # vocab id -> n-gram id (None: never predicted)
        self.register_buffer("kn_index", torch.tensor([-1 if k is None else k for k in known]), persistent=False)

    def _split(self, state):
        if state is None:
            return None, None
        *hidden, context = state
        return (tuple(hidden) if len(hidden) > 1 else hidden[0]), context

    def _join(self, hidden, context):
        return (*hidden, context) if isinstance(hidden, tuple) else (hidden, context)

    def _advance(self, context, ids):
        """The contexts after reading ``ids[B, T]``: an <eos> starts a new line."""
        for t in range(ids.size(1)):
            token = ids[:, t]
            context = torch.cat([context[..., 1:], token.view(1, -1, 1)], dim=-1)
            context[0, token == self.eos_id] = -1
        return context

    def forward(self, ids, state=None):
        hidden, context = self._split(state)
        if context is None:
            context = torch.full((1, ids.size(0), self.width), -1, dtype=torch.long, device=ids.device)
        features, hidden = self.lm(ids, hidden)
        self._last_context = self._advance(context, ids)
        return features, self._join(hidden, self._last_context)

    def log_probs(self, features):
        """Mixed log-probabilities of the next token after the last ``forward``: features[B, D] -> [B, V]."""
        lm_probs = self.lm.log_probs(features).exp()
        kn_probs, weights = zip(*(self._ngram_probs(row) for row in self._last_context[0]), strict=True)
        kn_probs = torch.stack(kn_probs).to(lm_probs)
        weight = torch.tensor(weights).to(lm_probs).unsqueeze(1)  # [B, 1]
        return torch.log(weight * lm_probs + (1 - weight) * kn_probs)

    def _ngram_probs(self, context_ids) -> tuple[torch.Tensor, float]:
        """The n-gram model's distribution after this context (over the LM's vocabulary) and the LM's weight."""
        line = [self.vocab.itos[i] for i in context_ids.tolist() if i >= 0]
        dist = torch.as_tensor(self.ngram.distribution(line))
        probs = torch.where(self.kn_index >= 0, dist[self.kn_index.clamp(min=0)], torch.zeros(()))
        weight = self.table[0] if len(self.table) == 1 else \
            self.table[min(self.ngram.context_strength(line), len(self.table) - 1)]
        return probs / probs.sum(), weight

    def step(self, ids, state):
        from textseq.lm.model import plain_cpu_rnn_kernels

        with plain_cpu_rnn_kernels():
            features, state = self(ids.unsqueeze(1), state)
        return self.log_probs(features[:, 0]), state


def load_partner(checkpoint_path, data: dict) -> tuple[KneserNeyLM, dict] | None:
    """The KN partner stored beside a checkpoint at training time and its mix settings, if there is one."""
    from pathlib import Path

    stored = data.get("ngram")
    if not stored:
        return None
    path = Path(checkpoint_path).parent / stored["file"]
    if not path.is_file():
        raise TextseqError(f"the n-gram partner {path} of this checkpoint is missing; copy it along with the "
                           "checkpoint or use --mix-kn off")
    return KneserNeyLM.load(path), stored


def parse_mix(value: str | float | None) -> str | float | None:
    """``--mix-kn``: "auto" (the stored weight), "off"/None, or the LM's weight in [0, 1]."""
    return parse_auto_off(value, "--mix-kn", float, lambda weight: 0.0 <= weight <= 1.0, "the LM's weight in [0, 1]")
