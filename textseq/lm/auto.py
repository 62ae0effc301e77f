"""Automatic training settings: what ``textseq train FILE --level char|word --max-time 300`` uses for every
setting the user did not give, chosen from the token level, the corpus size, the vocabulary and the budget,
deterministically (the same corpus and budget give the same settings).

The rules were tuned on development slices of the bundled corpora only (bench/bench_quality.py reports them
on other text): a one-layer LSTM (512 wide for characters, 256 for words), batches small enough to give
many updates, Adam with a cosine decay over the budget, AWD-LSTM regularization that grows as the corpus
shrinks relative to the budget (it is read many times), words seen once read as <unk>, tied embeddings at
word level, the adaptive softmax once the vocabulary is large.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Settings these rules may choose; only those the user left out are filled in.
TRAIN_FIELDS = ("min_count", "bptt", "batch_size", "lr", "scheduler", "eval_every", "clip")
MODEL_FIELDS = ("num_layers", "hidden_size", "emb_size", "dropout", "tie_weights", "adaptive_softmax",
                "weight_drop", "dropout_emb", "dropout_in", "dropout_out")
# Word level: a token seen once in the text gets no row of its own (it reads as <unk>). Single-occurrence
# words are a third to two thirds of the types of a 1 MB corpus; their rows cannot be learnt from one example
# and they make a model that reads the text twice memorise it (validation worsens from the second pass on).
MIN_COUNT = {"char": 1, "word": 2}
# Vocabulary size from which the adaptive softmax is used. At word level, up to 20k types, a tied full softmax
# scored better than the adaptive one at the same budget on the development slices, though it is slower.
ADAPTIVE_FROM = {"char": 4000, "word": 20_000}
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
    out.train["min_count"] = MIN_COUNT[level]
    out.train.update(scheduler="cosine", eval_every=200, lr=3e-3)
    out.reasons.append(f"{train_tokens:,} training tokens, about {passes:.1f} passes in {budget:g} s")
    if level == "char":
        out.train.update(bptt=64, batch_size=16, clip=0.5)
        adaptive = vocab_size >= ADAPTIVE_FROM["char"]
        out.model.update(num_layers=1, hidden_size=512, emb_size=256 if adaptive else 64, tie_weights=False)
    else:
        # a tied 256-wide model beat 512 wide (tied or not) on the development slices: a small text read many
        # times rewards the regularization of tying more than width
        out.train.update(bptt=35, batch_size=16, clip=0.25)
        adaptive = vocab_size >= ADAPTIVE_FROM["word"]
        out.model.update(num_layers=1, hidden_size=256, emb_size=128 if adaptive else 256, tie_weights=not adaptive)
        if not adaptive:
            out.reasons.append(f"tied full softmax: {vocab_size:,} token types")
    out.model["adaptive_softmax"] = adaptive
    if adaptive:
        out.reasons.append(f"adaptive softmax: {vocab_size:,} token types")
    drop = regularization_strength(passes, level)
    out.model.update(dropout=0.0, weight_drop=round(0.3 * drop, 2), dropout_in=round(0.15 * drop, 2),
                     dropout_out=round(0.3 * drop, 2), dropout_emb=round(0.1 * drop, 2) if level == "word" else 0.0)
    out.reasons.append(f"AWD-LSTM dropout scaled by {drop:.2f} for {passes:.1f} passes")
    return out


def regularization_strength(passes: float, level: str = "char") -> float:
    """0 for a text read about once (no overfitting to fear), up to 1 from about 10 passes on (5 at word
    level, where validation worsens from the second pass on without it)."""
    full_at = {"char": 10.0, "word": 5.0}[level]
    return max(0.0, min(1.0, (passes - 1.0) / (full_at - 1.0)))
