"""Automatic training settings: what ``textseq train FILE --level char|word --max-time 300`` uses for every
setting the user did not give, chosen from the token level, the corpus size, the vocabulary and the budget,
deterministically (the same corpus and budget give the same settings on every machine).

The rules were tuned on development slices of the bundled corpora only (bench/bench_quality.py reports them
on other text). Three kinds of token stream behave differently:

- characters of an alphabet (a vocabulary of tens to hundreds): the model is short of compute, not of data,
  within a CPU budget; a one-layer 512-wide LSTM with large batches (more tokens per second) and moderate
  AWD-LSTM dropout learns fastest;
- characters of a logographic script (Chinese: thousands of types, each used like a word): short of data,
  they overfit from the first passes; tied embeddings and embedding dropout help, as for words, and a text
  read fifty times or more (150 KB in 300 s) wants a narrower model and the AWD-LSTM paper's dropout;
- words: words seen once read as <unk>, a tied 256-wide model, the full AWD-LSTM dropout from five passes.

Everywhere: Adam with a cosine decay over the budget, AWD-LSTM regularization that grows as the corpus shrinks
relative to the budget (it is read many times), the adaptive softmax once the vocabulary is large.
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
MIN_COUNT = {"char": 1, "word": 2, "subword": 1}  # subword units are all frequent by construction
# Vocabulary size from which the adaptive softmax is used: up to 20k types a tied full softmax scored better
# than the adaptive one at the same budget on the development slices (words and Chinese characters alike),
# though it is slower.
ADAPTIVE_FROM = 20_000
# A character vocabulary this large is a logographic script: its characters are treated like words.
LOGOGRAPHIC_FROM = 1_000
# Passes from which a logographic text counts as tiny: a 256-wide model, dropout scaled by TINY_STRENGTH (weight
# drop 0.5 as in AWD-LSTM); on a 150 KB development slice this lost 2% less to the n-gram model than 512 wide.
TINY_PASSES, TINY_STRENGTH = 50.0, 5 / 3
# Read fewer times than this, a logographic text trains faster with the adaptive softmax and without embedding
# dropout (120 s on 1 MB of Song ci: 6.31 bits/char vs 6.45 tied); read more often, the tied full softmax with
# embedding dropout overfits less (300 s: 0.927 x KN vs 0.934 adaptive, 0.936 tied without embedding dropout).
LOGOGRAPHIC_TIED_FROM = 10.0
NOMINAL_BUDGET = 300.0  # seconds assumed when the run is bounded by steps or epochs only
# A nominal float32 throughput (tokens per second) of the default models on a 2-core CPU; only the order of
# magnitude matters: it tells how often the corpus will be read, which sets the regularization. It does not
# depend on the machine, so the same corpus and budget get the same settings everywhere.
TOKENS_PER_SECOND = {"char": 15_000, "word": 6_000, "subword": 6_000}


@dataclass
class AutoSettings:
    train: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def min_count(level: str, pretokenized: bool = False) -> int:
    """Pretokenized text (WikiText) has its rare words replaced by <unk> already: every token it has is kept."""
    return 1 if pretokenized else MIN_COUNT[level]


def choose(level: str, train_tokens: int, vocab_size: int, budget: float, pretokenized: bool = False) -> AutoSettings:
    """Settings for a run of ``budget`` seconds on ``train_tokens`` tokens of a ``vocab_size`` vocabulary."""
    budget = budget or NOMINAL_BUDGET
    passes = TOKENS_PER_SECOND[level] * budget / max(1, train_tokens)  # how often the text will be read
    out = AutoSettings()
    out.train["min_count"] = min_count(level, pretokenized)
    if pretokenized:
        out.reasons.append("pretokenized text: every token kept as written (its own <unk> marks rare words)")
    out.train.update(scheduler="cosine", eval_every=200)
    out.reasons.append(f"{train_tokens:,} training tokens, about {passes:.1f} passes in {budget:g} s")
    adaptive = vocab_size >= ADAPTIVE_FROM
    # subword pieces are trained like words (a few thousand types, each seen often): the word rules
    kind = "word" if level in ("word", "subword") else "logographic" if vocab_size >= LOGOGRAPHIC_FROM else "alphabetic"
    if kind == "alphabetic":
        # compute-bound: batch 64 gave more tokens per second and a better model than 16 or 32 in the budget
        out.train.update(bptt=64, batch_size=64, lr=4e-3, clip=0.5)
        out.model.update(num_layers=1, hidden_size=512, emb_size=64, tie_weights=False)
        out.reasons.append(f"{vocab_size:,} character types: large batches, compute is what is short")
    elif kind == "logographic":
        tiny, short = passes >= TINY_PASSES, passes < LOGOGRAPHIC_TIED_FROM
        adaptive = adaptive or short
        out.train.update(bptt=64, batch_size=16, lr=3e-3, clip=0.5)
        out.model.update(num_layers=1, hidden_size=256 if tiny else 512, emb_size=256, tie_weights=not adaptive)
        out.reasons.append(f"{vocab_size:,} character types, used like words: "
                           + ("the faster adaptive softmax for a text read fewer than "
                              f"{LOGOGRAPHIC_TIED_FROM:g} times" if short else "tied embeddings")
                           + (f"; a small text ({passes:.0f} passes): 256 wide, strong dropout" if tiny else ""))
    else:
        # a tied 256-wide model beat 512 wide (tied or not) on the development slices: a small text read many
        # times rewards the regularization of tying more than width
        out.train.update(bptt=35, batch_size=16, lr=3e-3, clip=0.25)
        out.model.update(num_layers=1, hidden_size=256, emb_size=128 if adaptive else 256, tie_weights=not adaptive)
        if not adaptive:
            out.reasons.append(f"tied full softmax: {vocab_size:,} token types")
    out.model["adaptive_softmax"] = adaptive
    if vocab_size >= ADAPTIVE_FROM:
        out.reasons.append(f"adaptive softmax: {vocab_size:,} token types")
    drop = TINY_STRENGTH if kind == "logographic" and passes >= TINY_PASSES else regularization_strength(passes, kind)
    out.model.update(dropout=0.0, weight_drop=round(0.3 * drop, 2), dropout_in=round(0.15 * drop, 2),
                     dropout_out=round(0.3 * drop, 2),
                     dropout_emb=round(0.1 * drop, 2) if kind == "word" or (
                         kind == "logographic" and passes >= LOGOGRAPHIC_TIED_FROM) else 0.0)
    out.reasons.append(f"AWD-LSTM dropout scaled by {drop:.2f} for {passes:.1f} passes")
    return out


def regularization_strength(passes: float, kind: str = "alphabetic") -> float:
    """0 for a text read about once (no overfitting to fear), up to 1 from about 10 passes on (5 for words,
    where validation worsens from the second pass on without it)."""
    full_at = {"alphabetic": 10.0, "logographic": 10.0, "word": 5.0}[kind]
    return max(0.0, min(1.0, (passes - 1.0) / (full_at - 1.0)))
