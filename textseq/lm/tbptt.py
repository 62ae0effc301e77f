"""Truncated back-propagation through time in three feeding modes.

Modes (what the model reads at step t; the loss always scores the TRUE next token):

- ``teacher-forcing``: the ground-truth token. Runs the whole window in one call of the RNN
  (the fast cuDNN-style full-sequence path).
- ``free-running``: the model's own prediction from step t-1 (argmax, or a sample with
  ``feedback="sample"``). The first input of every update window is the true token.
- ``scheduled-sampling`` (Bengio et al. 2015): per token and per stream, the true token with
  probability ``p`` (the teacher-forcing probability, decaying with the global step following a
  linear / exponential / inverse-sigmoid schedule), else the model's prediction.

How gradients flow when predictions are fed back: the fed-back token is a discrete choice and is
treated as a constant (no gradient through argmax/sampling). Gradients still flow through the
hidden-state path across all steps of the window, so the loss at step t trains the computation
that produced the hidden states it depends on, back to the window's truncation point.
These two modes must run step by step and are therefore slower than teacher forcing.

Truncation (Williams & Peng's TBPTT(k1, k2)): parameters are updated every ``k1`` tokens and
gradients flow back ``k2`` steps. ``k1 == k2 == bptt`` is the usual case. With ``k2 > k1`` each
update re-runs the ``k2 - k1`` tokens before its window from the hidden state saved there, so the
graph spans k2 steps while only the k1 new targets are scored. With ``k2 < k1`` the window is cut
into pieces of at most k2 steps (the hidden state is detached at each cut) and the summed loss
gives one update. The hidden state is always carried, detached, to the next update.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textseq.errors import TextseqError, check_choice
from textseq.lm.regularize import activation_penalty, temporal_activation_penalty
from textseq.models.cells import Hidden, detach_hidden

MODES = ("teacher-forcing", "free-running", "scheduled-sampling")
SCHEDULES = ("linear", "exponential", "inverse-sigmoid")
FEEDBACKS = ("argmax", "sample")


def teacher_forcing_prob(schedule: str, step: int, k: float, min_prob: float = 0.0) -> float:
    """Probability of feeding the true token at global ``step`` (Bengio et al. 2015, section 2.4).

    linear: ``1 - step / k`` (k = steps to reach 0); exponential: ``k ** step`` (0 < k < 1);
    inverse-sigmoid: ``k / (k + exp(step / k))`` (k >= 1). Never below ``min_prob``.
    """
    if schedule == "linear":
        prob = 1.0 - step / k
    elif schedule == "exponential":
        prob = k ** step
    elif schedule == "inverse-sigmoid":
        prob = k / (k + math.exp(min(step / k, 700.0)))
    else:
        raise TextseqError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    return max(min_prob, prob)


def default_schedule_k(schedule: str, total_steps: int) -> float:
    """A ``k`` that makes the schedule decay over the whole run.

    linear reaches 0 at the last step, exponential reaches 0.01, inverse-sigmoid crosses 0.5 at
    mid-run (solving ``k = exp(total / (2k))`` by bisection).
    """
    total = max(1, total_steps)
    if schedule == "linear":
        return float(total)
    if schedule == "exponential":
        return 0.01 ** (1.0 / total)
    if schedule == "inverse-sigmoid":
        lo, hi = 1.0, float(total) + 2.0
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if mid < math.exp(min(total / (2 * mid), 700.0)) else (lo, mid)
        return max(1.0, (lo + hi) / 2)
    raise TextseqError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


@dataclass(frozen=True)
class Span:
    """One TBPTT update over stream columns: inputs [start, end), targets scored for [loss_start, end)."""

    start: int
    loss_start: int
    end: int
    carry: int  # column whose hidden state the next update starts from
    cuts: tuple[int, ...]  # columns where the graph is cut (k2 < k1)


def span_at(pos: int, n_cols: int, k1: int, k2: int) -> Span:
    """The update whose first scored input is column ``pos`` of an ``n_cols``-column stream."""
    last = n_cols - 1  # the last column is only a target
    end = min(pos + k1, last)
    if k2 > k1:
        return Span(max(0, end - k2), pos, end, max(0, min(end + k1, last) - k2), ())
    return Span(pos, pos, end, end, tuple(range(end - k2, pos, -k2))[::-1])


def spans_per_epoch(n_cols: int, k1: int) -> int:
    return math.ceil((n_cols - 1) / k1)


class WindowLoss(nn.Module):
    """The loss of one TBPTT update as a module, so that DistributedDataParallel can wrap it
    whatever the mode (its forward is the only thing DDP sees).

    ``ar`` / ``tar`` (teacher forcing only; 0 = off) add the AWD-LSTM activation regularizers to the
    returned loss while the language model is in training mode (``lm.training``):
    ``ar * mean(features ** 2)`` on the last layer's output after dropout (AR) and
    ``tar * mean((h_t - h_{t-1}) ** 2)`` on it before dropout (TAR), both over the scored positions
    of the window (see :mod:`textseq.lm.regularize`).

    What is returned and what is stored: ``forward`` returns the loss to back-propagate, i.e. the
    mean NLL plus the AR/TAR penalty when it applies; the pure mean NLL (nats) of the same window is
    kept, detached, on ``self.last_nll`` and the penalty on ``self.last_penalty`` (0 when off), so
    reports and perplexities can use ``last_nll``. With ``ar == tar == 0`` the returned loss is the
    NLL itself (``last_nll`` equals it).

    The whole window runs inside the model's :meth:`~textseq.lm.model.RNNLanguageModel.shared_masks`
    (when it has one): the AWD dropout masks are drawn once per update window, also when the window is
    run step by step (free running) or in several pieces (cuts, carry point).
    """

    def __init__(self, lm: nn.Module, mode: str = "teacher-forcing", feedback: str = "argmax",
                 ar: float = 0.0, tar: float = 0.0):
        super().__init__()
        check_choice("mode", mode, MODES)
        check_choice("feedback", feedback, FEEDBACKS)
        for name, value in (("ar", ar), ("tar", tar)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < math.inf:
                raise TextseqError(f"{name} must be a finite number >= 0, got {value!r}")
        if (ar or tar) and mode != "teacher-forcing":
            raise TextseqError(f"ar/tar (activation regularization) work with teacher forcing only, not {mode}")
        self.lm, self.mode, self.feedback = lm, mode, feedback
        self.ar, self.tar = float(ar), float(tar)
        self.last_nll: Tensor | None = None  # detached mean NLL of the last call (without AR/TAR)
        self.last_penalty: Tensor | None = None  # detached AR + TAR of the last call

    def forward(self, data: Tensor, span: Span, hidden: Hidden | None,
                teacher_prob: float = 1.0) -> tuple[Tensor, Hidden]:
        """Loss to back-propagate (mean NLL in nats of the span's scored targets, plus AR/TAR when on)
        and the detached hidden state at ``span.carry``."""
        shared = getattr(self.lm, "shared_masks", None)
        with shared() if shared is not None else contextlib.nullcontext():
            return self._window(data, span, hidden, teacher_prob)

    def _window(self, data: Tensor, span: Span, hidden: Hidden | None,
                teacher_prob: float) -> tuple[Tensor, Hidden]:
        bounds = sorted({span.start, span.end, span.carry, *span.cuts})
        carried = detach_hidden(hidden) if span.carry == span.start else None
        outputs, raws, prev_pred = [], [], None
        penalise = self.lm.training and self.mode == "teacher-forcing" and (self.ar > 0 or self.tar > 0)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            out, raw, hidden, prev_pred = self._run(data[:, a:b], hidden, prev_pred, teacher_prob, penalise)
            outputs.append(out)
            raws.append(raw)
            if b == span.carry:
                carried = detach_hidden(hidden)
            if b in span.cuts:
                hidden = detach_hidden(hidden)
        skip = span.loss_start - span.start
        out = torch.cat(outputs, dim=1)[:, skip:]
        targets = data[:, span.loss_start + 1:span.end + 1]
        if self.mode == "teacher-forcing":
            nll = self.lm.loss(out, targets)
        else:
            nll = F.nll_loss(out.reshape(-1, out.size(-1)), targets.reshape(-1))
        loss = nll
        if penalise:
            raw = torch.cat(raws, dim=1)[:, skip:]  # [B, T_scored, H], before dropout
            loss = nll + activation_penalty(out, self.ar) + temporal_activation_penalty(raw, self.tar)
        self.last_nll = nll.detach()
        self.last_penalty = (loss - nll).detach()
        return loss, carried

    def _run(self, inputs: Tensor, hidden: Hidden | None, prev_pred: Tensor | None, teacher_prob: float,
             activations: bool = False) -> tuple[Tensor, Tensor | None, Hidden, Tensor | None]:
        """-> (features or log-probs [B, T, *], the raw last-layer output [B, T, H] if ``activations``
        else None, hidden, the last prediction)."""
        if self.mode == "teacher-forcing":
            if activations:
                features, hidden, raw = self.lm.forward_with_activations(inputs, hidden)
                return features, raw, hidden, None
            features, hidden = self.lm(inputs, hidden)
            return features, None, hidden, None
        prob = 0.0 if self.mode == "free-running" else teacher_prob
        log_probs = []
        for t in range(inputs.size(1)):
            ids = inputs[:, t] if prev_pred is None else mix_inputs(inputs[:, t], prev_pred, prob)
            step_log_probs, hidden = self.lm.step(ids, hidden)
            prev_pred = self._predict(step_log_probs)
            log_probs.append(step_log_probs)
        return torch.stack(log_probs, dim=1), None, hidden, prev_pred

    def _predict(self, log_probs: Tensor) -> Tensor:
        with torch.no_grad():
            if self.feedback == "sample":
                return torch.multinomial(log_probs.exp(), 1).squeeze(1)
            return log_probs.argmax(dim=-1)


def mix_inputs(truth: Tensor, predicted: Tensor, teacher_prob: float) -> Tensor:
    """Per stream: the true token with probability ``teacher_prob``, else the prediction."""
    if teacher_prob <= 0.0:
        return predicted
    if teacher_prob >= 1.0:
        return truth
    use_truth = torch.rand(truth.shape, device=truth.device) < teacher_prob
    return torch.where(use_truth, truth, predicted)
