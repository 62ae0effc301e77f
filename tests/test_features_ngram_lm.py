"""KneserNeyLM: textbook formulas, normalisation, held-out quality, nltk correspondence, persistence."""

import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from textseq.errors import TextseqError
from textseq.features.ngram_lm import KneserNeyLM, estimate_discounts

CORPORA = Path(__file__).resolve().parents[1] / "corpora"


def read_docs(name: str, tokenize=str.split, limit: int | None = None) -> list[list[str]]:
    with open(CORPORA / name, encoding="utf-8") as fh:
        docs = [tokenize(line.strip()) for line in fh if line.strip()]
    return docs[:limit]


def split(docs, train_fraction=0.9):
    cut = int(len(docs) * train_fraction)
    return docs[:cut], docs[cut:]


@pytest.fixture(scope="module")
def pride_words():
    return read_docs("en/pride_sample.txt", lambda line: line.lower().split())


@pytest.fixture(scope="module")
def songci_chars():
    return read_docs("zh/songci_sample.txt", list)


# --------------------------------------------------------------------- a literal transcription as oracle

def reference_kn(docs, order, discount=None):
    """Interpolated modified Kneser-Ney written out with dicts, straight from Chen & Goodman / KenLM."""
    raw = [Counter() for _ in range(order + 1)]
    vocab = {"<eos>", "<unk>"}
    for doc in docs:
        seq = ["<bos>", *doc, "<eos>"]
        vocab.update(doc)
        for i in range(1, len(seq)):
            for k in range(1, min(order, i + 1) + 1):
                raw[k][tuple(seq[i - k + 1:i + 1])] += 1
    adjusted = [Counter() for _ in range(order + 1)]
    adjusted[order] = raw[order]
    for k in range(order - 1, 0, -1):
        for gram in raw[k + 1]:
            adjusted[k][gram[1:]] += 1  # one more distinct left extension
        for gram, n in raw[k].items():
            if gram[0] == "<bos>":
                adjusted[k][gram] = n
    discounts = {}
    for k in range(1, order + 1):
        if discount is not None:
            discounts[k] = (discount,) * 3
        else:
            coc = Counter(adjusted[k].values())
            discounts[k] = estimate_discounts([coc[1], coc[2], coc[3], coc[4]])
    totals, followers = [defaultdict(float) for _ in range(order + 1)], [defaultdict(list) for _ in range(order + 1)]
    for k in range(1, order + 1):
        for gram, n in adjusted[k].items():
            totals[k][gram[:-1]] += n
            followers[k][gram[:-1]].append(n)

    def disc(k, n):
        return 0.0 if n == 0 else discounts[k][min(n, 3) - 1]

    def prob(history, word):
        p = 1.0 / len(vocab)
        for k in range(1, order + 1):
            if k - 1 > len(history):
                break
            h = tuple(history[len(history) - (k - 1):])
            if totals[k][h] == 0:
                continue
            n = adjusted[k][h + (word,)]
            gamma = sum(disc(k, c) for c in followers[k][h])
            p = (n - disc(k, n) + gamma * p) / totals[k][h]
        return p

    return prob, vocab


@pytest.mark.parametrize("order,discount", [(1, None), (2, None), (3, None), (4, 0.7)])
def test_matches_literal_formulas_on_real_text(pride_words, order, discount):
    train = pride_words[:120]
    lm = KneserNeyLM(order, discount=discount).fit(train)
    prob, vocab = reference_kn(train, order, discount)
    assert set(lm.tokens) == vocab | {"<bos>"}
    contexts = [(), ("the",), ("of", "the"), ("said", "mr", "bennet"), ("zebra", "the"), tuple(train[3][:2])]
    words = sorted(vocab)[:60] + ["<eos>", "<unk>", "elizabeth", "the"]
    for context in contexts:
        history = ["<bos>", *[w if w in vocab else "<unk>" for w in context]]
        for word in words:
            assert math.exp(lm.logprob(context, word)) == pytest.approx(prob(history, word), rel=1e-10)


def test_discounts_follow_chen_goodman():
    n1, n2, n3, n4 = 1000, 400, 200, 120
    y = n1 / (n1 + 2 * n2)
    expected = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    assert estimate_discounts([n1, n2, n3, n4]) == pytest.approx(expected)
    # missing count-of-counts (tiny data) fall back to Y, and discounts stay within (0, j]
    d1, d2, d3 = estimate_discounts([5, 0, 0, 0])
    assert d1 == 1.0 and 0 < d2 <= 2 and 0 < d3 <= 3


# --------------------------------------------------------------------- a probability distribution

@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distributions_sum_to_one(pride_words, songci_chars, order):
    for docs in (pride_words[:1500], songci_chars[:1500]):
        train, held_out = split(docs)
        lm = KneserNeyLM(order).fit(train)
        contexts = [(), tuple(train[0][:1]), tuple(train[5][:4]), tuple(held_out[0][:6]),
                    ("<unseen>",), ("<unseen>", *train[1][:2]), tuple(train[2]) * 3]
        for context in contexts:
            dist = lm.distribution(context)
            assert dist.sum() == pytest.approx(1.0, abs=1e-9)
            assert dist.min() >= 0 and dist[lm.tokens.index("<bos>")] == 0
        # the scalar path agrees with the vectorized one
        some = lm.tokens[1:40]
        dist = lm.distribution(contexts[2])
        assert [math.exp(lm.logprob(contexts[2], w)) for w in some] == pytest.approx(dist[1:40], rel=1e-12)


