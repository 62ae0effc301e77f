"""Interpolated modified Kneser-Ney n-gram language model (Chen & Goodman 1998), vectorized with numpy.

Every line is one document, scored as ``<bos> t1 ... tm <eos>``: all tokens after ``<bos>`` are predicted,
``<eos>`` included. A context shorter than ``order - 1`` starts at ``<bos>`` (n-grams never reach before it).

N-grams are integer-encoded: the k-gram ending at a position is identified by the id of the (k-1)-gram
ending one position earlier (its context) and its last token, ``key = context_id * n_tokens + token``.
The sorted unique keys of order k are the k-gram ids (order-1 ids are token ids), so counting is
``np.unique`` and lookup is ``np.searchsorted``.

Counts as in KenLM: the highest order uses raw counts, lower orders use continuation counts (the number of
distinct tokens seen before the n-gram), except n-grams starting with ``<bos>`` which nothing can precede and
which keep their raw counts. Each order has three discounts D1, D2, D3+ estimated from its count-of-counts;
the unigram level interpolates with a uniform distribution over the vocabulary (every token but ``<bos>``).
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textseq.errors import TextseqError
from textseq.io import atomic_open
from textseq.vocab import BOS, EOS, PAD, UNK, Vocab

BOS_ID, EOS_ID, UNK_ID = 0, 1, 2
FORMAT = "textseq-kneser-ney"
MIN_DISCOUNT = 0.05
# Context strength (see KneserNeyLM.context_strength): the longest context order seen in training, and the
# log2 of that context's count, capped at COUNT_LEVELS - 1.
COUNT_LEVELS = 8


@dataclass
class NgramScore:
    """Held-out score; ``tokens`` counts every predicted token including each line's ``<eos>``."""

    tokens: int
    nll: float
    perplexity: float
    bits_per_token: float
    oov_rate: float


def estimate_discounts(count_of_counts: Sequence[int]) -> tuple[float, float, float]:
    """D1, D2, D3+ from n1..n4, the numbers of n-gram types seen exactly 1..4 times (Chen & Goodman).

    A discount whose count-of-counts is missing falls back to Y = n1 / (n1 + 2 n2); each D_j is kept in
    [MIN_DISCOUNT, j] so no probability goes negative and every seen context leaves some backoff mass.
    """
    n1, n2, n3, n4 = (int(c) for c in count_of_counts[:4])
    y = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
    counts = (n1, n2, n3, n4)
    discounts = []
    for j in (1, 2, 3):
        d = j - (j + 1) * y * counts[j] / counts[j - 1] if counts[j - 1] > 0 and counts[j] > 0 else y
        discounts.append(min(max(d, MIN_DISCOUNT), float(j)))
    return discounts[0], discounts[1], discounts[2]


