"""Vocabulary: filters, deterministic ids, encode/decode, JSON round-trip."""

import pytest

from textseq.errors import TextseqError
from textseq.vocab import EOS, PAD, UNK, TokenCounts, Vocab, VocabConfig, count_tokens

DOCS = [["the", "cat", "sat"], ["the", "dog", "sat"], ["the", "cat", "ran"], ["a", "bird"]]


def test_ids_are_deterministic_specials_first_then_by_count():
    vocab = Vocab.from_docs(DOCS)
    assert vocab.itos[:4] == [PAD, UNK, "<bos>", EOS]
    assert vocab.itos[4:] == ["the", "cat", "sat", "a", "bird", "dog", "ran"]
    shuffled = Vocab.from_docs(list(reversed(DOCS)))
    assert shuffled.itos == vocab.itos


def test_frequency_filters_absolute_and_ratio():
    assert "the" not in Vocab.from_docs(DOCS, VocabConfig(max_df=0.5))
    assert "cat" in Vocab.from_docs(DOCS, VocabConfig(max_df=0.5))
    assert Vocab.from_docs(DOCS, VocabConfig(min_count=2)).itos[4:] == ["the", "cat", "sat"]
    assert Vocab.from_docs(DOCS, VocabConfig(min_df=2, max_count=2)).itos[4:] == ["cat", "sat"]
    assert len(Vocab.from_docs(DOCS, VocabConfig(max_size=6))) == 6


def test_encode_maps_unknown_to_unk_and_decodes_back():
    vocab = Vocab.from_docs(DOCS)
    ids = vocab.encode(["the", "zebra", "sat"])
    assert ids[1] == vocab.unk_id
    assert vocab.decode(ids) == ["the", UNK, "sat"]


def test_no_unk_vocab_rejects_unknown_tokens():
    vocab = Vocab.from_docs(DOCS, VocabConfig(specials=()))
    with pytest.raises(TextseqError, match="zebra"):
        vocab.encode(["zebra"])


def test_counts_merge_like_a_single_pass():
    halves = count_tokens(DOCS[:2]).merge(count_tokens(DOCS[2:]))
    whole = count_tokens(DOCS)
    assert (halves.term, halves.doc, halves.n_docs) == (whole.term, whole.doc, whole.n_docs)
    assert isinstance(whole, TokenCounts)


def test_json_round_trip_and_bad_files(tmp_path):
    vocab = Vocab.from_docs([["学", "而", "时", "习", "之"], ["学", "习"]])
    vocab.save(tmp_path / "v.json")
    again = Vocab.load(tmp_path / "v.json")
    assert again.itos == vocab.itos and again.counts == vocab.counts
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TextseqError, match="not a valid vocabulary"):
        Vocab.load(tmp_path / "bad.json")
    with pytest.raises(TextseqError, match="does not exist"):
        Vocab.load(tmp_path / "missing.json")
