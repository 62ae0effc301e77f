"""AWD-LSTM regularizers: locked dropout, embedding dropout, weight drop, tied projection, AR/TAR."""

from dataclasses import asdict

import pytest
import torch
from torch.testing import assert_close

import textseq.lm.model as lm_model
from textseq.errors import TextseqError
from textseq.lm.model import LMConfig, RNNLanguageModel
from textseq.lm.regularize import (
    LockedDropout,
    activation_penalty,
    drop_connect,
    embedding_dropout,
    locked_dropout,
    temporal_activation_penalty,
)
from textseq.lm.tbptt import WindowLoss, span_at

torch.set_num_threads(1)

V = 30
AWD = dict(weight_drop=0.5, dropout_emb=0.1, dropout_in=0.3, dropout_between=0.25, dropout_out=0.4)


def model(**overrides) -> RNNLanguageModel:
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, emb_size=8, hidden_size=12, num_layers=2, dropout=0.0) | overrides
    return RNNLanguageModel(LMConfig(**cfg))


def hidden_tensors(hidden):
    return list(hidden) if isinstance(hidden, tuple) else [hidden]


# ---- the functions ---------------------------------------------------------------------------------

def test_locked_dropout_shares_the_mask_across_time_not_across_the_batch():
    torch.manual_seed(1)
    x = torch.ones(4, 6, 50)
    out = locked_dropout(x, 0.5, training=True)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # kept units are scaled by 1 / (1 - p)
    assert torch.equal(out, out[:, :1].expand_as(out))  # every step equals step 0
    assert not torch.equal(out[0], out[1])  # each sequence has its own mask
    assert torch.equal(locked_dropout(x, 0.5, training=False), x)

    big = torch.ones(256, 3, 400)
    assert LockedDropout(0.3)(big).mean().item() == pytest.approx(1.0, abs=0.01)  # expectation kept
    assert torch.equal(LockedDropout(0.3).eval()(big), big)
    with pytest.raises(TextseqError, match="locked dropout"):
        LockedDropout(1.0)


def test_embedding_dropout_drops_whole_types_consistently():
    torch.manual_seed(2)
    weight = torch.rand(20, 5) + 0.5  # no zero entries
    ids = torch.arange(20).repeat(3, 2)  # every type appears 6 times in the batch
    emb = embedding_dropout(weight, ids, 0.5, training=True)
    dropped = set()
    for token in range(20):
        rows = emb[ids == token]  # [6, 5]
        if rows.abs().sum() == 0:
            dropped.add(token)
        else:
            assert_close(rows, (weight[token] * 2).expand_as(rows))  # kept rows scaled by 1 / (1 - p)
    assert 0 < len(dropped) < 20
    assert torch.equal(embedding_dropout(weight, ids, 0.5, training=False), weight[ids])


def test_drop_connect_masks_elements_and_only_in_training():
    torch.manual_seed(3)
    w = torch.rand(16, 4) + 0.1
    dropped = drop_connect(w, 0.5, training=True)
    assert ((dropped == 0) | torch.isclose(dropped, 2 * w)).all() and (dropped == 0).any()
    assert drop_connect(w, 0.5, training=False) is w


def test_activation_penalties_are_what_the_paper_says():
    x = torch.tensor([[[1.0, 2.0], [3.0, 5.0], [3.0, 5.0]]])  # [B=1, T=3, H=2]
    assert activation_penalty(x, 2.0).item() == pytest.approx(2.0 * (1 + 4 + 9 + 25 + 9 + 25) / 6)
    assert temporal_activation_penalty(x, 3.0).item() == pytest.approx(3.0 * (4 + 9 + 0 + 0) / 4)
    assert temporal_activation_penalty(x[:, :1], 3.0).item() == 0.0


# ---- the model -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,impl", [("lstm", "torch"), ("gru", "torch"), ("rnn_tanh", "torch"),
                                       ("rnn_relu", "torch"), ("lstm", "scratch"), ("gru", "scratch")])
def test_layer_by_layer_path_equals_the_single_call(cell, impl):
    lm = model(cell=cell, impl=impl, num_layers=3)
    ids = torch.randint(0, V, (3, 7))
    h0 = [torch.randn(3, 3, 12) for _ in range(2 if cell == "lstm" else 1)]
    h0 = tuple(h0) if cell == "lstm" else h0[0]
    for training in (True, False):  # no dropout at all: training mode is deterministic too
        lm.train(training)
        lm.force_layerwise = False
        fast_out, fast_h = lm(ids, h0)
        lm.force_layerwise = True
        slow_out, slow_h = lm(ids, h0)
        assert_close(slow_out, fast_out, atol=1e-5, rtol=1e-5)
        for a, b in zip(hidden_tensors(slow_h), hidden_tensors(fast_h), strict=True):
            assert a.shape == b.shape == (3, 3, 12)
            assert_close(a, b, atol=1e-5, rtol=1e-5)
    # with plain dropout in eval mode (a no-op) the two paths agree as well
    lm = model(cell=cell, impl=impl, dropout=0.3).eval()
    expected = lm(ids)[0]
    lm.force_layerwise = True
    assert_close(lm(ids)[0], expected, atol=1e-5, rtol=1e-5)


