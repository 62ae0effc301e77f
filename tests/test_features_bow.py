"""Bag-of-words and n-gram features: exact counts, unknown tokens, feature vocabularies."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from textseq.errors import TextseqError
from textseq.features import bag_of_words, count_ngrams, ngram_bow
from textseq.vocab import Vocab, VocabConfig

CORPORA = Path(__file__).resolve().parents[1] / "corpora"
DOCS = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "sat"], [], ["a", "cat", "a", "cat"]]


@pytest.fixture(scope="module")
def lunyu_chars():
    with open(CORPORA / "zh" / "lunyu.txt", encoding="utf-8") as fh:
        return [list(line.strip()) for line in fh if line.strip()][:200]


def test_bag_of_words_counts_and_unknowns():
    vocab = Vocab.from_docs(DOCS[:2])
    matrix = bag_of_words(iter(DOCS), vocab)  # a one-shot stream is fine
    assert sparse.isspmatrix_csr(matrix) and matrix.shape == (4, len(vocab))
    dense = matrix.toarray()
    assert dense[0, vocab["the"]] == 2 and dense[0, vocab["mat"]] == 1
    assert dense[2].sum() == 0
    assert dense[3, vocab.unk_id] == 2 and dense[3, vocab["cat"]] == 2  # "a" is unknown
    no_unk = Vocab(["the", "cat", "sat"], specials=())
    assert bag_of_words(DOCS, no_unk).toarray().tolist() == [[2, 1, 1], [1, 0, 1], [0, 0, 0], [0, 2, 0]]


def test_bag_of_words_matches_counter_on_real_text(lunyu_chars):
    vocab = Vocab.from_docs(lunyu_chars, VocabConfig(min_count=3))
    matrix = bag_of_words(lunyu_chars, vocab)
    for row, doc in enumerate(lunyu_chars[:50]):
        expected = Counter(vocab.encode(doc))
        got = dict(zip(matrix[row].indices.tolist(), matrix[row].data.tolist(), strict=True))
        assert got == dict(expected)
    assert matrix.sum() == sum(len(doc) for doc in lunyu_chars)  # nothing lost: unknowns went to <unk>


def test_count_ngrams_ranges_and_document_boundaries():
    counts = count_ngrams(DOCS, 1, 2)
    assert counts[("the",)] == 3 and counts[("the", "cat")] == 1 and counts[("a", "cat")] == 2
    assert ("mat", "the") not in counts  # never across documents
    assert set(map(len, count_ngrams(DOCS, 2, 3))) == {2, 3}
    assert sum(count_ngrams([list("abcd")], 3, 3).values()) == 2
    with pytest.raises(TextseqError):
        count_ngrams(DOCS, 3, 2)


def test_ngram_bow_feature_vocabulary(lunyu_chars):
    matrix, names = ngram_bow(iter(lunyu_chars), 1, 2, min_count=5, max_features=300)
    counts = count_ngrams(lunyu_chars, 1, 2)
    assert len(names) == 300 == matrix.shape[1] and matrix.shape[0] == len(lunyu_chars)
    by_name = {" ".join(gram): n for gram, n in counts.items()}
    totals = np.asarray(matrix.sum(axis=0)).ravel()
    assert [by_name[name] for name in names] == totals.tolist()
    assert totals.tolist() == sorted(totals.tolist(), reverse=True) and totals.min() >= 5
    expected_order = sorted(by_name, key=lambda name: (-by_name[name], name))[:300]
    assert names == expected_order
    # the same names applied to new documents give the same columns
    again, same_names = ngram_bow(lunyu_chars[:20], 1, 2, vocab=names)
    assert same_names == names
    assert (again != matrix[:20]).nnz == 0


def test_ngram_bow_rejects_bad_options():
    with pytest.raises(TextseqError):
        ngram_bow(DOCS, 1, 2, min_count=0)
    with pytest.raises(TextseqError):
        ngram_bow(DOCS, 1, 2, vocab=["a", "a"])


def test_the_pipeline_is_an_analyzer_and_tfidf_is_scikit_learns():
    from gensim.corpora import Dictionary
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    from textseq.features.bow import tfidf
    from textseq.text.pipeline import Pipeline, PipelineConfig

    lines = ["子曰：学而时习之，不亦说乎", "The Cat sat on the mat", "the cat, 学而 the dog"]
    pipeline = Pipeline(PipelineConfig.for_level("word"))
    docs = list(pipeline.process_lines(lines))
    counts = CountVectorizer(analyzer=pipeline).fit(lines)
    assert set(counts.vocabulary_) == {t for doc in docs for t in doc}
    vocab = Vocab.from_docs(docs)
    ours = tfidf(docs, vocab)
    theirs = TfidfVectorizer(analyzer=pipeline).fit(lines)
    columns = [vocab.stoi[t] for t in theirs.get_feature_names_out()]
    assert abs(ours[:, columns] - theirs.transform(lines)).max() < 1e-12
    assert bag_of_words(docs, vocab).sum() == sum(len(doc) for doc in docs)
    dictionary = Dictionary(pipeline.process_lines(lines))
    assert dictionary.num_pos == sum(len(doc) for doc in docs)


def test_preprocess_writes_tfidf_beside_bow(tmp_path):
    from textseq.cli import run

    corpus = Path(__file__).resolve().parent.parent / "corpora" / "zh" / "lunyu.txt"
    out = tmp_path / "out"
    assert run(["preprocess", str(corpus), "--level", "word", "--bow", "--tfidf", "-o", str(out), "--quiet"]) == 0
    bow, weighted = (sparse.load_npz(out / "features" / name) for name in ("bow.npz", "tfidf.npz"))
    assert bow.shape == weighted.shape and (bow != 0).sum() == (weighted != 0).sum()
    norms = np.sqrt(weighted.multiply(weighted).sum(axis=1)).A.ravel()
    assert np.allclose(norms[norms > 0], 1.0)
