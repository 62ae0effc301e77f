"""A continuous cache on top of a trained LM (Grave et al. 2017, "Improving Neural Language Models with a
Continuous Cache"): recent hidden states vote for the tokens that followed them,

    p_cache(w | h_t) ∝ sum over i in (t - size, t) with x_{i+1} = w of exp(theta * h_t · h_i)
    p(w | h_t) = (1 - lam) * p_lm(w | h_t) + lam * p_cache(w | h_t)

Nothing is trained: ``theta`` and ``lam`` are fitted on the validation split at the end of training and
stored in the checkpoint. Only the probability of the token that actually follows is needed to score text,
so the cache is computed in blocks of positions with one matrix product per block. For generation,
:class:`CachedLM` keeps the last ``size`` (state, next token) pairs of every sequence and mixes the whole
next-token distribution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from textseq.errors import TextseqError
from textseq.lm.mix import mixed_nll as interpolated_nll
from textseq.lm.model import plain_cpu_rnn_kernels
from textseq.settings import parse_auto_off

THETAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2)
LAMBDAS = np.linspace(0.0, 0.5, 51)
DEFAULT_SIZE = {"char": 400, "word": 500, "subword": 500}
BLOCK = 256  # query positions scored per matrix product


@dataclass
class CacheSettings:
    size: int  # how many previous positions vote
    theta: float  # sharpness of the vote (scales the dot products)
    weight: float  # lam, the cache's share of the mix
    valid_nll_lm: float
    valid_nll_cache: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def states_and_targets(lm, inputs: Tensor, targets: Tensor, bptt: int = 35) -> tuple[Tensor, Tensor]:
    """Teacher-forced last-layer states h[R, N, H] (what the output layer reads) for stream rows."""
    lm.eval()
    device = next(lm.parameters()).device
    inputs = inputs.to(device)
    states, hidden = [], None
    for start in range(0, inputs.size(1), bptt):
        features, hidden = lm(inputs[:, start:start + bptt], hidden)
        states.append(features)
    return torch.cat(states, dim=1), targets.to(device)


@torch.no_grad()
def cache_probs(states: Tensor, targets: Tensor, size: int, theta: float, ignore: int = -100) -> Tensor:
    """p_cache(the true next token) at every position of each row: [R, N] (0 where nothing in the cache matches)."""
    if size < 1:
        raise TextseqError(f"the cache size must be at least 1, got {size}")
    rows, n, _ = states.shape
    out = torch.zeros(rows, n, dtype=torch.float64, device=states.device)
    positions = torch.arange(n, device=states.device)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        first = max(0, start - size)
        query, keys = states[:, start:stop], states[:, first:stop]  # [R, C, H], [R, K, H]
        scores = theta * torch.bmm(query, keys.transpose(1, 2)).double()  # [R, C, K]
        lag = positions[start:stop, None] - positions[None, first:stop]  # query index - key index
        scores = scores.masked_fill(~((lag >= 1) & (lag <= size)), float("-inf"))
        same = targets[:, start:stop, None] == targets[:, None, first:stop]  # the key was followed by our target
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a row with an empty cache has no votes
        out[:, start:stop] = (weights * same).sum(-1)
    return out.masked_fill(targets == ignore, 0.0)


def mixed_nll(lm_logp: np.ndarray, cache_p: np.ndarray, weight: float) -> float:
    """Mean NLL of ``(1 - weight) * p_lm + weight * p_cache`` (the cache gets ``weight``)."""
    with np.errstate(divide="ignore"):  # p_cache is 0 where nothing in the cache matches
        return interpolated_nll(lm_logp, np.log(cache_p), 1.0 - weight)


def fit_cache(lm, inputs: Tensor, targets: Tensor, lm_logp: np.ndarray, size: int, bptt: int,
              ignore: int = -100) -> CacheSettings:
    """theta and lam minimising the validation NLL (lam = 0, no cache, is always a candidate)."""
    states, targets = states_and_targets(lm, inputs, targets, bptt)
    keep = (targets != ignore).reshape(-1).cpu().numpy()
    best = (float(-lm_logp.mean()), THETAS[0], 0.0)
    for theta in THETAS:
        cache_p = cache_probs(states, targets, size, theta, ignore).reshape(-1).cpu().numpy()[keep]
        for lam in LAMBDAS:
            nll = mixed_nll(lm_logp, cache_p, float(lam))
            if nll < best[0]:
                best = (nll, theta, float(lam))
    return CacheSettings(size, best[1], best[2], float(-lm_logp.mean()), best[0])


def parse_cache(value: str | int | None) -> str | int | None:
    """``--cache``: "auto" (the fitted size), "off"/None, or a number of positions (at least 1)."""
    return parse_auto_off(value, "--cache", int, lambda size: size >= 1, "a number of positions",
                          "a number of positions (at least 1)")


class CachedLM(torch.nn.Module):
    """An LM (or an LM mixed with its n-gram partner) whose next-token distribution is mixed with the
    continuous cache, for generation. It steps like the model it wraps, so the samplers use it unchanged.

    Its state is the wrapped model's state plus, per sequence, the cached last-layer states ``[1, B, S, H]``,
    the token that followed each of them ``[1, B, S]`` and the newest state, whose next token is not known
    yet, ``[1, B, 1, H]``; beams and samples copy and reorder them like the rest (dimension 1 is the batch).
    """

    def __init__(self, inner, settings: CacheSettings, size: int | None = None):
        super().__init__()
        self.inner, self.theta, self.weight = inner, settings.theta, settings.weight
        self.size = size or settings.size
        self.cfg = inner.cfg

    def forward(self, ids: Tensor, state=None):
        """ids[B, T] -> (features[B, T, H], state)."""
        if state is None:
            inner_state, keys, tokens, pending = None, None, None, None
        else:
            *inner, keys, tokens, pending = state
            inner_state = inner[0] if len(inner) == 1 else tuple(inner)
        features, inner_state = self.inner(ids, inner_state)
        new_keys = features[:, :-1]  # [B, T-1, H]: state t is followed by ids[:, t + 1]
        new_tokens = ids[:, 1:]
        if pending is not None:  # the newest state of the last call is followed by ids[:, 0]
            new_keys = torch.cat([pending[0], new_keys], dim=1)
            new_tokens = torch.cat([ids[:, :1], new_tokens], dim=1)
            new_keys = torch.cat([keys[0], new_keys], dim=1)[:, -self.size:]
            new_tokens = torch.cat([tokens[0], new_tokens], dim=1)[:, -self.size:]
        else:
            new_keys, new_tokens = new_keys[:, -self.size:], new_tokens[:, -self.size:]
        self._keys, self._tokens = new_keys, new_tokens
        parts = inner_state if isinstance(inner_state, tuple) else (inner_state,)
        return features, (*parts, new_keys[None], new_tokens[None], features[None, :, -1:])

    def log_probs(self, features: Tensor) -> Tensor:
        """Mixed log-probabilities of the next token after the last ``forward``: features[B, D] -> [B, V]."""
        probs = self.inner.log_probs(features).exp()  # [B, V]
        if self._keys.size(1) == 0 or self.weight == 0:
            return probs.log()
        scores = self.theta * torch.einsum("bsh,bh->bs", self._keys, features)  # [B, S]
        votes = torch.zeros_like(probs).scatter_add_(1, self._tokens, scores.softmax(-1).to(probs))  # [B, V]
        return torch.log((1 - self.weight) * probs + self.weight * votes)

    def step(self, ids: Tensor, state):
        with plain_cpu_rnn_kernels():
            features, state = self(ids.unsqueeze(1), state)
        return self.log_probs(features[:, 0]), state
