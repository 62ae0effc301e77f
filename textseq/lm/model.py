"""A recurrent language model: embedding -> RNN stack -> dropout -> softmax over the vocabulary.

The output layer is either a full softmax (``nn.Linear`` + cross entropy), optionally tied to the
embedding (Press & Wolf 2017; needs ``emb_size == hidden_size``), or an adaptive softmax
(``nn.AdaptiveLogSoftmaxWithLoss``, Grave et al. 2017) that makes large word vocabularies cheap:
frequent words get a small head, rare ones share smaller tail clusters. It relies on ids being
sorted by frequency, which :class:`textseq.vocab.Vocab` guarantees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textseq.errors import TextseqError, check_choice
from textseq.models.cells import CELL_TYPES, IMPLS, Hidden, build_rnn

INIT_RANGE = 0.1  # uniform init of embedding and decoder, as in pytorch/examples word_language_model


@dataclass
class LMConfig:
    vocab_size: int
    cell: str = "lstm"
    emb_size: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = False
    adaptive_softmax: bool = False
    cutoffs: tuple[int, ...] = ()  # adaptive softmax cluster boundaries; () -> default_cutoffs(vocab_size)
    impl: str = "torch"

    def __post_init__(self):
        self.cutoffs = tuple(int(c) for c in self.cutoffs)
        if self.vocab_size < 2:
            raise TextseqError(f"a language model needs at least 2 tokens in its vocabulary, got {self.vocab_size}")
        check_choice("cell", self.cell, CELL_TYPES)
        check_choice("RNN implementation", self.impl, IMPLS)
        if min(self.emb_size, self.hidden_size, self.num_layers) < 1:
            raise TextseqError("emb_size, hidden_size and num_layers must all be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise TextseqError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tie_weights and self.emb_size != self.hidden_size:
            raise TextseqError(f"tied weights need emb_size == hidden_size (got {self.emb_size} and "
                               f"{self.hidden_size}); set both to the same value or drop --tie-weights")
        if self.tie_weights and self.adaptive_softmax:
            raise TextseqError("tied weights cannot be combined with the adaptive softmax; choose one")
        if self.adaptive_softmax:
            check_cutoffs(self.resolved_cutoffs(), self.vocab_size)

    def resolved_cutoffs(self) -> tuple[int, ...]:
        return self.cutoffs or default_cutoffs(self.vocab_size)

    @classmethod
    def from_dict(cls, data: dict) -> LMConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise TextseqError(f"unknown language model settings: {', '.join(sorted(unknown))}")
        return cls(**data)


def default_cutoffs(vocab_size: int) -> tuple[int, ...]:
    """Head = the most frequent ~5% of tokens, then a cluster up to 20%, then the rest."""
    candidates = (max(1, vocab_size // 20), vocab_size // 5)
    cutoffs = sorted({c for c in candidates if 0 < c < vocab_size})
    return tuple(cutoffs)


def check_cutoffs(cutoffs: tuple[int, ...], vocab_size: int) -> None:
    if not cutoffs:
        raise TextseqError(f"adaptive softmax needs at least one cutoff below the vocabulary size {vocab_size}")
    if list(cutoffs) != sorted(set(cutoffs)) or cutoffs[0] < 1 or cutoffs[-1] >= vocab_size:
        raise TextseqError(f"adaptive softmax cutoffs must increase strictly within 1..{vocab_size - 1}, "
                           f"got {list(cutoffs)}")


def tail_div_value(hidden_size: int, n_clusters: int) -> float:
    """Tail cluster i projects to hidden_size / div ** (i + 1) dims: 4 as usual, smaller if that hits 0."""
    for div in (4.0, 2.0):
        if hidden_size // div**n_clusters >= 1:
            return div
    return 1.0


@contextlib.contextmanager
def plain_cpu_rnn_kernels() -> Iterator[None]:
    """Bypass oneDNN for one-token steps: its RNN kernel pays a fixed set-up per call that costs
    several times the step itself (bench/bench_generate.py); it stays on for whole sequences,
    where it is the faster kernel."""
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


class RNNLanguageModel(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Embedding(cfg.vocab_size, cfg.emb_size)
        self.rnn = build_rnn(cfg.cell, cfg.emb_size, cfg.hidden_size, cfg.num_layers, cfg.dropout,
                             impl=cfg.impl)
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.adaptive_softmax:
            cutoffs = list(cfg.resolved_cutoffs())
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(cfg.hidden_size, cfg.vocab_size, cutoffs,
                                                          div_value=tail_div_value(cfg.hidden_size, len(cutoffs)))
        else:
            self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        self._init_weights()
        if cfg.tie_weights:
            self.decoder.weight = self.encoder.weight

    def _init_weights(self) -> None:
        nn.init.uniform_(self.encoder.weight, -INIT_RANGE, INIT_RANGE)
        if not self.cfg.adaptive_softmax:
            nn.init.uniform_(self.decoder.weight, -INIT_RANGE, INIT_RANGE)
            nn.init.zeros_(self.decoder.bias)

    def init_hidden(self, batch_size: int) -> Hidden:
        weight = self.encoder.weight
        h = weight.new_zeros(self.cfg.num_layers, batch_size, self.cfg.hidden_size)
        return (h, h.clone()) if self.cfg.cell == "lstm" else h

    def forward(self, ids: Tensor, hidden: Hidden | None = None) -> tuple[Tensor, Hidden]:
        """ids[B, T] -> (features[B, T, hidden_size], hidden); features feed loss() / log_probs()."""
        emb = self.drop(self.encoder(ids))
        output, hidden = self.rnn(emb, hidden)
        return self.drop(output), hidden

    def loss(self, features: Tensor, targets: Tensor, reduction: str = "mean",
             ignore_index: int | None = None) -> Tensor:
        """Negative log-likelihood in nats; ``reduction`` is "mean", "sum" or "none" (shape of targets).

        Targets equal to ``ignore_index`` (e.g. padding) count as zero and are left out of the mean.
        """
        if reduction not in ("mean", "sum", "none"):
            raise TextseqError(f"unknown reduction {reduction!r}")
        flat_features, flat_targets = features.reshape(-1, features.size(-1)), targets.reshape(-1)
        keep = flat_targets != ignore_index if ignore_index is not None else None
        if keep is not None:
            flat_targets = flat_targets.masked_fill(~keep, 0)
        if self.cfg.adaptive_softmax:
            nll = -self.adaptive(flat_features, flat_targets).output
        else:
            nll = F.cross_entropy(self.decoder(flat_features), flat_targets, reduction="none")
        if keep is not None:
            nll = nll * keep
        if reduction == "none":
            return nll.view(targets.shape)
        if reduction == "sum":
            return nll.sum()
        return nll.sum() / (keep.sum().clamp(min=1) if keep is not None else nll.numel())

    def log_probs(self, features: Tensor) -> Tensor:
        """features[..., D] -> normalised log-probabilities [..., V]."""
        if self.cfg.adaptive_softmax:
            flat = self.adaptive.log_prob(features.reshape(-1, features.size(-1)))
            return flat.view(*features.shape[:-1], self.cfg.vocab_size)
        return F.log_softmax(self.decoder(features), dim=-1)

    def step(self, ids: Tensor, hidden: Hidden | None) -> tuple[Tensor, Hidden]:
        """One decoding step: ids[B] (the last token of each sequence) -> (log_probs[B, V], hidden)."""
        with plain_cpu_rnn_kernels():
            features, hidden = self(ids.unsqueeze(1), hidden)
        return self.log_probs(features[:, 0]), hidden

    @torch.no_grad()
    def init_embeddings(self, vectors, vocab) -> int:
        """Copy pretrained rows (gensim KeyedVectors) for the vocabulary tokens they contain."""
        if vectors.vector_size != self.cfg.emb_size:
            raise TextseqError(f"the word vectors have {vectors.vector_size} dimensions but the model's "
                               f"emb_size is {self.cfg.emb_size}; set them equal")
        found = [(i, tok) for i, tok in enumerate(vocab.itos) if tok in vectors.key_to_index]
        if found:
            rows, tokens = zip(*found, strict=True)
            pretrained = torch.as_tensor(vectors[list(tokens)], dtype=self.encoder.weight.dtype)
            self.encoder.weight[list(rows)] = pretrained.to(self.encoder.weight.device)
        return len(found)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
