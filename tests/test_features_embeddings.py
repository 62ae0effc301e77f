"""word2vec: streaming corpus, reproducibility, file formats, nearest neighbours, bad files."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textseq.errors import TextseqError
from textseq.features.embeddings import Word2VecConfig, load_vectors, nearest, save_vectors, train_word2vec
from textseq.text.reader import LineCorpus

PRIDE = Path(__file__).resolve().parents[1] / "corpora" / "en" / "pride_sample.txt"
SMALL = Word2VecConfig(vector_size=24, epochs=2, min_count=3)


def words(line: str) -> list[str]:
    return re.findall(r"[a-z']+", line.lower())


class CountingCorpus(LineCorpus):
    passes = 0

    def __iter__(self):
        self.passes += 1  # a generator: counts passes that actually read, not bare iter() calls
        yield from super().__iter__()


@pytest.fixture(scope="module")
def pride_vectors():
    return train_word2vec(LineCorpus(PRIDE, words), Word2VecConfig(vector_size=50, epochs=10, min_count=3))


def test_corpus_is_streamed_once_per_epoch():
    corpus = CountingCorpus(PRIDE, words)
    assert list(corpus) == list(corpus) and iter(corpus) is not corpus
    assert corpus.passes == 2
    kv = train_word2vec(corpus, SMALL)
    assert corpus.passes == 2 + 1 + SMALL.epochs  # + the vocabulary scan and one pass per epoch
    assert "elizabeth" in kv.key_to_index and kv.vector_size == 24


def test_training_is_reproducible_and_seeded(tmp_path):
    corpus = LineCorpus(PRIDE, words)
    first = train_word2vec(corpus, SMALL)
    second = train_word2vec(corpus, SMALL)
    assert first.index_to_key == second.index_to_key
    np.testing.assert_array_equal(first.vectors, second.vectors)
    other_seed = train_word2vec(corpus, Word2VecConfig(vector_size=24, epochs=2, min_count=3, seed=1))
    assert not np.allclose(first.vectors, other_seed.vectors)
    # another process with another string-hash seed gives the same vectors
    out = tmp_path / "vectors.npy"
    script = (f"import re, numpy as np; from textseq.features.embeddings import *\n"
              f"from textseq.text.reader import LineCorpus\n"
              f"kv = train_word2vec(LineCorpus({str(PRIDE)!r}, lambda l: re.findall(r\"[a-z']+\", l.lower())),"
              f" Word2VecConfig(vector_size=24, epochs=2, min_count=3))\n"
              f"np.save({str(out)!r}, kv.vectors)")
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    np.testing.assert_array_equal(np.load(out), first.vectors)


def test_bad_corpora_are_refused():
    with pytest.raises(TextseqError, match="several times"):
        train_word2vec(iter([["a", "b"]] * 10), SMALL)
    with pytest.raises(TextseqError, match="min_count"):
        train_word2vec([["a", "b"]], SMALL)
    with pytest.raises(TextseqError, match="stdin"):
        LineCorpus("-")


@pytest.mark.parametrize("name,fmt", [("v.kv", None), ("v.txt", None), ("v.vec", None), ("v.bin", None),
                                      ("v.glove", None), ("glove.txt", "glove"), ("binary.dat", "word2vec-binary")])
def test_save_load_round_trip(tmp_path, pride_vectors, name, fmt):
    path = tmp_path / name
    save_vectors(pride_vectors, path, fmt=fmt)
    if fmt == "glove":
        assert len(path.read_text(encoding="utf-8").splitlines()[0].split()) == 51  # no header line
    loaded = load_vectors(path)  # format detected from the content
    assert loaded.index_to_key == pride_vectors.index_to_key
    np.testing.assert_allclose(loaded.vectors, pride_vectors.vectors, rtol=1e-6, atol=1e-7)


def test_bad_vector_files_raise_textseq_error(tmp_path, pride_vectors):
    with pytest.raises(TextseqError, match="does not exist"):
        load_vectors(tmp_path / "missing.kv")
    cases = {"garbage.kv": b"\x80not a pickle", "short.txt": b"3 4\nthe 0.1 0.2\n", "empty.txt": b"",
             "ragged.glove": b"the 0.1 0.2 0.3\nof 0.5\n", "ragged.txt": b"2 3\nthe 0.1 0.2 0.3\nof 0.5\n"}
    save_vectors(pride_vectors, tmp_path / "good.bin")
    cases["truncated.bin"] = (tmp_path / "good.bin").read_bytes()[:5000]
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(TextseqError):
            load_vectors(tmp_path / name)
    with pytest.raises(TextseqError, match="format"):
        save_vectors(pride_vectors, tmp_path / "vectors.unknown")


def test_nearest_neighbours(pride_vectors):
    result = nearest(pride_vectors, "he", topn=5)
    assert len(result) == 5 and "he" not in [w for w, _ in result]
    unit = pride_vectors.vectors / np.linalg.norm(pride_vectors.vectors, axis=1, keepdims=True)
    cosine = unit @ unit[pride_vectors.key_to_index["he"]]
    brute = [pride_vectors.index_to_key[i] for i in np.argsort(-cosine)[1:6]]
    assert [w for w, _ in result] == brute
    assert [s for _, s in result] == pytest.approx(np.sort(cosine)[::-1][1:6], rel=1e-5)
    assert "she" in brute[:3]  # learned from 144 KB of Austen
    with pytest.raises(TextseqError, match="no vector"):
        nearest(pride_vectors, "zyzzyva")
