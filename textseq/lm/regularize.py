"""AWD-LSTM regularizers (Merity, Keskar & Socher 2017, "Regularizing and Optimizing LSTM Language
Models"; reference code: salesforce/awd-lstm-lm, files weight_drop.py, locked_dropout.py,
embed_regularize.py and main.py's AR/TAR terms).

- :func:`locked_dropout` (variational dropout, Gal & Ghahramani 2016): one mask per sequence, shared
  by every time step, instead of a fresh mask per element.
- :func:`embedding_dropout`: drop whole word types, i.e. rows of the embedding matrix, so every
  occurrence of a dropped word in the batch reads a zero vector.
- :func:`drop_connect` (weight drop, Wan et al. 2013): dropout on the hidden-to-hidden *matrix*, one
  mask per forward call, so the recurrent connection is regularized without touching the fast kernels.
  :func:`run_layer` runs one recurrent layer with such caller-supplied weights.
- :func:`activation_penalty` (AR) and :func:`temporal_activation_penalty` (TAR).

Every mask is scaled by ``1 / (1 - p)`` so that expectations are unchanged, and every function is
the identity when ``training`` is False or ``p == 0`` (and then draws no random numbers, so runs
with the regularizers off consume the random stream exactly as before).
Masks can be passed in (``mask=``) so that a caller may reuse one mask over several calls, e.g.
over the one-token steps of a free-running window (:meth:`RNNLanguageModel.shared_masks`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn

from textseq.errors import TextseqError
from textseq.models.cells import CELLS, Hidden


def dropout_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """A {0, 1/(1-p)} mask of ``shape`` with ``like``'s dtype and device (no gradient)."""
    return like.new_empty(shape).bernoulli_(1.0 - p).div_(1.0 - p)


def locked_dropout_mask(x: Tensor, p: float) -> Tensor:
    """The mask for batch-first ``x[B, T, D]``: shape [B, 1, D], broadcast over all T steps."""
    return dropout_mask((x.size(0), 1, x.size(2)), p, x)


def locked_dropout(x: Tensor, p: float, training: bool, mask: Tensor | None = None) -> Tensor:
    """Variational dropout on ``x[B, T, D]``: each sequence (row b) keeps the same units at every step."""
    if not training or p == 0.0:
        return x
    if mask is None:
        mask = locked_dropout_mask(x, p)
    return x * mask  # [B, T, D] * [B, 1, D]


class LockedDropout(nn.Module):
    """:func:`locked_dropout` as a module (active in training mode only)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise TextseqError(f"locked dropout must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return locked_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def embedding_dropout_mask(weight: Tensor, p: float) -> Tensor:
    """One keep/drop decision per word type: shape [V], scaled by 1/(1-p)."""
    return dropout_mask((weight.size(0),), p, weight)


def embedding_dropout(weight: Tensor, ids: Tensor, p: float, training: bool,
                      mask: Tensor | None = None) -> Tensor:
    """Embedding lookup ``weight[V, E]`` at ``ids[...]`` -> [..., E] with whole types dropped.

    Equivalent to awd-lstm-lm's ``embedded_dropout`` (which masks the whole [V, E] matrix and then
    looks up), but only the looked-up rows are scaled: [B, T] multiplies instead of [V, E].
    """
    emb = F.embedding(ids, weight)  # [..., E]
    if not training or p == 0.0:
        return emb
    if mask is None:
        mask = embedding_dropout_mask(weight, p)
    return emb * mask[ids].unsqueeze(-1)  # mask[ids]: [...] -> [..., 1]


def drop_connect(weight: Tensor, p: float, training: bool, mask: Tensor | None = None) -> Tensor:
    """DropConnect on a weight matrix (e.g. ``weight_hh_l0[G*H, H]``); gradients reach the raw weight."""
    if not training or p == 0.0:
        return weight
    if mask is None:
        mask = dropout_mask(tuple(weight.shape), p, weight)
    return weight * mask


def run_layer(cell: str, impl: str, x: Tensor, state: Hidden, weights: list[Tensor],
              training: bool) -> tuple[Tensor, Hidden]:
    """One unidirectional, batch-first recurrent layer with the given ``[w_ih, w_hh, b_ih, b_hh]``.

    ``x[B, T, I]``; ``state`` is ``h[1, B, H]`` or ``(h, c)`` for an LSTM; returns
    ``(out[B, T, H], state)`` in the same layout. ``impl="torch"`` calls the same fused kernels as
    ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (one layer, no dropout); ``"scratch"`` steps through the cell
    functions of :mod:`textseq.models.cells`.
    """
    if impl == "torch":
        # args after the weights: has_biases, num_layers, dropout, train, bidirectional, batch_first
        if cell == "lstm":
            out, h, c = _VF.lstm(x, state, weights, True, 1, 0.0, training, False, True)
            return out, (h, c)
        kernel = {"gru": _VF.gru, "rnn_tanh": _VF.rnn_tanh, "rnn_relu": _VF.rnn_relu}[cell]
        out, h = kernel(x, state, weights, True, 1, 0.0, training, False, True)
        return out, h
    w_ih, w_hh, b_ih, b_hh = weights
    step_state = (state[0][0], state[1][0]) if cell == "lstm" else state[0]  # [B, H] each
    x_gates = x @ w_ih.T + b_ih  # [B, T, G*H] for all steps at once
    outputs = []
    for t in range(x.size(1)):
        out, step_state = CELLS[cell](x_gates[:, t], step_state, w_hh, b_hh)
        outputs.append(out)
    if cell == "lstm":
        return torch.stack(outputs, dim=1), (step_state[0].unsqueeze(0), step_state[1].unsqueeze(0))
    return torch.stack(outputs, dim=1), step_state.unsqueeze(0)


def activation_penalty(dropped: Tensor, alpha: float) -> Tensor:
    """AR: ``alpha * mean(dropped ** 2)`` over the last layer's output *after* dropout, [B, T, H]."""
    return alpha * dropped.pow(2).mean()


def temporal_activation_penalty(raw: Tensor, beta: float) -> Tensor:
    """TAR: ``beta * mean((h_t - h_{t-1}) ** 2)`` over the last layer's output *before* dropout.

    ``raw[B, T, H]`` is batch first, so consecutive steps differ along dim 1; 0 when T == 1.
    """
    if raw.size(1) < 2:
        return raw.new_zeros(())
    return beta * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()  # [B, T-1, H]
