"""Forecasting networks: the seeds' MLP baseline and a recurrent forecaster built on the same
cells as the language models (:func:`textseq.models.cells.build_rnn`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from textseq.errors import TextseqError, check_choice
from textseq.forecast.config import ForecastModelConfig
from textseq.models.cells import CELL_TYPES, Hidden, build_rnn

ARCHS = ("mlp", *CELL_TYPES)


class MLPForecaster(nn.Module):
    """The flattened window through ReLU layers, as in the seeds' first model."""

    recurrent = False

    def __init__(self, cfg: ForecastModelConfig, input_size: int, output_size: int, seq_len: int):
        super().__init__()
        layers: list[nn.Module] = []
        width = seq_len * input_size
        for _ in range(cfg.num_layers):
            layers += [nn.Linear(width, cfg.hidden_size), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = cfg.hidden_size
        self.net = nn.Sequential(*layers, nn.Linear(width, output_size))

    def forward(self, x: Tensor) -> Tensor:
        """``x[B, T, F] -> [B, output_size]``."""
        return self.net(x.flatten(1))


class RNNForecaster(nn.Module):
    """A recurrent stack plus a linear head, applied at the last step (N-to-1) or at every step (N-to-N)."""

    recurrent = True

    def __init__(self, cfg: ForecastModelConfig, input_size: int, output_size: int):
        super().__init__()
        self.bidirectional = cfg.bidirectional
        self.rnn = build_rnn(cfg.arch, input_size, cfg.hidden_size, cfg.num_layers, cfg.dropout,
                             cfg.bidirectional, cfg.impl)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_size * (2 if cfg.bidirectional else 1), output_size)
        self.hidden_size, self.num_layers, self.is_lstm = cfg.hidden_size, cfg.num_layers, cfg.arch == "lstm"

    def init_hidden(self, batch_size: int) -> Hidden:
        zeros = torch.zeros(self.num_layers, batch_size, self.hidden_size)
        return (zeros, zeros.clone()) if self.is_lstm else zeros

    def steps(self, x: Tensor, hidden: Hidden | None = None) -> tuple[Tensor, Hidden]:
        """Causal outputs at every step: ``x[B, T, F] -> (y[B, T, out], hidden)``."""
        if self.bidirectional:
            raise TextseqError("a bidirectional RNN sees the future at every step; use it with --mode direct")
        out, hidden = self.rnn(x, hidden)
        return self.head(self.drop(out)), hidden

    def forward(self, x: Tensor) -> Tensor:
        """One output for the whole window: ``x[B, T, F] -> [B, out]``."""
        out, _ = self.rnn(x)
        if self.bidirectional:  # forward direction ends at the last step, the reverse one at the first
            features = torch.cat([out[:, -1, : self.hidden_size], out[:, 0, self.hidden_size:]], dim=-1)
        else:
            features = out[:, -1]
        return self.head(self.drop(features))


def build_forecaster(cfg: ForecastModelConfig, input_size: int, output_size: int, seq_len: int) -> nn.Module:
    check_choice("model", cfg.arch, ARCHS)
    if cfg.arch == "mlp":
        return MLPForecaster(cfg, input_size, output_size, seq_len)
    return RNNForecaster(cfg, input_size, output_size)


def rollout(model: nn.Module, x: Tensor, horizon: int, hidden: Hidden | None = None) -> Tensor:
    """Free-running multi-step forecast: each prediction is fed back as the next input.

    ``x[B, T, 1]`` is the observed window (the target is the only input); returns ``[B, horizon]``.
    The RNN carries its hidden state (constant cost per step); the MLP slides its window.
    """
    preds = []
    if model.recurrent:
        out, hidden = model.steps(x, hidden)
        pred = out[:, -1]
        for _ in range(horizon - 1):
            preds.append(pred)
            out, hidden = model.steps(pred[:, None, :], hidden)
            pred = out[:, -1]
        preds.append(pred)
    else:
        preds.append(model(x))
        for _ in range(horizon - 1):
            x = torch.cat([x[:, 1:], preds[-1][:, None, :]], dim=1)
            preds.append(model(x))
    return torch.cat(preds, dim=1)
