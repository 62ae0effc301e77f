"""Vocabulary: token counts -> deterministic ids, with frequency filters and special tokens."""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from textseq.errors import TextseqError
from textseq.io import atomic_write_text
from textseq.settings import Settings

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
DEFAULT_SPECIALS = (PAD, UNK, BOS, EOS)


@dataclass
class VocabConfig(Settings):
    """Which tokens make it into the vocabulary.

    ``min_df``/``max_df`` count documents (lines) containing the token: an int is an
    absolute number of documents, a float in (0, 1] a ratio of all documents, as in
    "drop words that appear in fewer than 2 documents or in more than 50% of them".
    """

    min_count: int = 1
    max_count: int | None = None
    min_df: int | float | None = None
    max_df: int | float | None = None
    max_size: int | None = None
    specials: tuple[str, ...] = DEFAULT_SPECIALS


@dataclass
class TokenCounts:
    """Term and document frequencies; mergeable, so workers can count shards independently."""

    term: Counter = field(default_factory=Counter)
    doc: Counter = field(default_factory=Counter)
    n_docs: int = 0

    def add(self, tokens: Sequence[str]) -> None:
        self.term.update(tokens)
        self.doc.update(set(tokens))
        self.n_docs += 1

    def merge(self, other: TokenCounts) -> TokenCounts:
        self.term.update(other.term)
        self.doc.update(other.doc)
        self.n_docs += other.n_docs
        return self


def count_tokens(docs: Iterable[Sequence[str]]) -> TokenCounts:
    counts = TokenCounts()
    for tokens in docs:
        counts.add(tokens)
    return counts


def _df_limit(limit: int | float, n_docs: int) -> float:
    if isinstance(limit, float) and 0.0 < limit <= 1.0:
        return limit * n_docs
    return float(limit)


class Vocab:
    """Maps tokens to ids and back. Ids are dense, specials first, then by descending count
    with ties broken by the token's code points, so the same counts always give the same ids."""

    def __init__(self, tokens: Sequence[str], counts: dict[str, int] | None = None,
                 specials: Sequence[str] = DEFAULT_SPECIALS):
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = dict(zip(self.itos, range(len(self.itos)), strict=True))
        if len(self.stoi) != len(self.itos):
            raise TextseqError("vocabulary has duplicate tokens")
        self.specials = tuple(specials)
        self.counts = dict(counts or {})
        self.unk_id = self.stoi.get(UNK)

    @classmethod
    def build(cls, counts: TokenCounts, config: VocabConfig | None = None, always: Iterable[str] = ()) -> Vocab:
        """``always``: tokens kept whatever their count (a subword model's pieces, seen in the text or not)."""
        cfg = config or VocabConfig()
        term = counts.term
        extra = [t for t in dict.fromkeys(always) if t not in term and t not in cfg.specials]  # count 0
        lo_df = _df_limit(cfg.min_df, counts.n_docs) if cfg.min_df is not None else None
        hi_df = _df_limit(cfg.max_df, counts.n_docs) if cfg.max_df is not None else None
        tokens_all = list(term) + extra
        n = np.zeros(len(tokens_all), dtype=np.int64)
        n[:len(term)] = np.fromiter(term.values(), dtype=np.int64, count=len(term))
        keep = n >= cfg.min_count
        keep[len(term):] = True
        if cfg.max_count is not None:
            keep &= n <= cfg.max_count
        if lo_df is not None or hi_df is not None:
            df = np.fromiter(map(counts.doc.get, tokens_all, itertools.repeat(0)), dtype=np.int64,
                             count=len(tokens_all))
            keep &= (df >= (lo_df if lo_df is not None else -np.inf)) & (df <= (hi_df if hi_df is not None else np.inf))
        for special in cfg.specials:
            if special in term:
                keep[tokens_all.index(special)] = False
        # by descending count, ties by the token's code points: a C-keyed sort by token, then a stable one by count
        by_token = sorted(np.flatnonzero(keep).tolist(), key=tokens_all.__getitem__)
        order = np.asarray(by_token, dtype=np.int64)[np.argsort(-n[by_token], kind="stable")]
        if cfg.max_size is not None:
            order = order[: max(0, cfg.max_size - len(cfg.specials))]
        kept_tokens = list(map(tokens_all.__getitem__, order.tolist()))
        tokens = list(cfg.specials) + kept_tokens
        return cls(tokens, dict(zip(kept_tokens, n[order].tolist(), strict=True)), cfg.specials)

    @classmethod
    def from_docs(cls, docs: Iterable[Sequence[str]], config: VocabConfig | None = None,
                  always: Iterable[str] = ()) -> Vocab:
        return cls.build(count_tokens(docs), config, always)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id) if self.unk_id is not None else self.stoi[token]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        stoi, unk = self.stoi, self.unk_id
        if unk is None:
            try:
                return [stoi[t] for t in tokens]
            except KeyError as exc:
                raise TextseqError(f"token {exc.args[0]!r} is not in the vocabulary and it has no <unk>") from None
        return [stoi.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        itos = self.itos
        return [itos[i] for i in ids]

    def to_dict(self) -> dict:
        """Counts as a list beside the tokens (0 for the specials): a third of the size of a token -> count
        mapping, and as fast to write."""
        return {"tokens": self.itos, "counts": list(map(self.counts.get, self.itos, itertools.repeat(0))),
                "specials": list(self.specials)}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        counts = data.get("counts")
        if isinstance(counts, list):  # see to_dict; earlier files hold a token -> count mapping
            counts = {t: n for t, n in zip(data["tokens"], counts, strict=True) if n}
        return cls(data["tokens"], counts, data.get("specials", DEFAULT_SPECIALS))

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise TextseqError(f"vocabulary file {path} does not exist") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise TextseqError(f"{path} is not a valid vocabulary file ({type(exc).__name__})") from None
