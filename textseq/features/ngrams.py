"""N-gram counting and n-gram bag-of-words features with their own feature vocabulary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from textseq.errors import TextseqError
from textseq.features.bow import CsrBuilder
from textseq.vocab import Vocab

if TYPE_CHECKING:
    from scipy import sparse


def _check_range(n_min: int, n_max: int) -> None:
    if not 1 <= n_min <= n_max:
        raise TextseqError(f"n-gram range must satisfy 1 <= n_min <= n_max, got {n_min}..{n_max}")


def iter_ngrams(tokens: Sequence[str], n_min: int = 1, n_max: int = 2) -> Iterator[tuple[str, ...]]:
    """All n-grams of the sequence for n_min <= n <= n_max, shortest first."""
    tokens = list(tokens)
    for n in range(n_min, n_max + 1):
        yield from zip(*(tokens[i:] for i in range(n)), strict=False)


def count_ngrams(docs: Iterable[Sequence[str]], n_min: int = 1, n_max: int = 2) -> Counter[tuple[str, ...]]:
    """Counts of every n-gram (a tuple of tokens) within documents; n-grams never span two documents."""
    _check_range(n_min, n_max)
    counts: Counter[tuple[str, ...]] = Counter()
    for tokens in docs:
        counts.update(iter_ngrams(tokens, n_min, n_max))
    return counts


def ngram_bow(docs: Iterable[Sequence[str]], n_min: int = 1, n_max: int = 2,
              vocab: Sequence[str] | Vocab | None = None, min_count: int = 1,
              max_features: int | None = None, sep: str = " ") -> tuple[sparse.csr_matrix, list[str]]:
    """docs x n-gram counts and the feature names (n-grams joined by ``sep``).

    Without ``vocab`` the features are the n-grams seen at least ``min_count`` times in total, ordered by
    descending count then name, the first ``max_features`` kept; one streaming pass over ``docs``.
    With ``vocab`` (the names returned by an earlier call, e.g. on the training set) the columns are
    exactly those names and other n-grams are ignored.
    """
    _check_range(n_min, n_max)
    if min_count < 1 or (max_features is not None and max_features < 1):
        raise TextseqError("min_count and max_features must be at least 1")
    if vocab is not None:
        names = list(vocab.itos if isinstance(vocab, Vocab) else vocab)
        return _fixed_features(docs, n_min, n_max, names, sep), names
    ids: dict[tuple[str, ...], int] = {}
    rows = CsrBuilder()
    for tokens in docs:
        rows.add_row(Counter(ids.setdefault(g, len(ids)) for g in iter_ngrams(tokens, n_min, n_max)))
    matrix = rows.build(len(ids))
    totals = np.asarray(matrix.sum(axis=0)).ravel()
    names = [sep.join(g) for g in ids]
    kept = sorted((i for i in range(len(names)) if totals[i] >= min_count), key=lambda i: (-totals[i], names[i]))
    kept = kept[:max_features]
    return matrix[:, kept].tocsr(), [names[i] for i in kept]


def _fixed_features(docs: Iterable[Sequence[str]], n_min: int, n_max: int, names: list[str],
                    sep: str) -> sparse.csr_matrix:
    column = {name: i for i, name in enumerate(names)}
    if len(column) != len(names):
        raise TextseqError("the n-gram feature vocabulary has duplicate names")
    rows = CsrBuilder()
    for tokens in docs:
        found = (column.get(sep.join(g)) for g in iter_ngrams(tokens, n_min, n_max))
        rows.add_row(Counter(i for i in found if i is not None))
    return rows.build(len(names))
