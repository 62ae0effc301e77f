"""Text generation from an RNN language model: greedy, temperature / top-k / top-p sampling, beam search,
with the controls other generators have: repetition penalty, no-repeat n-grams, a minimum length before
``<eos>``, a length penalty for beams (stop strings work on the text, in :mod:`textseq.lm.generate`).

The prompt is read once; after that every new token costs one ``model.step`` because the
recurrent state is carried forward, and the constraints are updated incrementally, so generating n tokens
takes time linear in n. Returned sequences hold only the generated ids (not the prompt); when generation
stops at ``<eos>``, the ``<eos>`` itself is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from textseq.errors import TextseqError
from textseq.lm.model import RNNLanguageModel
from textseq.models.cells import Hidden
from textseq.settings import Settings

# Below this, log-probabilities divided by the temperature overflow to -inf for every token (no distribution
# is left to sample from); 0 already means "the most likely token".
MIN_TEMPERATURE = 0.01


@dataclass
class SamplingConfig(Settings):
    max_tokens: int = 200
    temperature: float = 1.0  # 0 means greedy
    top_k: int = 0  # 0 = no limit
    top_p: float = 1.0  # nucleus size; 1.0 = no limit
    greedy: bool = False
    beam_size: int = 1  # > 1 runs beam search (deterministic; the sampling options are not used)
    num_samples: int = 1
    stop_at_eos: bool = False  # <eos> ends a line of the training text: by default it is a line break
    seed: int | None = None
    length_penalty: float = 1.0  # beam search only, see beam_search()
    repetition_penalty: float = 1.0  # > 1: tokens already in the text are less likely (log-probs times it; CTRL)
    no_repeat_ngram: int = 0  # n > 0: no token that would repeat an n-gram already in the text
    min_new_tokens: int = 0  # <eos> cannot end the text (or a stop string stop it) before this many new tokens
    stop: tuple[str, ...] = ()  # stop strings, matched on the generated text (textseq.lm.generate)

    def validate(self) -> None:
        if self.max_tokens < 0:
            raise TextseqError(f"max_tokens must be >= 0, got {self.max_tokens}")
        if self.temperature != 0 and not MIN_TEMPERATURE <= self.temperature:
            raise TextseqError(f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE:g}, got "
                               f"{self.temperature:g}")
        if self.top_k < 0:
            raise TextseqError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise TextseqError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.beam_size < 1 or self.num_samples < 1:
            raise TextseqError("beam_size and num_samples must be at least 1")
        if not 0 < self.repetition_penalty <= 10:
            raise TextseqError(f"repetition penalty must be in (0, 10], got {self.repetition_penalty:g}")
        if self.no_repeat_ngram < 0 or self.min_new_tokens < 0:
            raise TextseqError("no-repeat n-gram size and min new tokens must be 0 (off) or positive")
        if any(not s for s in self.stop):
            raise TextseqError("a stop string must not be empty")
        if self.beam_size > 1 and self.num_samples > self.beam_size:
            raise TextseqError(f"beam search returns at most beam_size={self.beam_size} sequences, "
                               f"asked for num_samples={self.num_samples}")


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits of each row, set the rest to -inf (k <= 0 keeps all)."""
    if k <= 0 or k >= logits.size(-1):
        return logits
    kth_largest = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches p (the nucleus)."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
    drop_sorted = mass_before >= p  # the top token always has mass_before 0, so it is always kept
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def choose_next(log_probs: Tensor, cfg: SamplingConfig, generator: torch.Generator | None) -> Tensor:
    """log_probs[B, V] -> next ids[B] according to the sampling settings."""
    if cfg.greedy or cfg.temperature == 0:
        return log_probs.argmax(dim=-1)
    logits = top_p_filter(top_k_filter(log_probs / cfg.temperature, cfg.top_k), cfg.top_p)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