def test_evaluate_equals_sum_of_logprobs(pride_words):
    train, held_out = split(pride_words[:800])
    lm = KneserNeyLM(4).fit(train)
    lines = held_out[:15] + [[], ["never-seen", "words"]]
    nll = -sum(lm.logprob(line[:i], token) for line in lines for i, token in enumerate([*line, "<eos>"]))
    score = lm.evaluate(lines)
    assert score.tokens == sum(len(line) + 1 for line in lines)
    assert score.nll == pytest.approx(nll, rel=1e-12)
    assert score.perplexity == pytest.approx(math.exp(nll / score.tokens))
    assert score.bits_per_token == pytest.approx(nll / score.tokens / math.log(2))
    assert 0 < score.oov_rate < 0.5


# --------------------------------------------------------------------- held-out quality

def test_word_trigram_beats_unigram_on_held_out_pride(pride_words):
    train, held_out = split(pride_words)
    ppl = {n: KneserNeyLM(n).fit(train).evaluate(held_out).perplexity for n in (1, 2, 3)}
    assert ppl[3] < ppl[2] < ppl[1]
    assert ppl[3] < 0.8 * ppl[1]


def test_char_5gram_beats_bigram_on_held_out_songci(songci_chars):
    train, held_out = split(songci_chars)
    bpc = {n: KneserNeyLM(n).fit(train).evaluate(held_out).bits_per_token for n in (2, 5)}
    assert bpc[5] < bpc[2] - 0.1


def test_fixed_vocab_maps_rare_tokens_to_unk(pride_words):
    train, held_out = split(pride_words[:1000])
    vocab = sorted({w for doc in train for w in doc})[:300]
    lm = KneserNeyLM(3, vocab=vocab).fit(train)
    assert lm.vocab_size == len(vocab) + 2  # + <eos>, <unk>
    assert lm.distribution(("the",)).sum() == pytest.approx(1.0)
    assert lm.evaluate(held_out).oov_rate > 0.3
    assert lm.logprob(("the",), "some-unknown-word") == lm.logprob(("the",), "<unk>")


# --------------------------------------------------------------------- nltk

def test_nltk_agrees_except_at_the_unigram_level(pride_words):
    """nltk.lm.KneserNeyInterpolated is a different variant, so probabilities are not equal:
    its unigram level is the undiscounted continuation distribution N1+(.w)/N1+(..) with no uniform
    floor (unseen words get probability 0, perplexity inf), it pads with order-1 "<s>" so "<s>" itself gets
    probability mass and contexts starting with "<s>" do not sum to 1 (measured: 1.00005 and 1.0007 for an
    order-3 model), and it uses one fixed discount (0.1) instead of D1, D2, D3+.
    For contexts inside a line and a fixed discount everything above the unigram level is the same formula,
    so P_ours - P_nltk must equal (product of the interpolation weights) * (P1_ours - P1_nltk)."""
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    docs = [[w.replace("<", "") for w in doc] for doc in pride_words[:60]]
    for order in (2, 3):
        ours = KneserNeyLM(order, discount=0.1).fit(docs)
        ngrams, vocab = padded_everygram_pipeline(order, docs)
        theirs = KneserNeyInterpolated(order, discount=0.1)
        theirs.fit(ngrams, vocab)
        for doc in docs[:8]:
            for i in range(order - 1, len(doc)):
                context = tuple(doc[i - order + 1:i])
                weight = 1.0
                for k in range(len(context)):
                    if theirs.counts[context[k:]]:
                        weight *= theirs.estimator.alpha_gamma(doc[i], context[k:])[1]
                for word in (doc[i], "</s>", "the", "elizabeth"):
                    ours_word = "<eos>" if word == "</s>" else word
                    unigram_diff = (math.exp(ours.logprob(("<unseen>",), ours_word))
                                    - theirs.estimator.unigram_score(word))
                    expected = theirs.score(word, context) + weight * unigram_diff
                    assert math.exp(ours.logprob(context, ours_word)) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------- persistence and errors

@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_save_load_round_trip(tmp_path, songci_chars, suffix):
    train, held_out = split(songci_chars[:600])
    lm = KneserNeyLM(4).fit(train)
    path = tmp_path / f"kn{suffix}"
    lm.save(path)
    loaded = KneserNeyLM.load(path)
    assert loaded.tokens == lm.tokens and loaded.order == 4
    assert loaded.evaluate(held_out) == lm.evaluate(held_out)
    np.testing.assert_array_equal(loaded.distribution(held_out[0][:3]), lm.distribution(held_out[0][:3]))
    assert KneserNeyLM.from_dict(lm.to_dict()).evaluate(held_out) == lm.evaluate(held_out)


def test_errors_are_user_facing(tmp_path):
    with pytest.raises(TextseqError, match="does not exist"):
        KneserNeyLM.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(TextseqError, match="not a valid"):
        KneserNeyLM.load(bad)
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(TextseqError, match="not a valid"):
        KneserNeyLM.load(tmp_path / "other.json")
    with pytest.raises(TextseqError, match="not fitted"):
        KneserNeyLM(2).evaluate([["a"]])
    with pytest.raises(TextseqError, match="order"):
        KneserNeyLM(0)
    with pytest.raises(TextseqError, match="discount"):
        KneserNeyLM(3, discount=1.5)
    with pytest.raises(TextseqError, match="no lines"):
        KneserNeyLM(3).fit([])


def test_short_lines_and_high_order():
    lm = KneserNeyLM(6).fit([["a"], ["b", "a"], []])
    assert lm.distribution(("b",)).sum() == pytest.approx(1.0)
    assert math.isfinite(lm.evaluate([["a", "b", "c", "a", "b"]]).nll)
    assert lm.logprob(("b", "<bos>"), "<bos>") == lm.logprob(("b", "<unk>"), "<unk>")  # as inside a line
