"""`textseq generate`: continue a Chinese or English prompt with a trained LM checkpoint."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer

from textseq.cli.options import DEVICE_HELP, FORCE, OUTPUT, SAMPLING, THREADS_HELP, Command, opt, set_threads
from textseq.lm.sampling import SamplingConfig
from textseq.settings import default_of


def _s(name: str):
    return default_of(SamplingConfig, name)


def generate(
    checkpoint: str = typer.Argument(..., help="An LM checkpoint (e.g. RUN/best.pt).", show_default=False),
    prompt: str = typer.Option("", "--prompt", "-p", help="Text to continue (empty: start a new line)."),
    max_tokens: int = opt("--max-tokens", "-n", help="Tokens to generate at most.", default=_s("max_tokens"),
                          panel=SAMPLING),
    temperature: float = opt("--temperature", help="Sampling temperature (0: greedy).", default=_s("temperature"),
                             panel=SAMPLING),
    top_k: int = opt("--top-k", help="Sample among the k most likely tokens (0: all).", default=_s("top_k"),
                     panel=SAMPLING),
    top_p: float = opt("--top-p", help="Nucleus sampling probability mass.", default=_s("top_p"), panel=SAMPLING),
    greedy: bool = typer.Option(False, "--greedy", help="Always take the most likely token.",
                                rich_help_panel=SAMPLING),
    beam: int = opt("--beam", help="Beam size (> 1: beam search).", default=_s("beam_size"), panel=SAMPLING),
    num_samples: int = opt("--num-samples", help="Independent samples.", default=_s("num_samples"), panel=SAMPLING),
    stop_at_eos: bool = opt("--stop-at-eos/--no-stop-at-eos", help="Stop at the end of a line (else <eos> is a "
                            "line break).", default=_s("stop_at_eos"), panel=SAMPLING),
    stop: list[str] = opt("--stop", help="Stop once the generated text contains this string (repeatable).",
                          default="none", panel=SAMPLING),
    min_new_tokens: int = opt("--min-new-tokens", help="<eos> and stop strings cannot end the text earlier.",
                              default=_s("min_new_tokens"), panel=SAMPLING),
    repetition_penalty: float = opt("--repetition-penalty", help="> 1 makes tokens already in the text less likely.",
                                    default=_s("repetition_penalty"), panel=SAMPLING),
    no_repeat_ngram: int = opt("--no-repeat-ngram", help="Never repeat an n-gram of this size (0: off).",
                               default=_s("no_repeat_ngram"), panel=SAMPLING),
    length_penalty: float = opt("--length-penalty", help="Beam search: rank by log-prob / length ** this.",
                                default=_s("length_penalty"), panel=SAMPLING),
    seed: int = opt("--seed", help="Random seed for reproducible samples.", default="a fresh one (printed by --json)",
                    panel=SAMPLING),
    mix_kn: str = typer.Option("off", "--mix-kn", help="Mix with the checkpoint's Kneser-Ney partner: off, auto (the "
                               "weight fitted on validation when training) or the LM's weight in [0, 1].",
                               rich_help_panel=SAMPLING),
    cache: str = typer.Option("off", "--cache", help="Mix with the continuous cache of recent states: off, auto (the "
                              "size and parameters fitted when training) or a number of positions.",
                              rich_help_panel=SAMPLING),
    output: Path | None = opt("-o", "--output", help="Also write the text to this file (atomically).",
                              panel=OUTPUT),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (prompt, samples with their token "
                                     "count and stop reason, settings, seed) instead of the text.",
                                     rich_help_panel=OUTPUT),
    force: bool = FORCE,
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: int = typer.Option(0, "--threads", help=THREADS_HELP),
) -> None:
    """Generate text; the prompt is tokenized exactly like the training text and streamed as it grows."""
    from textseq.io import atomic_write_text, check_output
    from textseq.lm.generate import generate_samples

    set_threads(threads)
    if output:
        check_output(output, force)
    greedy = greedy or None  # not given: the library default
    given = dict(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                 beam_size=beam, num_samples=num_samples, stop_at_eos=stop_at_eos, seed=seed,
                 stop=tuple(stop) if stop else None, min_new_tokens=min_new_tokens,
                 repetition_penalty=repetition_penalty, no_repeat_ngram=no_repeat_ngram,
                 length_penalty=length_penalty)
    cfg = SamplingConfig.from_dict({k: v for k, v in given.items() if v is not None}, "sampling")
    stream = cfg.num_samples == 1 and not json_output

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    result = generate_samples(checkpoint, prompt, cfg, device, on_text=write if stream else None,
                              warn=lambda message: typer.echo(f"warning: {message}", err=True), mix_kn=mix_kn,
                              cache=cache)
    texts = [sample.text for sample in result.samples]
    if json_output:
        typer.echo(json.dumps({"prompt": prompt, "prompt_tokens": result.prompt.tokens, "seed": result.seed,
                               "settings": {**asdict(cfg), "seed": result.seed, "mix_kn": mix_kn, "cache": cache},
                               "samples": [asdict(sample) for sample in result.samples]}, ensure_ascii=False))
    elif stream:
        write("\n")
    else:
        for i, text in enumerate(texts, start=1):
            typer.echo(f"--- sample {i}\n{text}")
    if not json_output:
        typer.echo("stopped: " + "; ".join(_reason(sample, cfg) for sample in result.samples), err=True)
    if output:
        atomic_write_text(output, "\n\n".join(texts) + "\n")


def _reason(sample, cfg: SamplingConfig) -> str:
    return {"eos": f"<eos> after {sample.tokens} tokens",
            "max_tokens": f"--max-tokens {cfg.max_tokens} reached",
            "stop_string": f"stop string after {sample.tokens} tokens"}[sample.stop_reason]


def register(app: typer.Typer) -> None:
    app.command("generate", cls=Command, no_args_is_help=True)(generate)