class Constraints:
    """Per-row state of the repetition controls, updated one token at a time (O(V) per step, whatever the
    length; beam search with no-repeat n-grams also copies each surviving beam's n-gram table): the tokens seen
    so far, the continuations of every (n-1)-gram, the number of new tokens. Controls that are off cost nothing."""

    def __init__(self, cfg: SamplingConfig, history: list[int], rows: int, vocab_size: int, eos_id: int | None,
                 device):
        self.cfg, self.eos_id, self.new = cfg, eos_id, 0
        self.seen = None
        if cfg.repetition_penalty != 1.0:
            self.seen = torch.zeros(rows, vocab_size, dtype=torch.bool, device=device)
            if history:
                self.seen[:, torch.tensor(sorted(set(history)), device=device)] = True
        n = cfg.no_repeat_ngram
        self.tails: list[list[int]] = [list(history[-(n - 1):]) if n > 1 else [] for _ in range(rows)]
        self.followers: list[dict[tuple, set[int]]] = [{} for _ in range(rows)]
        if n:
            for start in range(len(history) - n + 1):
                gram = history[start:start + n]
                for table in self.followers:
                    table.setdefault(tuple(gram[:-1]), set()).add(gram[-1])

    def apply(self, log_probs: Tensor, first_banned: list[int] = ()) -> Tensor:
        """``log_probs[B, V]`` with the constraints applied (a row left with nothing keeps its own)."""
        out = log_probs
        if self.seen is not None:
            out = torch.where(self.seen, out * self.cfg.repetition_penalty, out)  # log-probs < 0: less likely
        if self.cfg.no_repeat_ngram:
            banned = [sorted(table.get(tuple(tail), ())) for table, tail in zip(self.followers, self.tails,
                                                                                  strict=True)]
            if any(banned):
                out = out.clone()
                for row, ids in enumerate(banned):
                    if ids:
                        out[row, ids] = float("-inf")
        if self.eos_id is not None and self.new < self.cfg.min_new_tokens:
            out = out.clone()
            out[:, self.eos_id] = float("-inf")
        if first_banned and self.new == 0:
            out = out.clone()
            out[:, list(first_banned)] = float("-inf")
        if out is log_probs:  # nothing applied
            return out
        dead = torch.isinf(out).all(dim=-1)
        return torch.where(dead[:, None], log_probs, out) if dead.any() else out

    def advance(self, tokens: list[int], parents: list[int] | None = None) -> None:
        """Rows take the given tokens (beam search: after reordering the rows by ``parents``)."""
        n = self.cfg.no_repeat_ngram
        if parents is not None:
            if n:
                self.tails = [list(self.tails[p]) for p in parents]
                self.followers = [{k: set(v) for k, v in self.followers[p].items()} for p in parents]
            if self.seen is not None:
                self.seen = self.seen[torch.tensor(parents, device=self.seen.device)]
        if self.seen is not None:
            rows = torch.arange(len(tokens), device=self.seen.device)
            self.seen[rows, torch.tensor(tokens, device=self.seen.device)] = True
        if n:
            for row, token in enumerate(tokens):
                tail = self.tails[row]
                if len(tail) == n - 1:
                    self.followers[row].setdefault(tuple(tail), set()).add(token)
                self.tails[row] = (tail + [token])[-(n - 1):] if n > 1 else []
        self.new += 1


def read_prompt(model: RNNLanguageModel, prompt_ids: list[int],
                eos_id: int | None) -> tuple[Tensor, Hidden]:
    """Run the prompt through the model once: -> (log_probs[1, V] of the next token, hidden)."""
    if not prompt_ids:
        if eos_id is None:
            raise TextseqError("the prompt is empty and there is no <eos> token to start from")
        prompt_ids = [eos_id]  # every training line ends with <eos>, so it is the start-of-text context
    vocab_size = model.cfg.vocab_size
    if min(prompt_ids) < 0 or max(prompt_ids) >= vocab_size:
        raise TextseqError(f"prompt token ids must be in 0..{vocab_size - 1}")
    device = next(model.parameters()).device
    features, hidden = model(torch.tensor([prompt_ids], device=device))
    return model.log_probs(features[:, -1]), hidden


def repeat_hidden(hidden: Hidden, n: int) -> Hidden:
    """Copy a batch-1 state n times along the batch dimension (dimension 1 of every tensor)."""
    if isinstance(hidden, tuple):
        return tuple(repeat_hidden(h, n) for h in hidden)
    return hidden.repeat(1, n, *[1] * (hidden.dim() - 2))


