"""Bag-of-words count matrices, built one document at a time into CSR arrays (never a dense matrix), and their
TF-IDF weighting by scikit-learn (the same numbers as its ``TfidfVectorizer`` with the pipeline as analyzer)."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from textseq.vocab import Vocab

if TYPE_CHECKING:
    from scipy import sparse


class CsrBuilder:
    """Accumulates rows of ``{column: count}`` into the three CSR arrays."""

    def __init__(self) -> None:
        self.indices = array("q")
        self.data = array("q")
        self.indptr = array("q", [0])

    def add_row(self, counts: dict[int, int]) -> None:
        for column in sorted(counts):
            self.indices.append(column)
            self.data.append(counts[column])
        self.indptr.append(len(self.indices))

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def build(self, n_columns: int) -> sparse.csr_matrix:
        from scipy import sparse  # about 0.25 s to import: only when a matrix is built

        return sparse.csr_matrix(
            (np.asarray(self.data, dtype=np.int64), np.asarray(self.indices, dtype=np.int64),
             np.asarray(self.indptr, dtype=np.int64)),
            shape=(self.n_rows, n_columns))


def bag_of_words(docs: Iterable[Sequence[str]], vocab: Vocab) -> sparse.csr_matrix:
    """docs x vocab token counts; unknown tokens count as ``<unk>`` if the vocabulary has it, else are dropped."""
    stoi, unk = vocab.stoi, vocab.unk_id
    rows = CsrBuilder()
    for tokens in docs:
        ids = (stoi.get(t, unk) for t in tokens)
        rows.add_row(Counter(i for i in ids if i is not None))
    return rows.build(len(vocab))


def tfidf(docs: Iterable[Sequence[str]], vocab: Vocab, **options) -> sparse.csr_matrix:
    """docs x vocab TF-IDF of :func:`bag_of_words`: scikit-learn's ``TfidfTransformer`` (smoothed idf,
    l2-normalized rows unless ``options`` say otherwise)."""
    from sklearn.feature_extraction.text import TfidfTransformer

    return TfidfTransformer(**options).fit_transform(bag_of_words(docs, vocab)).tocsr()
