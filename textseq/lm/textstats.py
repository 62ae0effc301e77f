"""What people read: measures of generated text next to the same measures of real held-out text.

Exposure bias shows in the text itself: a model trained only on true prefixes can fall into loops once it reads
its own output. For samples continuing held-out prompts: ``repeat_4``, the share of a sample's 4-grams that
already occurred earlier in that sample (loops push it up); ``distinct_1..3``, distinct n-grams over all
n-grams of all samples (Li et al. 2016: low = dull, repetitive text); ``overlap_3``, the share of the samples'
3-grams that occur in the held-out text outside the sample's own stretch (high = plausible local phrasing; the
text that really follows each prompt, measured the same way, is the reference). All are computed on the
model's own tokens (characters or words; ``<eos>`` is a token).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class TextStats:
    name: str
    samples: int
    tokens: int  # per sample
    repeat_4: float
    distinct_1: float
    distinct_2: float
    distinct_3: float
    overlap_3: float


def ngrams(tokens: Sequence, n: int) -> list[tuple]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def repeated_share(tokens: Sequence, n: int = 4) -> float:
    """Share of the n-grams of ``tokens`` that already occurred earlier in it."""
    seen: set[tuple] = set()
    repeats = total = 0
    for gram in ngrams(tokens, n):
        repeats += gram in seen
        total += 1
        seen.add(gram)
    return repeats / total if total else 0.0


def distinct(samples: Sequence[Sequence], n: int) -> float:
    grams = [gram for sample in samples for gram in ngrams(sample, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def text_stats(name: str, samples: Sequence[Sequence], reference: Sequence,
               spans: Sequence[tuple[int, int]] = ()) -> TextStats:
    """The measures of ``samples`` (token sequences); ``reference`` is the held-out token stream and ``spans``
    the stretch of it each sample continues (its own 3-grams there do not count as overlap)."""
    counts = Counter(ngrams(reference, 3))
    found = total = 0
    for i, sample in enumerate(samples):
        own = Counter(ngrams(reference[spans[i][0]:spans[i][1]], 3)) if spans else Counter()
        for gram in ngrams(sample, 3):
            found += counts[gram] - own[gram] > 0
            total += 1
    overlap = found / total if total else 0.0
    lengths = [len(sample) for sample in samples]
    return TextStats(name, len(samples), int(np.mean(lengths)) if lengths else 0,
                     float(np.mean([repeated_share(s) for s in samples])) if samples else 0.0,
                     distinct(samples, 1), distinct(samples, 2), distinct(samples, 3), overlap)


def prompt_positions(length: int, n: int, prompt: int, continuation: int) -> list[int]:
    """``n`` start positions spread evenly over a stream of ``length``, each with ``prompt`` tokens before it
    and ``continuation`` after it (fewer when the stream is short)."""
    first, last = prompt, length - continuation
    if last < first:
        return []
    return sorted(set(np.linspace(first, last, num=n).astype(int).tolist()))