def select_hidden(hidden: Hidden, index: Tensor) -> Hidden:
    if isinstance(hidden, tuple):
        return tuple(h.index_select(1, index) for h in hidden)
    return hidden.index_select(1, index)


STOP_REASONS = ("eos", "max_tokens", "stop_string")


def generate(model: RNNLanguageModel, prompt_ids: list[int], cfg: SamplingConfig | None = None,
             eos_id: int | None = None, on_token: Callable[[int], bool | None] | None = None,
             blank_ids: frozenset[int] = frozenset()) -> list[list[int]]:
    """Continue the prompt ``cfg.num_samples`` times (in one batch) -> the generated ids of each sample
    (see :func:`generate_with_reasons`)."""
    return generate_with_reasons(model, prompt_ids, cfg, eos_id, on_token, blank_ids)[0]


def generate_with_reasons(model: RNNLanguageModel, prompt_ids: list[int], cfg: SamplingConfig | None = None,
                          eos_id: int | None = None, on_token: Callable[[int], bool | None] | None = None,
                          blank_ids: frozenset[int] = frozenset()) -> tuple[list[list[int]], list[str]]:
    """-> (the generated ids of each sample, why each stopped: one of :data:`STOP_REASONS`).

    ``on_token`` is called with each new id as soon as it is chosen (only when num_samples == 1), so a
    terminal can stream the text; it returns True to stop there (a stop string was written). ``blank_ids``
    (whitespace tokens) never start a beam-search hypothesis, so beams are never empty or blank.
    """
    cfg = cfg or SamplingConfig()
    stop_id = eos_id if cfg.stop_at_eos else None
    if cfg.beam_size > 1:
        beams = beam_search(model, prompt_ids, cfg.beam_size, cfg.max_tokens, stop_id, cfg.length_penalty,
                            start_id=eos_id, cfg=cfg, blank_ids=blank_ids | ({eos_id} if eos_id is not None
                                                                           else set()))
        samples = [ids for ids, _ in beams[: cfg.num_samples]]
        reasons = ["max_tokens" if len(ids) >= cfg.max_tokens else "eos" for ids in samples]
        if on_token and cfg.num_samples == 1:
            for i, token in enumerate(samples[0]):
                if on_token(token):
                    samples[0], reasons[0] = samples[0][:i + 1], "stop_string"
                    break
        return samples, reasons
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _sample(model, prompt_ids, cfg, stop_id, eos_id, on_token)
    finally:
        model.train(was_training)


def _sample(model, prompt_ids, cfg, stop_id, eos_id, on_token) -> tuple[list[list[int]], list[str]]:
    log_probs, hidden = read_prompt(model, prompt_ids, eos_id)
    n = cfg.num_samples
    log_probs, hidden = log_probs.expand(n, -1), repeat_hidden(hidden, n)
    constraints = Constraints(cfg, list(prompt_ids), n, log_probs.size(-1), stop_id, log_probs.device)
    generator = None
    if cfg.seed is not None:
        generator = torch.Generator(device=log_probs.device).manual_seed(cfg.seed)
    stream = on_token if n == 1 else None
    samples: list[list[int]] = [[] for _ in range(n)]
    reasons = ["max_tokens"] * n
    finished = torch.zeros(n, dtype=torch.bool, device=log_probs.device)
    for step in range(1, cfg.max_tokens + 1):
        next_ids = choose_next(constraints.apply(log_probs), cfg, generator)
        if stop_id is not None:
            ended = (next_ids == stop_id) & ~finished
            for row in ended.nonzero().flatten().tolist():
                reasons[row] = "eos"
            finished |= ended
        for row, (sample, token, done) in enumerate(zip(samples, next_ids.tolist(), finished.tolist(), strict=True)):
            if not done:
                sample.append(token)
                if stream and stream(token):
                    finished[row], reasons[row] = True, "stop_string"
        if finished.all() or step == cfg.max_tokens:
            break
        constraints.advance(next_ids.tolist())
        log_probs, hidden = model.step(next_ids, hidden)
    return samples, reasons


