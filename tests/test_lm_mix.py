"""Interpolation with the Kneser-Ney partner, automatic settings, evaluate --json / -k 0."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from textseq.cli import run
from textseq.errors import TextseqError
from textseq.features.ngram_lm import KneserNeyLM
from textseq.lm.auto import MODEL_FIELDS, TRAIN_FIELDS, choose
from textseq.lm.checkpoint import read_lm
from textseq.lm.evaluate import evaluate_checkpoint
from textseq.lm.mix import (
    MIN_BUCKET_EVENTS,
    WEIGHT_GRID,
    complete_lines,
    fit_bucket_weights,
    fit_weight,
    lines_as_tokens,
    mixed_nll,
)
from textseq.lm.train import resolve_config
from textseq.vocab import Vocab

pytestmark = pytest.mark.usefixtures("one_thread")

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
SMALL = ["--hidden", "32", "--emb", "16", "--layers", "1", "--bptt", "16", "--batch-size", "8", "--lr", "0.01",
         "--quiet"]



@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    root = tmp_path_factory.mktemp("texts")
    lines = open(CORPORA / "en" / "shakespeare_sample.txt", encoding="utf-8").readlines()
    (root / "train.txt").write_text("".join(lines[:400]), encoding="utf-8")
    (root / "heldout.txt").write_text("".join(lines[500:560]), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def trained(texts, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mix") / "run"
    assert run(["train", str(texts / "train.txt"), "-o", str(run_dir), "--max-steps", "30", "--epochs", "5",
                *SMALL]) == 0
    return run_dir


def test_weight_search_never_loses_to_either_model():
    rng = np.random.default_rng(0)
    for _ in range(20):
        lm = np.log(rng.uniform(0.01, 1.0, 500))
        kn = np.log(rng.uniform(0.01, 1.0, 500)) * rng.uniform(0.2, 3.0)
        weight, nll = fit_weight(lm, kn)
        assert nll <= min(-lm.mean(), -kn.mean()) + 1e-12
        assert nll == pytest.approx(mixed_nll(lm, kn, weight))
    assert WEIGHT_GRID[0] == 0.0 and WEIGHT_GRID[-1] == 1.0
    lm, kn = np.log(np.full(10, 0.5)), np.log(np.full(10, 0.25))
    assert mixed_nll(lm, kn, 1.0) == pytest.approx(math.log(2)) and mixed_nll(lm, kn, 0.0) == pytest.approx(math.log(4))
    assert fit_weight(lm, kn)[0] == 1.0  # the better model alone
    with pytest.raises(TextseqError):
        mixed_nll(lm, kn, 1.5)
    with pytest.raises(TextseqError):
        fit_weight(lm, kn[:5])


def test_weights_by_context_strength_never_lose_to_one_weight():
    rng = np.random.default_rng(1)
    n = 4000
    strength = rng.integers(0, 6, n)
    strength[:50] = 7  # a strength with too few events keeps the global weight
    # the n-gram model is good where its context is strong (high strength), poor elsewhere
    kn = np.log(np.where(strength >= 3, rng.uniform(0.3, 1.0, n), rng.uniform(0.001, 0.05, n)))
    lm = np.log(rng.uniform(0.05, 0.5, n))
    weight, global_nll = fit_weight(lm, kn)
    table, nll = fit_bucket_weights(lm, kn, strength, 8, weight)
    assert len(table) == 8 and nll < global_nll - 0.05  # clearly better: the buckets differ
    assert table[7] == weight and table[6] == weight  # 50 and 0 events: not enough for their own weight
    assert 50 < MIN_BUCKET_EVENTS
    assert max(table[3:6]) < min(table[:3])  # trust the n-gram model more where its context is strong
    assert nll == pytest.approx(mixed_nll(lm, kn, np.asarray(table)[strength]))
    for _ in range(10):  # on the data it was fitted on, never worse than one weight or either model alone
        lm, kn = np.log(rng.uniform(0.01, 1.0, 800)), np.log(rng.uniform(0.01, 1.0, 800))
        strength = rng.integers(0, 4, 800)
        weight, global_nll = fit_weight(lm, kn)
        assert fit_bucket_weights(lm, kn, strength, 4, weight)[1] <= global_nll + 1e-12


def test_context_strength_of_the_kn_model():
    kn = KneserNeyLM(order=3).fit([list("abcab"), list("cab"), list("bca")] * 5)
    logp, strength = kn.score_events([list("abz"), list("ca")])
    assert np.allclose(logp, kn.token_logprobs([list("abz"), list("ca")]))
    assert len(strength) == len(logp) == 4 + 3 and strength.max() < kn.strength_levels
    # the same strengths, one context at a time, as generation sees them
    contexts = [list("abz")[:i] for i in range(4)] + [list("ca")[:i] for i in range(3)]
    assert [kn.context_strength(c) for c in contexts] == strength.tolist()
    assert kn.context_strength(list("zz")) < kn.context_strength(list("ab"))  # unseen vs. seen 5 times


def test_kn_token_logprobs_match_its_evaluation():
    vocab = Vocab.from_docs([list("abcab"), list("cab")])
    docs = [list("abca"), list("bb"), []]
    kn = KneserNeyLM(order=3, vocab=vocab).fit([list("abcab"), list("cab"), list("bca")])
    logp = kn.token_logprobs(docs)
    assert len(logp) == 4 + 1 + 2 + 1 + 0 + 1  # every token and each line's <eos>
    assert -logp.sum() == pytest.approx(kn.evaluate(docs).nll)


def test_complete_lines_cut_partial_lines():
    vocab = Vocab.from_docs([list("ab")])
    eos = vocab.stoi["<eos>"]
    a, b = vocab.stoi["a"], vocab.stoi["b"]
    ids = np.array([a, eos, b, a, eos, a, eos, b])
    whole = complete_lines(ids, eos)
    assert whole.tolist() == [b, a, eos, a, eos]
    assert lines_as_tokens(whole, vocab) == [["b", "a"], ["a"]]
    assert len(complete_lines(np.array([a, eos, b]), eos)) == 0


def test_training_stores_the_kn_partner_and_evaluate_mixes(trained, texts, capsys):
    assert {p.name for p in trained.iterdir()} == {"best.pt", "last.pt", "loss.png", "ngram.npz"}
    mix = read_lm(trained / "best.pt")["ngram"]
    assert mix["file"] == "ngram.npz" and 0.0 <= mix["weight"] <= 1.0 and 3 <= mix["order"] <= 7
    assert mix["valid_nll_mix"] <= min(mix["valid_nll_lm"], mix["valid_nll_kn"]) + 1e-12
    assert KneserNeyLM.load(trained / "ngram.npz").order == mix["order"]

    report = evaluate_checkpoint(trained / "best.pt", texts / "heldout.txt", horizon=0, cache=None, dynamic=None)
    names = [row.name for row in report.rows]
    assert names[0] == "RNN teacher-forced" and names[1] == f"Kneser-Ney {mix['order']}-gram"
    assert names[2].startswith("RNN + KN") and report.mix_weight == mix["weight"]
    assert report.rows[1].vs_kn == 1.0 and report.horizon_nll == []
    lm_row, kn_row, mix_row = report.rows
    lm_only = evaluate_checkpoint(trained / "best.pt", texts / "heldout.txt", horizon=0, mix_kn=1.0, cache=None,
                                  dynamic=None)
    kn_only = evaluate_checkpoint(trained / "best.pt", texts / "heldout.txt", horizon=0, mix_kn=0.0, cache=None,
                                  dynamic=None)
    assert lm_only.rows[2].nll == pytest.approx(lm_row.nll) and kn_only.rows[2].nll == pytest.approx(kn_row.nll)
    assert mix_row.vs_kn == pytest.approx(mix_row.metric / kn_row.metric)

    capsys.readouterr()
    assert run(["evaluate", str(trained / "best.pt"), str(texts / "heldout.txt"), "-k", "0", "--json", "--cache",
                "off", "--dynamic", "off"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["metric"] == "bpc" and data["tokens"] == report.tokens and data["horizon_nll"] == []
    assert [row["name"] for row in data["rows"]] == names
    assert all(set(row) == {"name", "nll", "metric", "vs_kn"} for row in data["rows"])
    assert run(["evaluate", str(trained / "best.pt"), str(texts / "heldout.txt"), "-k", "2", "--mix-kn",
                "off"]) == 0
    out = capsys.readouterr().out
    assert "vs KN" in out and "free-running (2-step)" in out and "RNN + KN" not in out
    assert run(["evaluate", str(trained / "best.pt"), str(texts / "heldout.txt"), "--mix-kn", "2"]) == 2
    assert "--mix-kn" in capsys.readouterr().err


def test_no_kn_partner_when_switched_off(texts, tmp_path):
    run_dir = tmp_path / "run"
    assert run(["train", str(texts / "train.txt"), "-o", str(run_dir), "--max-steps", "3", "--no-kn-mix",
                *SMALL]) == 0
    assert "ngram" not in read_lm(run_dir / "best.pt") and not (run_dir / "ngram.npz").exists()
    report = evaluate_checkpoint(run_dir / "best.pt", texts / "heldout.txt", horizon=0)
    assert [row.name for row in report.rows] == ["RNN teacher-forced", "Kneser-Ney 5-gram"]  # fitted here, no cache
    assert "cache" not in read_lm(run_dir / "best.pt")


def test_automatic_settings_fill_only_what_was_not_given():
    cfg, model = resolve_config({"data": "x", "output": "y", "lr": 0.01}, {"hidden_size": 64}, auto=True)
    assert "lr" not in cfg.auto and "hidden_size" not in cfg.auto
    assert set(cfg.auto) == (set(TRAIN_FIELDS) - {"lr"}) | (set(MODEL_FIELDS) - {"hidden_size"})
    assert resolve_config({"data": "x", "output": "y"}, {})[0].auto == ()  # the library default: none
    small, large = choose("word", 50_000, 30_000, 300), choose("word", 5_000_000, 30_000, 300)
    assert small == choose("word", 50_000, 30_000, 300)  # deterministic
    assert small.model["adaptive_softmax"] and not choose("char", 50_000, 90, 300).model["adaptive_softmax"]
    assert small.model["weight_drop"] > large.model["weight_drop"]  # read more often: more regularization
    assert choose("word", 50_000, 3_000, 300).model["tie_weights"]


def test_train_header_shows_the_chosen_settings(texts, tmp_path, capsys):
    assert run(["train", str(texts / "train.txt"), "-o", str(tmp_path / "run"), "--max-time", "1", "--hidden", "32",
                "--emb", "16", "--batch-size", "8", "--bptt", "16"]) == 0
    err = capsys.readouterr().err
    assert "model: LSTM 1x32, embedding 16" in err and "batch 8 x bptt 16" in err
    assert "chosen automatically" in err and "cosine schedule" in err
    stored = read_lm(tmp_path / "run" / "best.pt")
    assert tuple(stored["train_config"]["auto"]) == () and stored["train_config"]["scheduler"] == "cosine"


def test_generation_mixed_with_the_kn_partner(trained, capsys):
    from textseq.features.ngram_lm import KneserNeyLM
    from textseq.lm.checkpoint import LMCheckpoint
    from textseq.lm.mix import MixedLM
    from textseq.lm.sampling import SamplingConfig, generate

    ckpt = LMCheckpoint.load(trained / "best.pt")
    ngram = KneserNeyLM.load(trained / "ngram.npz")
    prompt = [ckpt.vocab.stoi["<eos>"]] + ckpt.vocab.encode(list("ROMEO"))
    greedy = SamplingConfig(max_tokens=15, greedy=True, stop_at_eos=False)
    lm_only = generate(ckpt.model, prompt, greedy, eos_id=ckpt.vocab.stoi["<eos>"])
    assert generate(MixedLM(ckpt.model, ngram, ckpt.vocab, 1.0), prompt, greedy,
                    eos_id=ckpt.vocab.stoi["<eos>"]) == lm_only  # weight 1: the LM alone
    kn_mix = MixedLM(ckpt.model, ngram, ckpt.vocab, 0.0)
    features, state = kn_mix(torch.tensor([prompt]))
    probs = kn_mix.log_probs(features[:, -1]).exp()[0].detach()
    expected = ngram.distribution(list("ROMEO"))
    for token in ("E", "O", ":", "<eos>"):  # weight 0: the n-gram model's next-token distribution
        assert float(probs[ckpt.vocab.stoi[token]]) == pytest.approx(expected[ngram._stoi[token]], rel=1e-5)
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
    beams = generate(MixedLM(ckpt.model, ngram, ckpt.vocab, 0.5), prompt,
                     SamplingConfig(max_tokens=8, beam_size=3, num_samples=2), eos_id=ckpt.vocab.stoi["<eos>"])
    assert len(beams) == 2
    capsys.readouterr()
    assert run(["generate", str(trained / "best.pt"), "-p", "ROMEO", "-n", "20", "--seed", "1", "--mix-kn",
                "auto"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO")
    assert run(["generate", str(trained / "best.pt"), "-p", "ROMEO", "--mix-kn", "1.5"]) == 2


def test_cache_votes_for_tokens_that_followed_similar_states():
    from textseq.lm.cache import cache_probs, mixed_nll

    states = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])  # [R=1, N=4, H=2]
    targets = torch.tensor([[7, 8, 7, 9]])
    probs = cache_probs(states, targets, size=10, theta=50.0)
    assert probs[0, 0] == 0.0  # nothing cached before the first position
    assert probs[0, 2] == pytest.approx(1.0, abs=1e-6)  # its twin at 0 was followed by 7, like position 2
    assert probs[0, 3] == pytest.approx(0.0, abs=1e-6)  # its twin at 1 was followed by 8, not 9
    assert cache_probs(states, targets, size=1, theta=50.0)[0, 2] == 0.0  # position 0 is out of reach
    lm = np.log(np.full(4, 0.1))
    assert mixed_nll(lm, np.zeros(4), 0.0) == pytest.approx(-math.log(0.1))


def test_evaluate_reports_the_fitted_cache(trained, texts):
    stored = read_lm(trained / "best.pt")["cache"]
    assert stored["valid_nll_cache"] <= stored["valid_nll_lm"] + 1e-12 and 0.0 <= stored["weight"] <= 0.5
    both = read_lm(trained / "best.pt")["cache_with_kn"]  # the cache on top of the LM+KN mix
    mix = read_lm(trained / "best.pt")["ngram"]
    assert both["valid_nll_lm"] == pytest.approx(mix["valid_nll_mix"]) and both["valid_nll_cache"] <= \
        mix["valid_nll_mix"] + 1e-12
    report = evaluate_checkpoint(trained / "best.pt", texts / "heldout.txt", horizon=0, dynamic=None)
    names = [row.name for row in report.rows]
    assert names[-2].startswith(f"RNN + cache ({stored['size']}") and names[-1].startswith("RNN + KN + cache (")
    if stored["weight"] == 0:
        assert report.rows[-2].nll == pytest.approx(report.rows[0].nll)
    if both["weight"] == 0:
        assert report.rows[-1].nll == pytest.approx(report.rows[2].nll)  # the LM+KN row
    smaller = evaluate_checkpoint(trained / "best.pt", texts / "heldout.txt", horizon=0, mix_kn=None, cache=5,
                                  dynamic=None)
    assert smaller.rows[-1].name.startswith("RNN + cache (5,")  # no KN mix: no three-way row


def test_generation_cache_gives_the_probabilities_evaluation_scores(trained, texts, capsys):
    from dataclasses import replace

    from textseq.lm.cache import CachedLM, CacheSettings, cache_probs, states_and_targets
    from textseq.lm.checkpoint import LMCheckpoint
    from textseq.lm.evaluate import token_logprobs
    from textseq.lm.sampling import SamplingConfig, generate

    ckpt = LMCheckpoint.load(trained / "best.pt")
    settings = replace(CacheSettings(**ckpt.data["cache"]), weight=0.3, theta=0.5)  # a cache that matters
    ids = [ckpt.vocab.stoi["<eos>"]] + ckpt.vocab.encode(list(open(texts / "heldout.txt").read()[:120]))
    size = 40
    # scoring: one row, teacher-forced; the cache mixes in the probability of the true next token
    inputs, targets = torch.tensor([ids[:-1]]), torch.tensor([ids[1:]])
    states, _ = states_and_targets(ckpt.model, inputs, targets, bptt=1000)
    p_cache = cache_probs(states, targets, size, settings.theta)[0].numpy()
    p_lm = np.exp(token_logprobs(ckpt.model, np.array(ids), batch_size=1, bptt=1000))
    expected = np.log((1 - settings.weight) * p_lm + settings.weight * p_cache)
    # generation: the prompt in one call, then token by token; both paths agree on every position
    cached = CachedLM(ckpt.model, settings, size)
    with torch.no_grad():
        features, state = cached(torch.tensor([ids[:50]]))
        got = [float(cached.log_probs(features[:, -1])[0, ids[50]])]
        for position in range(50, len(ids) - 1):
            log_probs, state = cached.step(torch.tensor([ids[position]]), state)
            got.append(float(log_probs[0, ids[position + 1]]))
    assert np.allclose(got, expected[49:], atol=1e-4)
    assert state[-3].shape == (1, 1, size, ckpt.model.cfg.hidden_size)  # the cache is full: only the last 40
    eos = ckpt.vocab.stoi["<eos>"]
    samples = generate(cached, ids[:5], SamplingConfig(max_tokens=12, num_samples=3, seed=0), eos_id=eos)
    beams = generate(cached, ids[:5], SamplingConfig(max_tokens=12, beam_size=3, num_samples=2), eos_id=eos)
    assert len(samples) == 3 and len(beams) == 2
    capsys.readouterr()
    assert run(["generate", str(trained / "best.pt"), "-p", "ROMEO", "-n", "20", "--seed", "1", "--cache",
                "auto", "--mix-kn", "auto"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO")
    assert run(["generate", str(trained / "best.pt"), "-p", "ROMEO", "--cache", "0"]) != 0
    assert "--cache takes auto, off or a number" in capsys.readouterr().err


def test_word_level_reads_words_seen_once_as_unk_unless_min_count_is_given(texts, tmp_path, capsys):
    assert choose("word", 50_000, 3_000, 300).train["min_count"] == 2
    assert choose("char", 50_000, 90, 300).train["min_count"] == 1
    common = ["--level", "word", "--max-steps", "2", "--hidden", "16", "--emb", "8", "--quiet"]
    assert run(["train", str(texts / "train.txt"), "-o", str(tmp_path / "auto"), *common]) == 0
    assert run(["train", str(texts / "train.txt"), "-o", str(tmp_path / "given"), "--min-count", "1", *common]) == 0
    auto, given = read_lm(tmp_path / "auto" / "best.pt"), read_lm(tmp_path / "given" / "best.pt")
    assert auto["train_config"]["min_count"] == 2 and given["train_config"]["min_count"] == 1
    once = {token for token, n in zip(given["vocab"]["tokens"], given["vocab"]["counts"], strict=True) if n == 1}
    assert once and not once & set(auto["vocab"]["tokens"])  # every word seen once is <unk> now
    assert set(auto["vocab"]["tokens"]) == set(given["vocab"]["tokens"]) - once
