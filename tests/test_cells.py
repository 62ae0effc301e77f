"""The from-scratch cells compute exactly what torch.nn computes, forwards and backwards."""

import pytest
import torch
from torch.testing import assert_close

from textseq.errors import TextseqError
from textseq.models.cells import CELL_TYPES, ScratchRNN, build_rnn, detach_hidden

INPUT, HIDDEN = 3, 4


def twin_rnns(cell, num_layers, bidirectional, seed=0):
    torch.manual_seed(seed)
    reference = build_rnn(cell, INPUT, HIDDEN, num_layers, bidirectional=bidirectional).double()
    scratch = build_rnn(cell, INPUT, HIDDEN, num_layers, bidirectional=bidirectional, impl="scratch").double()
    scratch.load_state_dict(reference.state_dict())
    return reference, scratch


def random_state(cell, num_layers, bidirectional, batch):
    shape = (num_layers * (2 if bidirectional else 1), batch, HIDDEN)
    if cell == "lstm":
        return torch.randn(shape, dtype=torch.double), torch.randn(shape, dtype=torch.double)
    return torch.randn(shape, dtype=torch.double)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def run_and_backprop(rnn, x, h0):
    """Forward, then backward through a random projection of outputs and final states."""
    x = x.clone().requires_grad_(True)
    h0 = tuple(h.clone().requires_grad_(True) for h in as_tuple(h0)) if h0 is not None else None
    out, h_n = rnn(x, (h0 if len(h0) > 1 else h0[0]) if h0 is not None else None)
    gen = torch.Generator().manual_seed(1)
    loss = (out * torch.randn(out.shape, generator=gen, dtype=out.dtype)).sum()
    for h in as_tuple(h_n):
        loss = loss + (h * torch.randn(h.shape, generator=gen, dtype=h.dtype)).sum()
    loss.backward()
    grads = {name: p.grad for name, p in rnn.named_parameters()}
    grads["input"] = x.grad
    for i, h in enumerate(h0 or ()):
        grads[f"h0_{i}"] = h.grad
    return out, h_n, grads


@pytest.mark.parametrize("cell", CELL_TYPES)
@pytest.mark.parametrize("num_layers,bidirectional,batch", [(1, False, 1), (2, False, 5), (3, False, 2),
                                                           (1, True, 3), (2, True, 4)])
@pytest.mark.parametrize("with_state", [False, True])
def test_scratch_equals_torch(cell, num_layers, bidirectional, batch, with_state):
    reference, scratch = twin_rnns(cell, num_layers, bidirectional)
    x = torch.randn(batch, 6, INPUT, dtype=torch.double)
    h0 = random_state(cell, num_layers, bidirectional, batch) if with_state else None

    out_ref, h_ref, grads_ref = run_and_backprop(reference, x, h0)
    out_new, h_new, grads_new = run_and_backprop(scratch, x, h0)

    dirs = 2 if bidirectional else 1
    assert out_new.shape == (batch, 6, HIDDEN * dirs)
    assert_close(out_new, out_ref)
    assert type(h_new) is type(h_ref)
    for mine, theirs in zip(as_tuple(h_new), as_tuple(h_ref), strict=True):
        assert mine.shape == (num_layers * dirs, batch, HIDDEN)
        assert_close(mine, theirs)
    assert grads_new.keys() == grads_ref.keys()
    for name in grads_ref:
        assert_close(grads_new[name], grads_ref[name], msg=lambda m, n=name: f"gradient of {n}: {m}")


def test_state_dicts_are_interchangeable_both_ways():
    for cell in CELL_TYPES:
        reference, scratch = twin_rnns(cell, 2, True)
        assert {k: v.shape for k, v in reference.state_dict().items()} == \
               {k: v.shape for k, v in scratch.state_dict().items()}
        reference.load_state_dict(build_rnn(cell, INPUT, HIDDEN, 2, bidirectional=True,
                                            impl="scratch").double().state_dict())


def test_carrying_state_across_chunks_equals_one_long_run():
    _, scratch = twin_rnns("lstm", 2, False)
    x = torch.randn(2, 8, INPUT, dtype=torch.double)
    whole, _ = scratch(x)
    first, state = scratch(x[:, :5])
    second, _ = scratch(x[:, 5:], detach_hidden(state))
    assert_close(torch.cat([first, second], dim=1), whole)


def test_scratch_dropout_only_between_layers_and_only_in_training():
    torch.manual_seed(0)
    rnn = ScratchRNN("gru", INPUT, HIDDEN, num_layers=2, dropout=0.5)
    x = torch.randn(4, 5, INPUT)
    rnn.eval()
    assert_close(rnn(x)[0], rnn(x)[0])
    rnn.train()
    assert not torch.allclose(rnn(x)[0], rnn(x)[0])


def test_detach_hidden_keeps_values_and_cuts_the_graph():
    h = torch.randn(1, 2, 3, requires_grad=True) * 2
    state = detach_hidden((h, h + 1))
    assert all(not s.requires_grad for s in state)
    assert_close(state[0], h.detach())
    assert detach_hidden(None) is None
    assert not detach_hidden(h).requires_grad


@pytest.mark.parametrize("kwargs,match", [
    (dict(cell="transformer"), "unknown cell"),
    (dict(impl="cuda"), "unknown RNN implementation"),
    (dict(dropout=1.0), "dropout"),
    (dict(hidden_size=0), "at least 1"),
])
def test_build_rnn_rejects_bad_settings(kwargs, match):
    args = dict(cell="lstm", input_size=3, hidden_size=4) | kwargs
    with pytest.raises(TextseqError, match=match):
        build_rnn(**args)
