"""Text in, text out around :mod:`textseq.lm.sampling`: prompts are tokenized by the checkpoint's own
pipeline (exactly like the training text) and the continuation is detokenized as it streams."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from textseq.errors import TextseqError
from textseq.vocab import EOS, Vocab


@dataclass
class Prompt:
    ids: list[int]  # <eos> (the start-of-line context of training) + the prompt's ids
    tokens: list[str]
    unknown: list[str]  # prompt tokens mapped to <unk>


def encode_prompt(text: str, pipeline, vocab: Vocab) -> Prompt:
    """Tokenize a prompt; OOV tokens become ``<unk>``; a prompt of only unknown tokens is an error."""
    tokens = pipeline.process_line(text) if text else []
    unknown = [t for t in tokens if t not in vocab]
    if tokens and len(unknown) == len(tokens):
        shown = " ".join(unknown[:10])
        raise TextseqError(f"none of the prompt's tokens are known to the model ({shown}); "
                           "use words or characters from the training text")
    return Prompt([vocab.stoi[EOS]] + vocab.encode(tokens), tokens, unknown)


class TextStreamer:
    """Turns generated ids into text increments (word-level detokenization looks at the whole line,
    so only the open line is detokenized again per token; finished lines are kept as text)."""

    def __init__(self, pipeline, vocab: Vocab, prefix_tokens: list[str], write: Callable[[str], None]):
        self.pipeline, self.vocab, self.write = pipeline, vocab, write
        self.finished = ""  # the text of the completed lines, each ending in "\n"
        self.line: list[str] = list(prefix_tokens)
        self.shown = self.text()

    def text(self) -> str:
        return self.finished + self.pipeline.detokenize(self.line)

    def __call__(self, token_id: int) -> None:
        token = self.vocab.itos[token_id]
        if token == EOS:
            self.finished, self.line = self.text() + "\n", []
        else:
            self.line.append(token)
        text = self.text()
        if text.startswith(self.shown):
            self.write(text[len(self.shown):])
            self.shown = text


def continuation_text(pipeline, vocab: Vocab, prompt: Prompt, ids: list[int]) -> str:
    """The full text (prompt + generated) of one sample."""
    pieces: list[str] = []
    streamer = TextStreamer(pipeline, vocab, prompt.tokens, pieces.append)
    for token_id in ids:
        streamer(token_id)
    return streamer.text()


def generate_text(checkpoint: str | os.PathLike, prompt: str = "", cfg=None, device: str = "cpu",
                  on_text: Callable[[str], None] | None = None,
                  warn: Callable[[str], None] | None = None,
                  mix_kn: str | float | None = None, cache: str | int | None = None) -> tuple[list[str], Prompt]:
    """Generate from a checkpoint path alone -> (texts including the prompt, the encoded prompt).

    ``on_text`` receives the prompt and then text increments as tokens are produced (one sample only);
    ``warn`` is told, before generating, about prompt tokens the model does not know. ``mix_kn`` mixes the
    next-token distribution with the stored Kneser-Ney partner ("auto": its fitted weight, or the LM's weight);
    ``cache`` with the continuous cache fitted at training time ("auto": its fitted size, or a size).
    """
    from textseq.distributed import pick_device
    from textseq.lm.checkpoint import LMCheckpoint
    from textseq.lm.mix import MixedLM, load_partner, parse_mix
    from textseq.lm.sampling import SamplingConfig, generate

    cfg = cfg or SamplingConfig()
    ckpt = LMCheckpoint.load(checkpoint, pick_device(device))
    model, vocab, pipeline = ckpt.model, ckpt.vocab, ckpt.pipeline
    mix_kn = parse_mix(mix_kn)
    if mix_kn is not None:
        partner = load_partner(checkpoint, ckpt.data)
        if partner is None:
            raise TextseqError("this checkpoint has no n-gram partner (trained with --no-kn-mix); use --mix-kn off")
        ngram, stored = partner
        weight = stored["weight"] if mix_kn == "auto" else mix_kn
        model = MixedLM(model, ngram, vocab, weight).to(next(model.parameters()).device)
    model = _with_cache(model, ckpt.data, cache)
    encoded = encode_prompt(prompt, pipeline, vocab)
    if encoded.unknown and warn is not None:
        warn(f"unknown to the model, read as <unk>: {' '.join(encoded.unknown)}")
    on_token = None
    if on_text is not None and cfg.num_samples == 1:
        streamer = TextStreamer(pipeline, vocab, encoded.tokens, on_text)
        on_text(streamer.shown)
        on_token = streamer
    samples = generate(model, encoded.ids, cfg, eos_id=vocab.stoi[EOS], on_token=on_token)
    return [continuation_text(pipeline, vocab, encoded, ids) for ids in samples], encoded


def _with_cache(model, data: dict, cache: str | int | None):
    from textseq.lm.cache import CachedLM, CacheSettings, parse_cache

    cache = parse_cache(cache)
    if cache is None:
        return model
    if not data.get("cache"):
        raise TextseqError("this checkpoint has no fitted cache parameters (trained with --no-kn-mix); "
                           "use --cache off")
    return CachedLM(model, CacheSettings(**data["cache"]), None if cache == "auto" else cache)
