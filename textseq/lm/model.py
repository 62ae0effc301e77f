"""A recurrent language model: embedding -> RNN stack -> dropout -> softmax over the vocabulary.

The output layer is either a full softmax (``nn.Linear`` + cross entropy), optionally tied to the
embedding (Press & Wolf 2017; when ``emb_size != hidden_size`` a bias-free linear projection
``proj`` maps the RNN output to ``emb_size`` first), or an adaptive softmax
(``nn.AdaptiveLogSoftmaxWithLoss``, Grave et al. 2017) that makes large word vocabularies cheap:
frequent words get a small head, rare ones share smaller tail clusters. It relies on ids being
sorted by frequency, which :class:`textseq.vocab.Vocab` guarantees.

Regularization. ``dropout`` is plain dropout (a fresh mask per element) on the embeddings and on the
RNN output, plus ``nn.LSTM``'s own dropout between layers. The AWD-LSTM regularizers (Merity et al.
2017; see :mod:`textseq.lm.regularize`) are separate settings, all off at 0.0:

- ``dropout_emb``: embedding dropout, drops whole word types (rows of the embedding matrix);
- ``dropout_in`` / ``dropout_between`` / ``dropout_out``: locked (variational) dropout, one mask per
  sequence shared by all time steps, on the embedding output / between recurrent layers / on the
  last layer's output;
- ``weight_drop``: DropConnect on every layer's hidden-to-hidden matrix ``weight_hh_l{k}``.

The recurrent stack stays the one module ``self.rnn`` (same state-dict keys as before). Only when
``weight_drop`` or ``dropout_between`` is on (and only in training mode) does the forward pass run
it layer by layer through the same fused kernels with the module's own (dropped) weights; otherwise
it is the usual single call. The activation regularizers AR/TAR live in the loss
(:class:`textseq.lm.tbptt.WindowLoss`), which gets the last layer's outputs from
:meth:`RNNLanguageModel.forward_with_activations`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textseq.errors import TextseqError, check_choice
from textseq.lm.regularize import (
    drop_connect,
    dropout_mask,
    embedding_dropout,
    locked_dropout,
    run_layer,
)
from textseq.models.cells import CELL_TYPES, IMPLS, Hidden, build_rnn

INIT_RANGE = 0.1  # uniform init of embedding and decoder, as in pytorch/examples word_language_model
PROBABILITIES = ("dropout", "weight_drop", "dropout_emb", "dropout_in", "dropout_between", "dropout_out")


@dataclass
class LMConfig:
    vocab_size: int
    cell: str = "lstm"
    emb_size: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.2  # plain dropout on embeddings and RNN output, and nn.LSTM's between layers
    tie_weights: bool = False  # decoder weight IS the embedding; adds `proj` if emb_size != hidden_size
    adaptive_softmax: bool = False
    cutoffs: tuple[int, ...] = ()  # adaptive softmax cluster boundaries; () -> default_cutoffs(vocab_size)
    impl: str = "torch"
    # AWD-LSTM regularizers (textseq.lm.regularize); 0.0 = off, active in training mode only
    weight_drop: float = 0.0  # DropConnect on each weight_hh_l{k}, a fresh mask per forward
    dropout_emb: float = 0.0  # embedding dropout: drop whole word types (embedding rows)
    dropout_in: float = 0.0  # locked dropout on the embedding output
    dropout_between: float = 0.0  # locked dropout between recurrent layers
    dropout_out: float = 0.0  # locked dropout on the last layer's output

    def __post_init__(self):
        self.cutoffs = tuple(int(c) for c in self.cutoffs)
        if self.vocab_size < 2:
            raise TextseqError(f"a language model needs at least 2 tokens in its vocabulary, got {self.vocab_size}")
        check_choice("cell", self.cell, CELL_TYPES)
        check_choice("RNN implementation", self.impl, IMPLS)
        if min(self.emb_size, self.hidden_size, self.num_layers) < 1:
            raise TextseqError("emb_size, hidden_size and num_layers must all be at least 1")
        for name in PROBABILITIES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise TextseqError(f"{name} must be in [0, 1), got {value!r}")
        if self.tie_weights and self.adaptive_softmax:
            raise TextseqError("tied weights cannot be combined with the adaptive softmax; choose one "
                               "(--tie/--no-tie, --adaptive-softmax/--full-softmax)")
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
        self.proj: nn.Linear | None = None  # only tied models with emb_size != hidden_size have one
        if cfg.adaptive_softmax:
            cutoffs = list(cfg.resolved_cutoffs())
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(cfg.hidden_size, cfg.vocab_size, cutoffs,
                                                          div_value=tail_div_value(cfg.hidden_size, len(cutoffs)))
        else:
            if cfg.tie_weights and cfg.emb_size != cfg.hidden_size:
                self.proj = nn.Linear(cfg.hidden_size, cfg.emb_size, bias=False)
            self.decoder = nn.Linear(cfg.emb_size if cfg.tie_weights else cfg.hidden_size, cfg.vocab_size)
        self._init_weights()
        if cfg.tie_weights:
            self.decoder.weight = self.encoder.weight
        # Run the stack layer by layer even when nothing needs it (tests compare the two paths).
        self.force_layerwise = False
        self._masks: dict[tuple, Tensor] | None = None  # set by shared_masks()

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
        features, hidden, _ = self.forward_with_activations(ids, hidden)
        return features, hidden

    def forward_with_activations(self, ids: Tensor, hidden: Hidden | None = None) -> tuple[Tensor, Hidden, Tensor]:
        """Like :meth:`forward`, plus the last layer's raw output ``[B, T, hidden_size]`` before any
        dropout (for TAR). ``features`` is that output after dropout (for AR)."""
        cfg, training = self.cfg, self.training
        weight, p_emb = self.encoder.weight, cfg.dropout_emb  # weight: [V, E]
        emb_mask = self._mask("emb", (weight.size(0),), p_emb, weight) if training and p_emb > 0 else None  # [V]
        emb = embedding_dropout(weight, ids, p_emb, training, emb_mask)  # [B, T, E]
        emb = self._locked(self.drop(emb), "in", cfg.dropout_in)
        if self.force_layerwise or (training and self._needs_layerwise()):
            raw, hidden = self._run_layerwise(emb, hidden)
        else:
            raw, hidden = self.rnn(emb, hidden)  # raw: [B, T, H]
        features = self._locked(self.drop(raw), "out", cfg.dropout_out)
        return features, hidden, raw

    def _needs_layerwise(self) -> bool:
        return self.cfg.weight_drop > 0 or (self.cfg.dropout_between > 0 and self.cfg.num_layers > 1)

    def _locked(self, x: Tensor, name: str, p: float) -> Tensor:
        """Locked dropout on x[B, T, D] with this forward's (or this shared_masks() scope's) mask."""
        if not self.training or p == 0.0:
            return x
        return locked_dropout(x, p, True, self._mask(name, (x.size(0), 1, x.size(2)), p, x))  # mask [B, 1, D]

    def _mask(self, name: str, shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
        """A fresh {0, 1/(1-p)} mask, or inside :meth:`shared_masks` the scope's mask of that name and shape."""
        if self._masks is None:
            return dropout_mask(shape, p, like)
        key = (name, tuple(shape))
        if key not in self._masks:
            self._masks[key] = dropout_mask(shape, p, like)
        return self._masks[key]

    def _run_layerwise(self, x: Tensor, hidden: Hidden | None) -> tuple[Tensor, Hidden]:
        """The stack one layer at a time with this module's own weights (weight_hh dropped):
        x[B, T, E] -> (out[B, T, H], hidden as nn.LSTM returns it: [L, B, H] or (h, c))."""
        cfg, rnn, training = self.cfg, self.rnn, self.training
        if getattr(rnn, "bidirectional", False):
            raise TextseqError("weight drop and locked dropout between layers need a unidirectional RNN")
        if hidden is None:
            hidden = self.init_hidden(x.size(0))
        lstm = cfg.cell == "lstm"
        final_h, final_c = [], []
        for k in range(cfg.num_layers):
            w_hh = getattr(rnn, f"weight_hh_l{k}")  # [G*H, H]
            if training and cfg.weight_drop > 0:
                mask = self._mask(f"weight_hh_l{k}", tuple(w_hh.shape), cfg.weight_drop, w_hh)
                w_hh = drop_connect(w_hh, cfg.weight_drop, True, mask)
            weights = [getattr(rnn, f"weight_ih_l{k}"), w_hh, getattr(rnn, f"bias_ih_l{k}"),
                       getattr(rnn, f"bias_hh_l{k}")]
            state = (hidden[0][k:k + 1], hidden[1][k:k + 1]) if lstm else hidden[k:k + 1]  # [1, B, H]
            x, state = run_layer(cfg.cell, cfg.impl, x, state, weights, training)
            final_h.append(state[0] if lstm else state)
            if lstm:
                final_c.append(state[1])
            if k < cfg.num_layers - 1:  # what nn.LSTM does between layers, then the AWD locked dropout
                x = F.dropout(x, rnn.dropout, training) if rnn.dropout > 0 else x
                x = self._locked(x, f"between_l{k}", cfg.dropout_between)
        h_n = torch.cat(final_h)  # [L, B, H]
        return x, ((h_n, torch.cat(final_c)) if lstm else h_n)

    @contextlib.contextmanager
    def shared_masks(self) -> Iterator[None]:
        """Within this scope every forward call reuses the same dropout masks of the AWD regularizers
        (per name and shape), e.g. over the one-token steps of a free-running TBPTT window, so that
        locked dropout stays locked across time and weight drop uses one mask per window. Plain
        ``dropout`` keeps drawing fresh masks."""
        previous, self._masks = self._masks, {} if self._masks is None else self._masks
        try:
            yield
        finally:
            self._masks = previous

    def _decode(self, features: Tensor) -> Tensor:
        """features[..., H] -> logits[..., V] of the full softmax (through ``proj`` if there is one)."""
        return self.decoder(self.proj(features) if self.proj is not None else features)

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
            nll = F.cross_entropy(self._decode(flat_features), flat_targets, reduction="none")
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
        return F.log_softmax(self._decode(features), dim=-1)

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
