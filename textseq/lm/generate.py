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
    """Turns generated ids into text increments that are never taken back, and the final text is exactly
    what was written: ``"".join(increments) == streamer.close()``.

    Word-level detokenization looks at neighbouring tokens (a straight quote opens or closes, punctuation
    attaches to the word before it), so the text of the newest tokens can still change. The open line's text
    is written only as far as it agrees with the text of the line without its last ``HOLD`` tokens; a finished
    line (``<eos>``) and ``close()`` write the rest. In the rare case that the text of a token already written
    changes later, what was written stands and only the new tail is added, so the two texts stay equal.
    Only the open line is detokenized per token: finished lines are kept as text.
    """

    HOLD = 2

    def __init__(self, pipeline, vocab: Vocab, prefix_tokens: list[str], write: Callable[[str], None]):
        self.pipeline, self.vocab, self._write = pipeline, vocab, write
        self.finished = ""  # the text of the completed lines, each ending in "\n"
        self.line: list[str] = list(prefix_tokens)
        self.written = ""
        self.hold = 0 if pipeline.cfg.tokenize.level == "char" else self.HOLD  # characters are only appended

    def _emit(self, target: str, final: bool) -> None:
        """Write ``target`` beyond what was written, if it extends it (always when ``final``)."""
        if target.startswith(self.written):
            piece = target[len(self.written):]
        elif final:  # the detokenizer rewrote text already written: keep it, add the new tail
            piece = target[len(self.written):] if len(target) > len(self.written) else ""
        else:
            return
        if piece:
            self.written += piece
            self._write(piece)

    def _stable_text(self) -> str:
        full = self.pipeline.detokenize(self.line)
        if not self.hold:
            return self.finished + full
        held = self.pipeline.detokenize(self.line[:-self.hold]) if len(self.line) > self.hold else ""
        agree = len(os.path.commonprefix([full, held]))
        return self.finished + full[:agree]

    def start(self) -> str:
        """Write the prompt's text (as far as it is stable) and return it."""
        self._emit(self._stable_text(), final=False)
        return self.written

    def __call__(self, token_id: int) -> None:
        token = self.vocab.itos[token_id]
        if token == EOS:
            self._emit(self.finished + self.pipeline.detokenize(self.line) + "\n", final=True)
            self.finished, self.line = self.written, []
        else:
            self.line.append(token)
            self._emit(self._stable_text(), final=False)

    def close(self) -> str:
        """Write the rest of the open line; returns the whole text written."""
        self._emit(self.finished + self.pipeline.detokenize(self.line), final=True)
        return self.written


def continuation_text(pipeline, vocab: Vocab, prompt: Prompt, ids: list[int]) -> str:
    """The full text (prompt + generated) of one sample, exactly as :class:`TextStreamer` writes it."""
    streamer = TextStreamer(pipeline, vocab, prompt.tokens, lambda piece: None)
    streamer.start()
    for token_id in ids:
        streamer(token_id)
    return streamer.close()


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
        weight = (stored.get("weights") or stored["weight"]) if mix_kn == "auto" else mix_kn
        model = MixedLM(model, ngram, vocab, weight).to(next(model.parameters()).device)
    model = _with_cache(model, ckpt.data, cache, mixed=mix_kn is not None)
    encoded = encode_prompt(prompt, pipeline, vocab)
    if encoded.unknown and warn is not None:
        warn(f"unknown to the model, read as <unk>: {' '.join(encoded.unknown)}")
    if on_text is None or cfg.num_samples != 1:
        samples = generate(model, encoded.ids, cfg, eos_id=vocab.stoi[EOS])
        return [continuation_text(pipeline, vocab, encoded, ids) for ids in samples], encoded
    streamer = TextStreamer(pipeline, vocab, encoded.tokens, on_text)
    streamer.start()
    generate(model, encoded.ids, cfg, eos_id=vocab.stoi[EOS], on_token=streamer)
    return [streamer.close()], encoded


def _with_cache(model, data: dict, cache: str | int | None, mixed: bool = False):
    """The model mixed with the continuous cache; on top of the KN mix (``mixed``) with the parameters fitted
    for that combination when the checkpoint has them."""
    from textseq.lm.cache import CachedLM, CacheSettings, parse_cache

    cache = parse_cache(cache)
    if cache is None:
        return model
    if not data.get("cache"):
        raise TextseqError("this checkpoint has no fitted cache parameters (trained with --no-kn-mix); "
                           "use --cache off")
    settings = data.get("cache_with_kn") if mixed and data.get("cache_with_kn") else data["cache"]
    return CachedLM(model, CacheSettings(**settings), None if cache == "auto" else cache)
