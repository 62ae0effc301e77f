import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from textseq.errors import TextseqError
from textseq.lm.model import LMConfig, RNNLanguageModel
from textseq.lm.sampling import SamplingConfig, beam_search, generate, top_k_filter, top_p_filter

V = 30


@pytest.fixture(scope="module")
def model() -> RNNLanguageModel:
    torch.manual_seed(0)
    lm = RNNLanguageModel(LMConfig(vocab_size=V, emb_size=16, hidden_size=16, num_layers=2, dropout=0.0))
    with torch.no_grad():  # sharpen the random model so different choices matter
        lm.decoder.weight.mul_(30)
    return lm.eval()


class BigramModel(nn.Module):
    """A test double with the LM interface whose next-token distribution is a fixed table row
    picked by the last token; the hidden state is the one-hot of that token."""

    def __init__(self, table: list[list[float]]):
        super().__init__()
        self.log_table = nn.Parameter(torch.tensor(table).log())
        self.cfg = LMConfig(vocab_size=len(table))

    def forward(self, ids, hidden=None):
        one_hot = nn.functional.one_hot(ids, self.cfg.vocab_size).float()
        return one_hot, one_hot[:, -1].unsqueeze(0)

    def log_probs(self, features):
        return features @ self.log_table

    def step(self, ids, hidden):
        features, hidden = self(ids.unsqueeze(1), hidden)
        return self.log_probs(features[:, 0]), hidden


def argmax_chain_by_rerunning_prefix(lm, prompt, n):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            features, _ = lm(torch.tensor([ids]))
            ids.append(int(lm.log_probs(features[0, -1]).argmax()))
    return ids[len(prompt):]


def sequence_log_prob(lm, prompt, continuation):
    with torch.no_grad():
        ids = torch.tensor([prompt + continuation])
        log_probs = lm.log_probs(lm(ids)[0])[0, len(prompt) - 1:-1]
        return log_probs.gather(-1, torch.tensor(continuation).unsqueeze(-1)).sum().item()


def test_greedy_is_deterministic_and_equals_the_argmax_chain(model):
    cfg = SamplingConfig(max_tokens=25, greedy=True)
    first = generate(model, [3, 1, 4], cfg)
    assert first == generate(model, [3, 1, 4], cfg)
    assert first[0] == argmax_chain_by_rerunning_prefix(model, [3, 1, 4], 25)
    assert generate(model, [3, 1, 4], SamplingConfig(max_tokens=25, temperature=0)) == first


def test_top_k_one_equals_greedy(model):
    greedy = generate(model, [5], SamplingConfig(max_tokens=20, greedy=True))
    assert generate(model, [5], SamplingConfig(max_tokens=20, top_k=1, seed=3)) == greedy


def test_top_k_filter_keeps_the_k_largest():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5]])
    kept = top_k_filter(logits, 2).isfinite()
    assert kept.tolist() == [[False, True, False, True, False]]
    assert top_k_filter(logits, 0) is logits


def test_top_p_filter_keeps_the_minimal_nucleus():
    probs = torch.tensor([0.15, 0.5, 0.05, 0.3])
    logits = probs.log()
    assert top_p_filter(logits, 0.45).isfinite().tolist() == [False, True, False, False]
    assert top_p_filter(logits, 0.7).isfinite().tolist() == [False, True, False, True]
    assert top_p_filter(logits, 0.9).isfinite().tolist() == [True, True, False, True]
    exactly_half = torch.tensor([0.25, 0.5, 0.25]).log()  # the top token alone reaches p: keep only it
    assert top_p_filter(exactly_half, 0.5).isfinite().tolist() == [False, True, False]
    gen = torch.Generator().manual_seed(0)
    for p in (0.1, 0.5, 0.9, 0.99):
        logits = torch.randn(8, 50, generator=gen) * 2
        kept = top_p_filter(logits, p).isfinite()
        probs = logits.softmax(-1)
        kept_mass = (probs * kept).sum(-1)
        smallest_kept = probs.masked_fill(~kept, 2.0).min(-1).values
        assert (kept_mass >= p - 1e-6).all()
        assert (kept_mass - smallest_kept < p).all()  # dropping any kept token would fall short


def test_same_seed_same_samples_different_seed_different(model):
    cfg = dict(max_tokens=30, temperature=1.5, num_samples=3)
    first = generate(model, [2], SamplingConfig(seed=7, **cfg))
    assert first == generate(model, [2], SamplingConfig(seed=7, **cfg))
    assert first != generate(model, [2], SamplingConfig(seed=8, **cfg))
    assert len(first) == 3 and len({tuple(s) for s in first}) == 3  # batched samples differ


def test_top_p_and_temperature_restrict_choices(model):
    cfg = SamplingConfig(max_tokens=40, top_p=1e-6, temperature=5.0, seed=1)
    assert generate(model, [7], cfg) == generate(model, [7], SamplingConfig(max_tokens=40, greedy=True))


