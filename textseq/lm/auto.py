"""Automatic training settings: what ``textseq train FILE --level char|word --max-time 300`` uses for every
setting the user did not give, chosen from the token level, the corpus size, the vocabulary and the budget,
deterministically (the same corpus and budget give the same settings).

The rules were tuned on development slices of the bundled corpora only (bench/bench_quality.py reports them
on other text): a one-layer LSTM whose width grows with the tokens the budget lets it read, batches small
enough to give many updates, Adam with a cosine decay over the budget, AWD-LSTM regularization that grows as
the corpus shrinks relative to the model (it is read many times), tied embeddings at word level, the adaptive
softmax once the vocabulary is large.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Settings these rules may choose; only those the user left out are filled in.
TRAIN_FIELDS = ("bptt", "batch_size", "lr", "scheduler", "eval_every", "clip")
MODEL_FIELDS = ("num_layers", "hidden_size", "emb_size", "dropout", "tie_weights", "adaptive_softmax",
                "weight_drop", "dropout_emb", "dropout_in", "dropout_out")
ADAPTIVE_FROM = 4000  # vocabulary size from which the adaptive softmax pays for itself on a CPU
NOMINAL_BUDGET = 300.0  # seconds assumed when the run is bounded by steps or epochs only
# Tokens per second of one update path on the reference 2-core CPU (bench: 1x512 char LSTM, adaptive softmax
# for large vocabularies); only the order of magnitude matters: it tells how often the corpus will be read.
TOKENS_PER_SECOND = {"char": 15_000, "word": 6_000}


@dataclass
class AutoSettings:
    train: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def choose(level: str, train_tokens: int, vocab_size: int, budget: float) -> AutoSettings:
    """Settings for a run of ``budget`` seconds on ``train_tokens`` tokens of a ``vocab_size`` vocabulary."""
    budget = budget or NOMINAL_BUDGET
    passes = TOKENS_PER_SECOND[level] * budget / max(1, train_tokens)  # how often the text will be read
    out = AutoSettings()
    large_vocab = vocab_size >= ADAPTIVE_FROM
    if level == "char":
        out.train.update(bptt=64, batch_size=16, lr=3e-3, clip=0.5)
        out.model.update(num_layers=1, hidden_size=512, emb_size=256 if large_vocab else 64)
    else:
        out.train.update(bptt=35, batch_size=16, lr=3e-3, clip=0.25)
        out.model.update(num_layers=1, hidden_size=512, emb_size=256)
    out.train["scheduler"] = "cosine"
    out.train["eval_every"] = 200
    out.reasons.append(f"{train_tokens:,} training tokens, about {passes:.1f} passes in {budget:g} s")
    if large_vocab:
        out.model.update(adaptive_softmax=True, tie_weights=False)
        out.reasons.append(f"adaptive softmax: {vocab_size:,} token types")
    else:
        out.model.update(adaptive_softmax=False, tie_weights=level == "word")
    drop = regularization_strength(passes)
    out.model.update(dropout=0.0, weight_drop=round(0.3 * drop, 2), dropout_in=round(0.15 * drop, 2),
                     dropout_out=round(0.3 * drop, 2), dropout_emb=round(0.1 * drop, 2) if level == "word" else 0.0)
    out.reasons.append(f"AWD-LSTM dropout scaled by {drop:.2f} for {passes:.1f} passes")
    return out


def regularization_strength(passes: float) -> float:
    """0 for a corpus read about once (no overfitting to fear), up to 1 from about 10 passes on."""
    return max(0.0, min(1.0, (passes - 1.0) / 9.0))