class KneserNeyLM:
    """Interpolated modified Kneser-Ney LM over token sequences.

    ``discount`` fixes one discount for every order and count (plain interpolated Kneser-Ney) instead of
    estimating D1, D2, D3+. ``vocab`` (a Vocab or a list of tokens) fixes the vocabulary, e.g. to score
    exactly the same events as an RNN LM: other tokens become ``<unk>`` in training too. Without it the
    vocabulary is every training token, plus ``<unk>`` for unseen ones.
    """

    def __init__(self, order: int = 3, discount: float | None = None,
                 vocab: Vocab | Sequence[str] | None = None):
        if not isinstance(order, int) or order < 1:
            raise TextseqError(f"n-gram order must be a positive integer, got {order!r}")
        if discount is not None and not 0.0 < discount <= 1.0:
            raise TextseqError(f"Kneser-Ney discount must be in (0, 1], got {discount}")
        self.order = order
        self.discount = discount
        self.fixed_vocab = vocab is not None
        words = vocab.itos if isinstance(vocab, Vocab) else (vocab or [])
        self.tokens: list[str] = [BOS, EOS, UNK] + [t for t in words if t not in (BOS, EOS, UNK, PAD)]
        self._stoi = {t: i for i, t in enumerate(self.tokens)}
        self._keys: list[np.ndarray] = []    # _keys[k]: sorted keys of order k >= 2 (0, 1 unused)
        self._counts: list[np.ndarray] = []  # _counts[k]: adjusted count of each k-gram id (1 = tokens)
        self.discounts = np.zeros((0, 3))    # row k-1: D1, D2, D3+ of order k

    # ---------------------------------------------------------------- vocabulary and encoding

    @property
    def vocab_size(self) -> int:
        """Number of tokens the model predicts (all but ``<bos>``)."""
        return len(self.tokens) - 1

    @property
    def ngram_types(self) -> list[int]:
        """Number of distinct n-grams stored for orders 1..order."""
        self._check_fitted()
        return [int(np.count_nonzero(self._counts[1]))] + [len(c) for c in self._counts[2:]]

    def _encode(self, docs: Iterable[Sequence[str]], grow: bool) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``<bos> doc <eos>`` for all docs, and each position's offset from its ``<bos>``."""
        stoi, ids, lengths = self._stoi, array("q"), array("q")
        for doc in docs:
            ids.append(BOS_ID)
            if grow:
                ids.extend([stoi.setdefault(t, len(stoi)) for t in doc])
            else:
                ids.extend([stoi.get(t, UNK_ID) for t in doc])
            ids.append(EOS_ID)
            lengths.append(len(doc) + 2)
        if grow:
            self.tokens = list(stoi)
        ids_np = np.frombuffer(ids, dtype=np.int64).copy()
        lengths_np = np.frombuffer(lengths, dtype=np.int64)
        starts = np.cumsum(lengths_np) - lengths_np
        offsets = np.arange(len(ids_np)) - np.repeat(starts, lengths_np)
        ids_np[(ids_np == BOS_ID) & (offsets > 0)] = UNK_ID  # a literal "<bos>" inside a line
        return ids_np, offsets

    # ---------------------------------------------------------------- training

    def fit(self, docs: Iterable[Sequence[str]]) -> KneserNeyLM:
        if not self.fixed_vocab:
            self._stoi = {BOS: BOS_ID, EOS: EOS_ID, UNK: UNK_ID}
        ids, offsets = self._encode(docs, grow=not self.fixed_vocab)
        if not np.any(offsets >= 1):
            raise TextseqError("cannot fit an n-gram model: the training text has no lines")
        raw, keys, continuation, starts_with_bos = self._count(ids, offsets)
        counts = [np.zeros(0, dtype=np.int64)] * (self.order + 1)
        for k in range(1, self.order + 1):
            if k == self.order:
                counts[k] = raw[k]
            elif k == 1:
                counts[k] = continuation[1]
            else:
                counts[k] = np.where(starts_with_bos[k], raw[k], continuation[k])
        self._keys, self._counts = keys, counts
        self.discounts = np.array([self._discounts_for(counts[k]) for k in range(1, self.order + 1)])
        self._prepare()
        return self

    def _count(self, ids: np.ndarray, offsets: np.ndarray):
        """Raw counts, keys, continuation counts and <bos>-start flags of every order."""
        n_tokens, order = len(self.tokens), self.order
        raw = [np.zeros(0, dtype=np.int64)] * (order + 1)
        keys = [np.zeros(0, dtype=np.int64)] * (order + 1)
        continuation = [np.zeros(0, dtype=np.int64)] * (order + 1)
        starts_with_bos = [np.zeros(0, dtype=bool)] * (order + 1)
        raw[1] = np.bincount(ids[offsets >= 1], minlength=n_tokens)
        grams = ids  # id of the k-gram ending at each position (k = 1 here)
        for k in range(2, order + 1):
            pos = np.flatnonzero(offsets >= k - 1)
            keys[k], first, inverse = np.unique(grams[pos - 1] * n_tokens + ids[pos],
                                                return_index=True, return_inverse=True)
            raw[k] = np.bincount(inverse, minlength=len(keys[k]))
            starts_with_bos[k] = offsets[pos[first]] == k - 1
            # every k-gram type adds one distinct left extension to the (k-1)-gram ending where it ends
            continuation[k - 1] = np.bincount(grams[pos[first]], minlength=len(raw[k - 1]))
            grams = np.full(len(ids), -1, dtype=np.int64)
            grams[pos] = inverse
        return raw, keys, continuation, starts_with_bos

    def _discounts_for(self, counts: np.ndarray) -> tuple[float, float, float]:
        if self.discount is not None:
            return (self.discount,) * 3
        return estimate_discounts(np.bincount(counts, minlength=5)[1:5])

    def _prepare(self) -> None:
        """Per-context denominators and backoff weights: everything the scorer needs besides counts."""
        self._discount_of = [np.zeros(4)] + [np.concatenate([[0.0], d]) for d in self.discounts]
        self._total = [0.0] * (self.order + 1)
        self._backoff = [0.0] * (self.order + 1)
        unigram = self._counts[1]
        self._total[1] = float(unigram.sum())
        self._backoff[1] = float(self._discount_of[1][np.minimum(unigram, 3)].sum())
        for k in range(2, self.order + 1):
            n_contexts = len(self._counts[k - 1])
            contexts = self._keys[k] // len(self.tokens)
            counts = self._counts[k]
            self._total[k] = np.bincount(contexts, weights=counts, minlength=n_contexts)
            self._backoff[k] = np.bincount(contexts, weights=self._discount_of[k][np.minimum(counts, 3)],
                                           minlength=n_contexts)

    # ---------------------------------------------------------------- scoring

    def _check_fitted(self) -> None:
        if not self._counts:
            raise TextseqError("the n-gram model is not fitted")

    def _lookup(self, k: int, contexts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Ids of the k-grams (context, token), -1 where unseen or the context is unknown."""
        keys = self._keys[k]
        if len(keys) == 0:
            return np.full(np.broadcast(contexts, tokens).shape, -1, dtype=np.int64)
        query = contexts * len(self.tokens) + tokens
        idx = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where((contexts >= 0) & (keys[idx] == query), idx, -1)

    def _unigram(self, tokens: np.ndarray) -> np.ndarray:
        counts = self._counts[1][tokens]
        numerator = counts - self._discount_of[1][np.minimum(counts, 3)] + self._backoff[1] / self.vocab_size
        return numerator / self._total[1]

    def _interpolate(self, k: int, lower: np.ndarray, contexts: np.ndarray, grams: np.ndarray) -> np.ndarray:
        """P_k from P_{k-1}; an unseen context (or none) leaves the lower-order probability unchanged."""
        if len(self._counts[k]) == 0:
            return lower
        safe_ctx = np.maximum(contexts, 0)
        total = np.where(contexts >= 0, self._total[k][safe_ctx], 0.0)
        counts = np.where(grams >= 0, self._counts[k][np.maximum(grams, 0)], 0)
        numerator = counts - self._discount_of[k][np.minimum(counts, 3)] + self._backoff[k][safe_ctx] * lower
        return np.where(total > 0, numerator / np.maximum(total, 1e-300), lower)

    def _stream_probs(self, ids: np.ndarray, offsets: np.ndarray,
                      strength: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """P(token | its line so far) at every position (meaningless where offsets == 0), and with
        ``strength`` each position's context strength too."""
        probs = self._unigram(ids)
        grams = ids
        matched = np.ones(len(ids), dtype=np.int64)  # longest order whose context was seen in training
        context_count = np.full(len(ids), self._total[1])
        for k in range(2, self.order + 1):
            contexts = np.full(len(ids), -1, dtype=np.int64)
            contexts[1:] = grams[:-1]
            contexts[offsets < k - 1] = -1
            grams = self._lookup(k, contexts, ids)
            probs = self._interpolate(k, probs, contexts, grams)
            if strength and len(self._counts[k]):
                total = np.where(contexts >= 0, self._total[k][np.maximum(contexts, 0)], 0.0)
                seen = total > 0
                matched[seen], context_count[seen] = k, total[seen]
        if not strength:
            return probs
        return probs, self._strength(matched, context_count)

    def _strength(self, matched: np.ndarray, context_count: np.ndarray) -> np.ndarray:
        level = np.minimum(np.floor(np.log2(np.maximum(context_count, 1.0))), COUNT_LEVELS - 1).astype(np.int64)
        return (matched - 1) * COUNT_LEVELS + level

    @property
    def strength_levels(self) -> int:
        """Number of distinct context strengths: values of :meth:`context_strength` are below it."""
        return self.order * COUNT_LEVELS

    def _token_id(self, token: str) -> int:
        """Like the encoder: unknown tokens and a literal ``<bos>`` inside a line are ``<unk>``."""
        token_id = self._stoi.get(token, UNK_ID)
        return UNK_ID if token_id == BOS_ID else token_id

    def _context_ids(self, context: Sequence[str]) -> list[int]:
        """Id of the (k-1)-gram ending the context, for k = 2..order (index k-2), -1 if unseen."""
        words = list(context)
        while words and words[0] == BOS:
            words.pop(0)
        window = self.order - 1
        if window == 0:
            return []
        prefix = [BOS_ID] if len(words) < window else []  # the line starts inside the window
        words = words[max(0, len(words) - window):]
        ids = np.array(prefix + [self._token_id(t) for t in words], dtype=np.int64)
        grams, result = ids, [int(ids[-1])]
        for k in range(2, self.order):
            contexts = np.concatenate([[-1], grams[:-1]])
            grams = self._lookup(k, contexts, ids)
            result.append(int(grams[-1]))
        return result

    def context_strength(self, context: Sequence[str] = ()) -> int:
        """How well training covers ``context`` (the line so far): ``(m - 1) * COUNT_LEVELS + l`` where m is the
        longest order whose context was seen in training and l the log2 of its count, capped. Mixing weights
        fitted per strength let a mixture trust the n-gram model where its counts are many (lm.mix)."""
        self._check_fitted()
        matched, count = 1, self._total[1]
        for k, ctx in enumerate(self._context_ids(context), start=2):
            total = self._total[k][ctx] if ctx >= 0 and len(self._counts[k]) else 0.0
            if total > 0:
                matched, count = k, total
        return int(self._strength(np.array([matched]), np.array([count], dtype=np.float64))[0])

    def distribution(self, context: Sequence[str] = ()) -> np.ndarray:
        """P(token | context) for every token of ``self.tokens`` (``<bos>``: 0); sums to 1."""
        self._check_fitted()
        tokens = np.arange(len(self.tokens))
        probs = self._unigram(tokens)
        for k, ctx in enumerate(self._context_ids(context), start=2):
            contexts = np.full(len(tokens), ctx, dtype=np.int64)
            probs = self._interpolate(k, probs, contexts, self._lookup(k, contexts, tokens))
        probs[BOS_ID] = 0.0
        return probs

    def logprob(self, context: Sequence[str], token: str) -> float:
        """Natural log P(token | context); the context is the line so far (``<bos>`` implied)."""
        self._check_fitted()
        token_id = self._token_id(token)
        probs = self._unigram(np.array([token_id]))
        for k, ctx in enumerate(self._context_ids(context), start=2):
            contexts = np.array([ctx])
            probs = self._interpolate(k, probs, contexts, self._lookup(k, contexts, np.array([token_id])))
        return float(np.log(probs[0]))

    def token_logprobs(self, docs: Iterable[Sequence[str]]) -> np.ndarray:
        """Natural-log P of every predicted event, in order: each line's tokens, then its ``<eos>``
        (the events an RNN LM reading the same lines as one ``<eos>``-separated stream predicts)."""
        return self.score_events(docs)[0]

    def score_events(self, docs: Iterable[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`token_logprobs` and, for the same events, the :meth:`context_strength` of each."""
        self._check_fitted()
        ids, offsets = self._encode(docs, grow=False)
        probs, strength = self._stream_probs(ids, offsets, strength=True)
        events = offsets >= 1
        return np.log(probs[events]), strength[events]

    def evaluate(self, docs: Iterable[Sequence[str]]) -> NgramScore:
        self._check_fitted()
        ids, offsets = self._encode(docs, grow=False)
        targets = offsets >= 1
        n_tokens = int(targets.sum())
        if n_tokens == 0:
            raise TextseqError("nothing to evaluate: the text has no lines")
        nll = float(-np.log(self._stream_probs(ids, offsets)[targets]).sum())
        return NgramScore(tokens=n_tokens, nll=nll, perplexity=math.exp(nll / n_tokens),
                          bits_per_token=nll / n_tokens / math.log(2),
                          oov_rate=float(np.count_nonzero(ids[targets] == UNK_ID)) / n_tokens)

    # ---------------------------------------------------------------- persistence

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"discounts": self.discounts, "counts_1": self._counts[1]}
        for k in range(2, self.order + 1):
            arrays[f"keys_{k}"], arrays[f"counts_{k}"] = self._keys[k], self._counts[k]
        return arrays

    def _meta(self) -> dict:
        return {"format": FORMAT, "version": 1, "order": self.order, "discount": self.discount,
                "fixed_vocab": self.fixed_vocab, "tokens": self.tokens}

    @classmethod
    def _from_parts(cls, meta: dict, arrays: dict[str, np.ndarray]) -> KneserNeyLM:
        if meta.get("format") != FORMAT:
            raise ValueError("not a Kneser-Ney model")
        model = cls(int(meta["order"]), meta["discount"])
        model.fixed_vocab = bool(meta["fixed_vocab"])
        model.tokens = list(meta["tokens"])
        model._stoi = {t: i for i, t in enumerate(model.tokens)}
        model.discounts = np.asarray(arrays["discounts"], dtype=np.float64).reshape(model.order, 3)
        empty = np.zeros(0, dtype=np.int64)
        model._keys = [empty, empty] + [np.asarray(arrays[f"keys_{k}"], dtype=np.int64)
                                        for k in range(2, model.order + 1)]
        model._counts = [empty] + [np.asarray(arrays[f"counts_{k}"], dtype=np.int64)
                                   for k in range(1, model.order + 1)]
        model._prepare()
        return model

    def to_dict(self) -> dict:
        """Plain JSON-able data (lists of numbers)."""
        self._check_fitted()
        return {**self._meta(), "arrays": {name: a.tolist() for name, a in self._arrays().items()}}

    @classmethod
    def from_dict(cls, data: dict) -> KneserNeyLM:
        return cls._from_parts(data, {name: np.asarray(v) for name, v in data["arrays"].items()})

    def save(self, path: str | os.PathLike) -> None:
        """Save as compressed npz (no pickle), or as JSON if ``path`` ends with .json."""
        self._check_fitted()
        if Path(path).suffix == ".json":
            with atomic_open(path, "w") as fh:
                json.dump(self.to_dict(), fh, ensure_ascii=False)
            return
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.array(json.dumps(self._meta(), ensure_ascii=False)),
                            **self._arrays())
        with atomic_open(path, "wb") as fh:
            fh.write(buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> KneserNeyLM:
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                is_npz = fh.read(2) == b"PK"
            if not is_npz:
                return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            return cls._from_parts(json.loads(str(arrays.pop("meta"))), arrays)
        except FileNotFoundError:
            raise TextseqError(f"n-gram model file {path} does not exist") from None
        except IsADirectoryError:
            raise TextseqError(f"n-gram model path {path} is a directory") from None
        except (ValueError, KeyError, TypeError, OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise TextseqError(f"{path} is not a valid n-gram model file ({type(exc).__name__})") from None
