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
        # characters and subword pieces only append to the text; detokenized words may change what came before
        self.hold = 0 if pipeline.cfg.tokenize.level in ("char", "subword") else self.HOLD

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


class StopStrings:
    """Feeds a streamer; True once the generated text (not the prompt) contains one of ``stop`` and at least
    ``min_tokens`` tokens were generated. Starts the streamer (the prompt's text is written)."""

    def __init__(self, streamer: TextStreamer, stop: tuple[str, ...] = (), min_tokens: int = 0):
        self.streamer, self.stop, self.min_tokens = streamer, stop, min_tokens
        written = streamer.start()  # word level holds back the prompt's last tokens: skip all of its text
        self.offset = max(len(written), len(streamer.pipeline.detokenize(streamer.line)))
        self.tokens = 0

    def __call__(self, token_id: int) -> bool:
        self.streamer(token_id)
        self.tokens += 1
        return (bool(self.stop) and self.tokens >= self.min_tokens
                and any(s in self.streamer.written[self.offset:] for s in self.stop))


def continuation_text(pipeline, vocab: Vocab, prompt: Prompt, ids: list[int]) -> str:
    """The full text (prompt + generated) of one sample, exactly as :class:`TextStreamer` writes it."""
    return _continuation(pipeline, vocab, prompt, ids)[0]


def _continuation(pipeline, vocab: Vocab, prompt: Prompt, ids: list[int], stop: tuple[str, ...] = (),
                  min_tokens: int = 0) -> tuple[str, int]:
    """(text, tokens used): cut after the first token that completes a stop string."""
    streamer = TextStreamer(pipeline, vocab, prompt.tokens, lambda piece: None)
    watch = StopStrings(streamer, stop, min_tokens)
    for token_id in ids:
        if watch(token_id):
            break
    return streamer.close(), watch.tokens


@dataclass
class Sample:
    text: str  # prompt + continuation
    tokens: int  # new tokens
    stop_reason: str  # eos | max_tokens | stop_string


@dataclass
class Generation:
    prompt: Prompt
    samples: list[Sample]
    seed: int  # the seed used (drawn when none was given, so the run can be repeated)


def generate_text(checkpoint: str | os.PathLike, prompt: str = "", cfg=None, device: str = "cpu",
                  on_text: Callable[[str], None] | None = None,
                  warn: Callable[[str], None] | None = None,
                  mix_kn: str | float | None = None, cache: str | int | None = None) -> tuple[list[str], Prompt]:
    """Generate from a checkpoint path alone -> (texts including the prompt, the encoded prompt); see
    :func:`generate_samples` for the stop reasons and the seed."""
    result = generate_samples(checkpoint, prompt, cfg, device, on_text, warn, mix_kn, cache)
    return [sample.text for sample in result.samples], result.prompt


def generate_samples(checkpoint: str | os.PathLike, prompt: str = "", cfg=None, device: str = "cpu",
                     on_text: Callable[[str], None] | None = None,
                     warn: Callable[[str], None] | None = None,
                     mix_kn: str | float | None = None, cache: str | int | None = None) -> Generation:
    """Generate from a checkpoint path alone.

    ``on_text`` receives the prompt and then text increments as tokens are produced (one sample only);
    ``warn`` is told, before generating, about prompt tokens the model does not know (and about a prompt in
    the other Chinese script). ``mix_kn`` mixes the next-token distribution with the stored Kneser-Ney partner
    ("auto": its fitted weight, or the LM's weight); ``cache`` with the continuous cache fitted at training
    time ("auto": its fitted size, or a size). Stop strings (``cfg.stop``) end a sample after the token that
    completes one.
    """
    from dataclasses import replace

    from textseq.distributed import pick_device
    from textseq.lm.checkpoint import LMCheckpoint
    from textseq.lm.mix import MixedLM, load_partner, parse_mix
    from textseq.lm.sampling import SamplingConfig, generate_with_reasons

    cfg = cfg or SamplingConfig()
    seed = cfg.seed if cfg.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
    cfg = replace(cfg, seed=seed)
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
        hint = script_hint(prompt, pipeline, vocab, encoded)
        if hint:
            warn(hint)
    blank = frozenset(i for i, token in enumerate(vocab.itos) if token.isspace())
    eos = vocab.stoi[EOS]
    if on_text is None or cfg.num_samples != 1:
        runs, reasons = generate_with_reasons(model, encoded.ids, cfg, eos_id=eos, blank_ids=blank)
        samples = []
        for ids, reason in zip(runs, reasons, strict=True):
            text, used = _continuation(pipeline, vocab, encoded, ids, cfg.stop, cfg.min_new_tokens)
            samples.append(Sample(text, used, "stop_string" if used < len(ids) else reason))
        return Generation(encoded, samples, seed)
    streamer = TextStreamer(pipeline, vocab, encoded.tokens, on_text)
    watch = StopStrings(streamer, cfg.stop, cfg.min_new_tokens)
    runs, reasons = generate_with_reasons(model, encoded.ids, cfg, eos_id=eos, on_token=watch, blank_ids=blank)
    return Generation(encoded, [Sample(streamer.close(), len(runs[0]), reasons[0])], seed)


def script_hint(text: str, pipeline, vocab: Vocab, encoded: Prompt) -> str | None:
    """When the prompt is in the other Chinese script than the training text, say so and how to fix it."""
    from textseq.text.tokenize import HAS_HAN

    if not HAS_HAN.search(text):
        return None
    try:
        import opencc
    except ImportError:
        return None
    for config, script, flag in (("s2t", "Traditional", "--t2s when training, or write the prompt in Traditional"),
                                 ("t2s", "Simplified", "write the prompt in Simplified")):
        converted = opencc.OpenCC(config).convert(text)
        if converted == text:
            continue
        unknown = [t for t in pipeline.process_line(converted) if t not in vocab]
        if len(unknown) < len(encoded.unknown):
            return (f"the model was trained on {script} characters: the prompt in {script} ({converted}) has "
                    f"{len(unknown)} unknown token(s) instead of {len(encoded.unknown)}; {flag}")
    return None


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