def stop_table(eos=0):
    # token 1 -> 2 -> 3 -> <eos> surely; after <eos> back to 1
    table = [[0.01] * 4 for _ in range(4)]
    for src, dst in ((eos, 1), (1, 2), (2, 3), (3, eos)):
        table[src][dst] = 0.97
    return table


def test_generation_stops_at_eos_and_leaves_it_out():
    lm = BigramModel(stop_table())
    stop = {"stop_at_eos": True}
    assert generate(lm, [1], SamplingConfig(max_tokens=50, greedy=True, **stop), eos_id=0) == [[2, 3]]
    assert generate(lm, [], SamplingConfig(max_tokens=50, greedy=True, **stop), eos_id=0) == [[1, 2, 3]]
    no_stop = SamplingConfig(max_tokens=7, greedy=True)  # the default: <eos> is a line break
    assert generate(lm, [1], no_stop, eos_id=0) == [[2, 3, 0, 1, 2, 3, 0]]
    batch = generate(lm, [1], SamplingConfig(max_tokens=50, num_samples=20, seed=0, **stop), eos_id=0)
    assert all(0 not in sample for sample in batch) and max(map(len, batch)) < 50


def test_on_token_streams_every_generated_token(model):
    streamed = []
    out = generate(model, [1, 2], SamplingConfig(max_tokens=15, seed=0), on_token=streamed.append)
    assert streamed == out[0] and len(out[0]) == 15


def test_bad_prompts_and_settings_are_user_errors(model):
    with pytest.raises(TextseqError, match="empty"):
        generate(model, [], SamplingConfig(max_tokens=3))
    with pytest.raises(TextseqError, match="token ids"):
        generate(model, [V], SamplingConfig(max_tokens=3))
    with pytest.raises(TextseqError, match="top_p"):
        SamplingConfig(top_p=0.0)
    with pytest.raises(TextseqError, match="num_samples"):
        SamplingConfig(beam_size=2, num_samples=3)


def test_beam_size_one_equals_greedy(model):
    greedy = generate(model, [4, 2], SamplingConfig(max_tokens=20, greedy=True))[0]
    (best, score), = beam_search(model, [4, 2], beam_size=1, max_tokens=20)
    assert best == greedy
    assert math.isclose(score, sequence_log_prob(model, [4, 2], greedy) / 20, rel_tol=1e-4)
    with_eos = generate(model, [4, 2], SamplingConfig(max_tokens=20, greedy=True, stop_at_eos=True),
                        eos_id=greedy[3])[0]
    assert beam_search(model, [4, 2], 1, 20, eos_id=greedy[3], length_penalty=0.0)[0][0] == with_eos


def test_beam_search_beats_greedy_on_a_trap():
    # from 0: greedy takes 1 (0.6) but every continuation of 1 is weak (0.25 each);
    # 2 (0.4) is followed by 3 with 0.97, a much better pair: 0.388 > 0.15.
    table = [[0.01] * 8 for _ in range(8)]
    table[0][1], table[0][2] = 0.6, 0.4
    table[1][4:8] = [0.25] * 4
    table[2][3] = 0.97
    for row in table[3:]:
        row[0] = 0.9
    lm = BigramModel(table)
    greedy = generate(lm, [0], SamplingConfig(max_tokens=2, greedy=True))[0]
    (best, score), *_ = beam_search(lm, [0], beam_size=3, max_tokens=2, length_penalty=0.0)
    assert greedy[0] == 1 and best == [2, 3]
    assert score > sequence_log_prob(lm, [0], greedy) + 0.9
    assert generate(lm, [0], SamplingConfig(max_tokens=2, beam_size=3, num_samples=2,
                                            length_penalty=0.0))[0] == [2, 3]


def test_beam_search_returns_ranked_distinct_hypotheses(model):
    beams = beam_search(model, [1], beam_size=4, max_tokens=6)
    scores = [score for _, score in beams]
    assert len(beams) == 4 and scores == sorted(scores, reverse=True)
    assert len({tuple(ids) for ids, _ in beams}) == 4
    for ids, score in beams:
        assert math.isclose(score, sequence_log_prob(model, [1], ids) / len(ids), rel_tol=1e-4)


