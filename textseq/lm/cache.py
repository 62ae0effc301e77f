"""A continuous cache on top of a trained LM (Grave et al. 2017, "Improving Neural Language Models with a
Continuous Cache"): recent hidden states vote for the tokens that followed them,

    p_cache(w | h_t) ∝ sum over i in (t - size, t) with x_{i+1} = w of exp(theta * h_t · h_i)
    p(w | h_t) = (1 - lam) * p_lm(w | h_t) + lam * p_cache(w | h_t)

Nothing is trained: ``theta`` and ``lam`` are fitted on the validation split at the end of training and
stored in the checkpoint. Only the probability of the token that actually follows is needed to score text,
so the cache is computed in blocks of positions with one matrix product per block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from textseq.errors import TextseqError
from textseq.lm.mix import mixed_nll as interpolated_nll

THETAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2)
LAMBDAS = np.linspace(0.0, 0.5, 51)
DEFAULT_SIZE = {"char": 400, "word": 500}
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