def capture_hh(monkeypatch):
    """Record the weights each layer is run with."""
    seen = []
    real = lm_model.run_layer

    def spy(cell, impl, x, state, weights, training):
        seen.append(weights)
        return real(cell, impl, x, state, weights, training)

    monkeypatch.setattr(lm_model, "run_layer", spy)
    return seen


def test_weight_drop_changes_the_recurrent_matrix_in_training_only(monkeypatch):
    seen = capture_hh(monkeypatch)
    lm = model(weight_drop=0.5)
    plain = model()
    plain.load_state_dict(lm.state_dict())
    ids = torch.randint(0, V, (2, 6))

    lm.train()
    lm(ids)
    for k, (w_ih, w_hh, _, _) in enumerate(seen):
        raw = getattr(lm.rnn, f"weight_hh_l{k}")
        assert w_ih is getattr(lm.rnn, f"weight_ih_l{k}")  # only the hidden-to-hidden matrix is dropped
        assert (w_hh == 0).any() and not torch.equal(w_hh, raw)
        assert torch.isclose(w_hh[w_hh != 0], 2 * raw[w_hh != 0]).all()
    first = lm(ids)[0]
    assert not torch.equal(first, lm(ids)[0])  # a fresh mask per forward call

    plain.train()
    assert not torch.allclose(lm(ids)[0], plain(ids)[0])

    lm.eval()
    plain.eval()
    assert_close(lm(ids)[0], plain(ids)[0])
    seen.clear()
    lm.force_layerwise = True  # even through the layer-by-layer path, eval uses the raw weights
    assert_close(lm(ids)[0], plain(ids)[0], atol=1e-5, rtol=1e-5)
    assert all(w_hh is getattr(lm.rnn, f"weight_hh_l{k}") for k, (_, w_hh, _, _) in enumerate(seen))


def test_gradients_reach_the_raw_recurrent_weights_through_the_mask(monkeypatch):
    seen = capture_hh(monkeypatch)
    lm = model(weight_drop=0.5).train()
    features, _ = lm(torch.randint(0, V, (2, 6)))
    lm.loss(features, torch.randint(0, V, (2, 6))).backward()
    for k, (_, w_hh, _, _) in enumerate(seen):
        grad = getattr(lm.rnn, f"weight_hh_l{k}").grad
        assert grad is not None and grad.abs().sum() > 0
        assert (grad[w_hh == 0] == 0).all()  # dropped connections get no gradient


def test_locked_dropout_in_the_model_is_one_mask_per_sequence():
    lm = model(dropout_out=0.5, dropout_in=0.3).train()
    features, _, raw = lm.forward_with_activations(torch.randint(0, V, (3, 9)))
    ratio = torch.where(raw.abs() > 1e-6, features / raw, torch.full_like(raw, float("nan")))
    for b in range(3):
        for unit in range(12):
            values = ratio[b, :, unit][~ratio[b, :, unit].isnan()]
            assert len(values) > 0 and torch.allclose(values, values[0])  # 0 or 2 at every step
    assert not torch.equal(features[0] == 0, features[1] == 0)


def test_shared_masks_reuse_the_awd_masks_across_calls():
    lm = model(**AWD).train()
    ids = torch.randint(0, V, (2, 5))
    assert not torch.equal(lm(ids)[0], lm(ids)[0])
    with lm.shared_masks():
        assert torch.equal(lm(ids)[0], lm(ids)[0])
        short, full = lm(ids[:, :1])[0], lm(ids)[0][:, :1]  # the same masks on a shorter input: the same zeros,
        assert torch.equal(short == 0, full == 0) and torch.allclose(short, full, atol=1e-6)  # kernels may round
    assert lm._masks is None


def test_old_checkpoints_load_into_a_regularized_model():
    for tied in (False, True):
        old = model(emb_size=12, tie_weights=tied)
        new = model(emb_size=12, tie_weights=tied, **AWD)
        assert new.state_dict().keys() == old.state_dict().keys()
        new.load_state_dict(old.state_dict())  # strict
        ids = torch.randint(0, V, (2, 5))
        assert_close(new.eval()(ids)[0], old.eval()(ids)[0])
    cfg = LMConfig(vocab_size=V, **AWD)
    assert LMConfig.from_dict(asdict(cfg)) == cfg
    old_cfg = {k: v for k, v in asdict(LMConfig(vocab_size=V)).items() if k not in AWD}
    assert LMConfig.from_dict(old_cfg) == LMConfig(vocab_size=V)


@pytest.mark.parametrize("name", ["dropout", *AWD])
@pytest.mark.parametrize("value", [1.0, -0.1, float("nan")])
def test_probabilities_are_validated(name, value):
    with pytest.raises(TextseqError, match=name):
        LMConfig(vocab_size=V, **{name: value})


