import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors
from torch.testing import assert_close

from textseq.checkpoint import load_checkpoint, save_checkpoint
from textseq.errors import TextseqError
from textseq.lm.model import LMConfig, RNNLanguageModel, default_cutoffs
from textseq.vocab import Vocab

V = 60


def small_model(**overrides) -> RNNLanguageModel:
    torch.manual_seed(0)
    cfg = LMConfig(**(dict(vocab_size=V, emb_size=8, hidden_size=12, num_layers=2, dropout=0.1) | overrides))
    return RNNLanguageModel(cfg)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("adaptive", [False, True])
def test_shapes_loss_and_normalised_log_probs(cell, adaptive):
    model = small_model(cell=cell, adaptive_softmax=adaptive).eval()
    ids = torch.randint(0, V, (3, 7))
    features, hidden = model(ids)
    assert features.shape == (3, 7, 12)
    h = hidden[0] if cell == "lstm" else hidden
    assert h.shape == (2, 3, 12)

    log_probs = model.log_probs(features)
    assert log_probs.shape == (3, 7, V)
    assert_close(log_probs.logsumexp(-1), torch.zeros(3, 7), atol=1e-5, rtol=0)

    targets = torch.randint(0, V, (3, 7))
    per_token = model.loss(features, targets, reduction="none")
    assert per_token.shape == (3, 7)
    assert_close(per_token, -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1), atol=1e-5, rtol=1e-5)
    assert_close(model.loss(features, targets), per_token.mean())
    assert_close(model.loss(features, targets, reduction="sum"), per_token.sum())
    assert abs(model.loss(features, targets).item() - math.log(V)) < 1.5  # untrained: near uniform


def test_loss_ignores_padding_targets():
    model = small_model().eval()
    features, _ = model(torch.randint(0, V, (2, 5)))
    targets = torch.randint(1, V, (2, 5))
    targets[1, 3:] = 0
    per_token = model.loss(features, targets, reduction="none")
    expected = per_token[targets != 0].mean()
    assert_close(model.loss(features, targets, ignore_index=0), expected)


@pytest.mark.parametrize("adaptive", [False, True])
def test_step_by_step_decoding_equals_one_forward_pass(adaptive):
    model = small_model(adaptive_softmax=adaptive).eval()
    ids = torch.randint(0, V, (2, 6))
    with torch.no_grad():
        features, _ = model(ids)
        expected = model.log_probs(features)
        hidden, steps = None, []
        for t in range(ids.size(1)):
            log_probs, hidden = model.step(ids[:, t], hidden)
            steps.append(log_probs)
    assert_close(torch.stack(steps, dim=1), expected)


def test_init_hidden_is_a_zero_state_equal_to_none():
    model = small_model().eval()
    ids = torch.randint(0, V, (4, 3))
    h, c = model.init_hidden(4)
    assert h.shape == c.shape == (2, 4, 12) and not h.any()
    assert_close(model(ids, (h, c))[0], model(ids)[0])


def test_tied_weights_share_storage_and_train_together():
    model = small_model(emb_size=12, tie_weights=True)
    assert model.decoder.weight is model.encoder.weight
    assert model.decoder.weight.data_ptr() == model.encoder.weight.data_ptr()
    untied = small_model(emb_size=12)
    assert model.num_parameters() == untied.num_parameters() - V * 12
    features, _ = model(torch.randint(0, V, (2, 4)))
    model.loss(features, torch.randint(0, V, (2, 4))).backward()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert model.decoder.weight.data_ptr() == model.encoder.weight.data_ptr()


def test_scratch_impl_is_a_drop_in_replacement():
    fast = small_model(cell="gru").eval()
    slow = small_model(cell="gru", impl="scratch").eval()
    slow.load_state_dict(fast.state_dict())
    ids = torch.randint(0, V, (2, 5))
    assert_close(slow.log_probs(slow(ids)[0]), fast.log_probs(fast(ids)[0]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("overrides,match", [
    # tie_weights with emb_size != hidden_size is allowed now (a `proj` layer; tests/test_lm_regularize.py)
    (dict(dropout_out=1.0), "dropout_out"),
    (dict(emb_size=12, tie_weights=True, adaptive_softmax=True), "adaptive"),
    (dict(adaptive_softmax=True, cutoffs=(30, 10)), "cutoffs"),
    (dict(adaptive_softmax=True, cutoffs=(10, V)), "cutoffs"),
    (dict(cell="lstmm"), "unknown cell"),
    (dict(vocab_size=1), "at least 2"),
    (dict(dropout=-0.1), "dropout"),
])
def test_bad_configs_are_user_errors(overrides, match):
    with pytest.raises(TextseqError, match=match):
        small_model(**overrides)


def test_default_cutoffs_follow_vocab_size():
    assert default_cutoffs(30000) == (1500, 6000)
    assert default_cutoffs(10) == (1, 2)
    assert default_cutoffs(3) == (1,)
    model = small_model(adaptive_softmax=True)
    assert model.adaptive.cutoffs[:-1] == [3, 12]


def test_config_round_trips_through_a_safe_checkpoint(tmp_path):
    cfg = LMConfig(vocab_size=V, adaptive_softmax=True, cutoffs=(5, 20))
    save_checkpoint(tmp_path / "m.pt", "lm", {"model_config": asdict(cfg)})
    assert LMConfig.from_dict(load_checkpoint(tmp_path / "m.pt", "lm")["model_config"]) == cfg
    with pytest.raises(TextseqError, match="unknown language model settings"):
        LMConfig.from_dict(asdict(cfg) | {"heads": 4})


def test_init_embeddings_copies_rows_of_known_tokens():
    vocab = Vocab(["<pad>", "<unk>", "the", "cat", "sat"])
    model = small_model(vocab_size=len(vocab))
    vectors = KeyedVectors(vector_size=8)
    rows = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)
    vectors.add_vectors(["cat", "dog", "the"], rows)
    before = model.encoder.weight.detach().clone()

    assert model.init_embeddings(vectors, vocab) == 2
    weight = model.encoder.weight.detach()
    assert_close(weight[vocab["the"]], torch.from_numpy(rows[2]))
    assert_close(weight[vocab["cat"]], torch.from_numpy(rows[0]))
    for token in ("<pad>", "<unk>", "sat"):
        assert_close(weight[vocab[token]], before[vocab[token]])

    with pytest.raises(TextseqError, match="dimensions"):
        model.init_embeddings(KeyedVectors(vector_size=5), vocab)