def test_tiny_lm_overfits_a_repeated_sequence_and_generates_it_back():
    torch.manual_seed(0)
    pattern = [1, 2, 3, 4, 5, 3, 2, 6, 7, 8]
    data = torch.tensor(pattern * 4)
    lm = RNNLanguageModel(LMConfig(vocab_size=10, emb_size=16, hidden_size=32, num_layers=1, dropout=0.0))
    optimizer = torch.optim.Adam(lm.parameters(), lr=0.03)
    for _ in range(60):
        features, _ = lm(data[None, :-1])
        loss = lm.loss(features, data[None, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    out = generate(lm, pattern[:3], SamplingConfig(max_tokens=27, greedy=True))[0]
    assert out == (pattern * 3)[3:30]
    assert_close(torch.tensor(float(lm.training)), torch.tensor(1.0))  # generate restores train mode


def test_streamed_text_equals_the_returned_text_whatever_the_detokenizer_rewrites():
    import random

    from textseq.lm.generate import Prompt, TextStreamer, continuation_text
    from textseq.text.pipeline import Pipeline, PipelineConfig
    from textseq.text.tokenize import TokenizeConfig
    from textseq.vocab import Vocab

    pipeline = Pipeline(PipelineConfig(tokenize=TokenizeConfig(level="word")))
    words = ["the", "white", "whale", '"', "'s", "n't", ",", ".", "(", ")", "--", "``", "''", "?", "我", "。", "$"]
    vocab = Vocab.from_docs([words])
    eos = vocab.stoi["<eos>"]
    rng = random.Random(0)
    rewritten = 0
    for trial in range(300):
        ids = [rng.choice([eos] + [vocab.stoi[w] for w in words]) for _ in range(rng.randint(1, 30))]
        prefix = ["the", "white", "whale"] if trial % 2 else []
        pieces: list[str] = []
        streamer = TextStreamer(pipeline, vocab, prefix, pieces.append)
        streamer.start()
        for token_id in ids:
            streamer(token_id)
        text = streamer.close()
        assert "".join(pieces) == text == continuation_text(pipeline, vocab, Prompt([], prefix, []), ids)
        lines, line = [], list(prefix)
        for token in vocab.decode(ids):
            if token == "<eos>":
                lines.append(pipeline.detokenize(line) + "\n")
                line = []
            else:
                line.append(token)
        rewritten += text != "".join(lines) + pipeline.detokenize(line)
    assert rewritten <= 3  # holding back the last tokens leaves (almost) nothing for the detokenizer to rewrite
    # the case of the report: a quote after the prompt used to end the streamed text there
    pieces = []
    streamer = TextStreamer(pipeline, vocab, ["the", "white", "whale"], pieces.append)
    streamer.start()
    for word in ['"', "the", "whale", '"', ",", "the", "whale"]:
        streamer(vocab.stoi[word])
    text = streamer.close()
    assert "".join(pieces) == text == 'the white whale "the whale", the whale'


def test_stop_reasons_and_the_repetition_controls():
    from textseq.lm.sampling import generate_with_reasons

    lm = BigramModel(stop_table())
    samples, reasons = generate_with_reasons(lm, [1], SamplingConfig(max_tokens=50, greedy=True, stop_at_eos=True),
                                             eos_id=0)
    assert samples == [[2, 3]] and reasons == ["eos"]
    longer = SamplingConfig(max_tokens=50, greedy=True, stop_at_eos=True, min_new_tokens=4)
    samples, reasons = generate_with_reasons(lm, [1], longer, eos_id=0)
    assert len(samples[0]) >= 4 and reasons == ["eos"]  # <eos> was not allowed before 4 new tokens
    loop = SamplingConfig(max_tokens=12, greedy=True)  # 1 2 3 <eos> 1 2 3 <eos> ...: a loop
    assert generate(lm, [1], loop, eos_id=0)[0][:8] == [2, 3, 0, 1, 2, 3, 0, 1]
    no_repeat = generate(lm, [1], SamplingConfig(max_tokens=12, greedy=True, no_repeat_ngram=2), eos_id=0)[0]
    bigrams = list(zip([1, *no_repeat], no_repeat, strict=False))
    assert len(bigrams) == len(set(bigrams))  # no bigram twice
    with pytest.raises(TextseqError, match="repetition penalty"):
        SamplingConfig(repetition_penalty=0.0)


def test_the_repetition_penalty_spreads_greedy_text(model):
    greedy = generate(model, [4, 2], SamplingConfig(max_tokens=40, greedy=True))[0]
    penalised = generate(model, [4, 2], SamplingConfig(max_tokens=40, greedy=True, repetition_penalty=3.0))[0]
    assert len(set(penalised)) > len(set(greedy))


def test_beam_search_never_returns_empty_or_blank_hypotheses():
    lm = BigramModel(stop_table())
    for stop in (True, False):
        cfg = SamplingConfig(max_tokens=10, beam_size=3, num_samples=3, stop_at_eos=stop)
        samples = generate(lm, [3], cfg, eos_id=0, blank_ids=frozenset())  # after 3, <eos> is near certain
        assert all(sample and sample[0] != 0 for sample in samples)
        assert all((a, b) != (0, 0) for sample in samples for a, b in zip(sample, sample[1:], strict=False))
