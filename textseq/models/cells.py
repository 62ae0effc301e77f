"""Recurrent layers: the fast torch.nn ones, and a from-scratch twin with every gate written out.

``build_rnn(..., impl="torch")`` returns ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` with
``batch_first=True``; ``impl="scratch"`` returns :class:`ScratchRNN`, which has the same
parameter names and shapes (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), so a state dict
moves freely between the two and both compute the same numbers (tests/test_cells.py proves it).

The scratch version is teaching material: if you learned LSTMs from a blog post with
``i, f, g, o = ...``, this is that code, made to match PyTorch exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textseq.errors import TextseqError, check_choice

CELL_TYPES = ("rnn_tanh", "rnn_relu", "lstm", "gru")
IMPLS = ("torch", "scratch")

# A layer's state: h[L*dirs, B, H], or (h, c) for an LSTM.
Hidden = Tensor | tuple[Tensor, Tensor]


# ---- one time step of each cell, exactly as torch.nn documents it ------------------------------
# ``x_gates`` is the input's contribution W_ih x + b_ih, computed for all time steps at once
# (it does not depend on h); each cell adds the recurrent part W_hh h + b_hh itself.

def rnn_tanh_cell(x_gates: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
    h = torch.tanh(x_gates + h @ w_hh.T + b_hh)
    return h, h


def rnn_relu_cell(x_gates: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
    h = torch.relu(x_gates + h @ w_hh.T + b_hh)
    return h, h


def lstm_cell(x_gates: Tensor, state: tuple[Tensor, Tensor], w_hh: Tensor, b_hh: Tensor):
    h, c = state
    x_i, x_f, x_g, x_o = x_gates.chunk(4, dim=-1)
    h_i, h_f, h_g, h_o = (h @ w_hh.T + b_hh).chunk(4, dim=-1)
    i = torch.sigmoid(x_i + h_i)  # input gate: how much of the candidate to write
    f = torch.sigmoid(x_f + h_f)  # forget gate: how much of the old cell to keep
    g = torch.tanh(x_g + h_g)  # candidate cell content
    o = torch.sigmoid(x_o + h_o)  # output gate: how much of the cell to expose
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, (h, c)


def gru_cell(x_gates: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
    x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)  # reset gate
    z = torch.sigmoid(x_z + h_z)  # update gate: 1 keeps the old state
    n = torch.tanh(x_n + r * h_n)  # torch resets (W_hn h + b_hn), bias included, not just h
    h = (1 - z) * n + z * h
    return h, h


CELLS = {"rnn_tanh": rnn_tanh_cell, "rnn_relu": rnn_relu_cell, "lstm": lstm_cell, "gru": gru_cell}
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


class ScratchRNN(nn.Module):
    """A multi-layer (bi)directional RNN/LSTM/GRU written with plain tensor ops, ``batch_first``.

    ``forward(x[B, T, I], hx=None) -> (out[B, T, H * dirs], h_n)`` exactly like torch.nn.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.dropout, self.bidirectional = dropout, bidirectional
        self.num_directions = 2 if bidirectional else 1
        gate_size = GATES[cell] * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(gate_size, layer_input)))
                self.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(gate_size, hidden_size)))
                self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(gate_size)))
                self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(gate_size)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # torch.nn's default init
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def forward(self, x: Tensor, hx: Hidden | None = None) -> tuple[Tensor, Hidden]:
        h0, c0 = self._initial_state(x, hx)
        final_h, final_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                index = layer * self.num_directions + direction
                state = (h0[index], c0[index]) if self.cell == "lstm" else h0[index]
                out, state = self._run_direction(layer_input, state, suffix, reverse=direction == 1)
                outputs.append(out)
                final_h.append(state[0] if self.cell == "lstm" else state)
                if self.cell == "lstm":
                    final_c.append(state[1])
            layer_input = torch.cat(outputs, dim=-1)
            if layer < self.num_layers - 1:  # like torch: dropout between layers, not after the last
                layer_input = F.dropout(layer_input, self.dropout, self.training)
        h_n = torch.stack(final_h)
        return layer_input, ((h_n, torch.stack(final_c)) if self.cell == "lstm" else h_n)

    def _initial_state(self, x: Tensor, hx: Hidden | None) -> tuple[Tensor, Tensor | None]:
        if hx is not None:
            return hx if self.cell == "lstm" else (hx, None)
        zeros = x.new_zeros(self.num_layers * self.num_directions, x.size(0), self.hidden_size)
        return zeros, (zeros if self.cell == "lstm" else None)

    def _run_direction(self, x: Tensor, state: Hidden, suffix: str, reverse: bool) -> tuple[Tensor, Hidden]:
        cell = CELLS[self.cell]
        w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
        b_ih, b_hh = getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}")
        x_gates = x @ w_ih.T + b_ih  # [B, T, gates * H] for all steps in one matmul
        steps = range(x.size(1) - 1, -1, -1) if reverse else range(x.size(1))
        outputs = [None] * x.size(1)
        for t in steps:
            outputs[t], state = cell(x_gates[:, t], state, w_hh, b_hh)
        return torch.stack(outputs, dim=1), state


def build_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
              bidirectional: bool = False, impl: str = "torch") -> nn.Module:
    """A batch-first recurrent stack: ``out, h_n = rnn(x[B, T, I], h0)``; h_n is ``(h, c)`` for LSTMs."""
    check_choice("cell", cell, CELL_TYPES)
    check_choice("RNN implementation", impl, IMPLS)
    if min(input_size, hidden_size, num_layers) < 1:
        raise TextseqError("input size, hidden size and number of layers must all be at least 1")
    if not 0.0 <= dropout < 1.0:
        raise TextseqError(f"dropout must be in [0, 1), got {dropout}")
    dropout = dropout if num_layers > 1 else 0.0  # torch warns about dropout on a single layer
    if impl == "scratch":
        return ScratchRNN(cell, input_size, hidden_size, num_layers, dropout, bidirectional)
    kwargs = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional, batch_first=True)
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, **kwargs)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, **kwargs)
    return nn.RNN(input_size, hidden_size, nonlinearity=cell.removeprefix("rnn_"), **kwargs)


def detach_hidden(hidden: Hidden | None) -> Hidden | None:
    """Cut the graph between BPTT chunks while keeping the state's values."""
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return tuple(h.detach() for h in hidden)
    return hidden.detach()