def test_tied_weights_with_different_sizes_project_then_share_and_train():
    lm = model(emb_size=8, hidden_size=12, tie_weights=True, **AWD)
    assert lm.decoder.weight is lm.encoder.weight
    assert lm.proj.weight.shape == (8, 12)
    assert "proj.weight" in lm.state_dict()
    assert "proj.weight" not in model(emb_size=12, tie_weights=True).state_dict()

    pattern = torch.arange(10)
    data = pattern.repeat(4, 4)  # [4, 40]: a tiny, perfectly predictable corpus
    optimizer = torch.optim.Adam(lm.parameters(), lr=1e-2)
    losses = []
    lm.train()
    for _ in range(40):
        features, _ = lm(data[:, :-1])
        loss = lm.loss(features, data[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < losses[0] - 0.3
    assert lm.decoder.weight is lm.encoder.weight
    lm.eval()
    assert_close(lm.log_probs(lm(data[:1, :5])[0]).logsumexp(-1), torch.zeros(1, 5), atol=1e-5, rtol=0)


# ---- AR / TAR in the window loss -------------------------------------------------------------------

def test_ar_tar_add_a_positive_penalty_in_training_only():
    lm = model()  # no dropout: every call sees the same network
    data = torch.randint(0, V, (3, 20))
    span = span_at(0, data.size(1), 12, 12)
    plain = WindowLoss(lm)
    regular = WindowLoss(lm, ar=2.0, tar=1.0)

    lm.train()
    base, _ = plain(data, span, None)
    loss, _ = regular(data, span, None)
    features, _, raw = lm.forward_with_activations(data[:, :12])
    expected = activation_penalty(features, 2.0) + temporal_activation_penalty(raw, 1.0)
    assert expected.item() > 0
    assert_close(loss, base + expected)
    assert_close(regular.last_nll, base.detach())
    assert not regular.last_nll.requires_grad
    assert_close(regular.last_penalty, expected.detach())
    assert_close(plain.last_nll, base.detach()) and plain.last_penalty.item() == 0.0

    lm.eval()
    loss, _ = regular(data, span, None)
    assert_close(loss, plain(data, span, None)[0]) and regular.last_penalty.item() == 0.0


def test_ar_uses_the_dropped_output_and_tar_the_raw_one():
    lm = model(dropout_out=0.5, dropout_in=0.2).train()
    data = torch.randint(0, V, (3, 14))
    span = span_at(0, data.size(1), 12, 12)
    with lm.shared_masks():  # the window loss joins this scope: it sees the same masks as we do here
        loss, _ = WindowLoss(lm, ar=2.0, tar=1.0)(data, span, None)
        features, _, raw = lm.forward_with_activations(data[:, :12])
    assert not torch.allclose(features, raw)
    assert not torch.allclose(temporal_activation_penalty(features, 1.0), temporal_activation_penalty(raw, 1.0))
    nll = lm.loss(features, data[:, 1:13])
    assert_close(loss, nll + activation_penalty(features, 2.0) + temporal_activation_penalty(raw, 1.0))


def test_ar_tar_work_with_awd_dropout_and_cut_windows():
    lm = model(**AWD).train()
    data = torch.randint(0, V, (2, 30))
    loss_fn = WindowLoss(lm, ar=1.0, tar=1.0)
    hidden = None
    for k1, k2 in ((8, 3), (4, 9)):
        span = span_at(8, data.size(1), k1, k2)
        loss, hidden = loss_fn(data, span, hidden)
        loss.backward()
        assert loss_fn.last_penalty.item() > 0
        assert_close(loss.detach(), loss_fn.last_nll + loss_fn.last_penalty)
    assert lm.rnn.weight_hh_l0.grad.abs().sum() > 0


def test_ar_tar_are_validated():
    lm = model()
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(TextseqError, match="ar must"):
            WindowLoss(lm, ar=bad)
    with pytest.raises(TextseqError, match="teacher forcing"):
        WindowLoss(lm, "free-running", tar=1.0)


def test_free_running_windows_keep_locked_masks_across_steps(monkeypatch):
    lm = model(**AWD).train()
    data = torch.randint(0, V, (2, 12))
    span = span_at(0, data.size(1), 8, 8)
    scopes, step = [], lm.step

    def spy(ids, hidden):
        scopes.append(lm._masks)
        return step(ids, hidden)

    monkeypatch.setattr(lm, "step", spy)
    loss, _ = WindowLoss(lm, "free-running")(data, span, None)
    loss.backward()
    assert len(scopes) == 8 and scopes[0] is not None and all(s is scopes[0] for s in scopes)
    assert {name for name, _ in scopes[0]} == {"emb", "in", "weight_hh_l0", "weight_hh_l1", "between_l0", "out"}
    assert torch.isfinite(loss) and lm.rnn.weight_hh_l1.grad.abs().sum() > 0
    assert lm._masks is None