def _normalised(score: float, length: int, length_penalty: float) -> float:
    return score / max(length, 1) ** length_penalty


@torch.no_grad()
def beam_search(model: RNNLanguageModel, prompt_ids: list[int], beam_size: int, max_tokens: int,
                eos_id: int | None = None, length_penalty: float = 1.0, start_id: int | None = None,
                cfg: SamplingConfig | None = None,
                blank_ids: frozenset[int] | set[int] = frozenset()) -> list[tuple[list[int], float]]:
    """Best continuations by total log-probability / length ** length_penalty, best first.

    ``length_penalty`` 0 ranks by the plain sum of log-probabilities (favours short outputs),
    1 by the mean per token. A hypothesis ending in ``eos_id`` counts the <eos> in its length
    and score but the id is not returned. ``start_id`` replaces an empty prompt (default eos_id); it is the
    line break of the text, and never follows itself (no blank lines). ``cfg`` brings the repetition
    controls; no hypothesis starts with one of ``blank_ids``, so none is empty or blank.
    Returns up to ``beam_size`` (ids, score) pairs.
    """
    if beam_size < 1:
        raise TextseqError(f"beam_size must be at least 1, got {beam_size}")
    was_training = model.training
    model.eval()
    try:
        start = start_id if start_id is not None else eos_id
        log_probs, hidden = read_prompt(model, prompt_ids, start)
        constraints = Constraints(cfg or SamplingConfig(max_tokens=max_tokens), list(prompt_ids), 1,
                                  log_probs.size(-1), eos_id, log_probs.device)
        return _beam_search(model, log_probs, hidden, beam_size, max_tokens, eos_id, length_penalty, constraints,
                            sorted(blank_ids), start)
    finally:
        model.train(was_training)


def _beam_search(model, log_probs, hidden, beam_size, max_tokens, eos_id, length_penalty, constraints, blank_ids,
                 line_break):
    vocab_size = log_probs.size(-1)
    beams: list[list[int]] = [[]]
    scores = log_probs.new_zeros(1)
    done: list[tuple[list[int], float]] = []
    for step in range(1, max_tokens + 1):
        log_probs = constraints.apply(log_probs, blank_ids)
        if line_break is not None and step > 1:
            after_break = torch.tensor([b[-1] == line_break for b in beams], device=log_probs.device)
            log_probs = log_probs.clone()
            log_probs[after_break, line_break] = float("-inf")
        candidates = (scores[:, None] + log_probs).flatten()
        top_scores, top_index = candidates.topk(min(2 * beam_size, candidates.numel()))
        new_beams, new_scores, parents = [], [], []
        for score, index in zip(top_scores.tolist(), top_index.tolist(), strict=True):
            if score == float("-inf"):  # sorted: only banned tokens are left
                break
            parent, token = divmod(index, vocab_size)
            if token == eos_id:
                done.append((beams[parent], _normalised(score, step, length_penalty)))
            else:
                new_beams.append(beams[parent] + [token])
                new_scores.append(score)
                parents.append(parent)
            if len(new_beams) == beam_size:
                break
        done = sorted(done, key=lambda item: -item[1])[:beam_size]
        best_live = _normalised(new_scores[0], step, length_penalty) if new_beams else float("-inf")
        if not new_beams or (len(done) == beam_size and best_live < done[-1][1]):
            return done  # the best live hypothesis already ranks below every finished one
        beams, scores = new_beams, log_probs.new_tensor(new_scores)
        if step == max_tokens:
            break
        constraints.advance([b[-1] for b in beams], parents)
        parent_index = torch.tensor(parents, device=log_probs.device)
        next_ids = torch.tensor([b[-1] for b in beams], device=log_probs.device)
        log_probs, hidden = model.step(next_ids, select_hidden(hidden, parent_index))
    live = [(ids, _normalised(score, len(ids), length_penalty))
            for ids, score in zip(beams, scores.tolist(), strict=True)]
    return sorted(done + live, key=lambda item: -item[1])[:beam_size]
