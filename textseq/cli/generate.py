"""`textseq generate`: continue a Chinese or English prompt with a trained LM checkpoint."""

from __future__ import annotations

import sys

import typer

from textseq.cli.options import DEVICE_HELP, SAMPLING, THREADS_HELP, Command, opt, set_threads
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
    stop_at_eos: bool = opt("--stop-at-eos/--no-stop-at-eos", help="Stop at the end of a line.",
                            default=_s("stop_at_eos"), panel=SAMPLING),
    seed: int = opt("--seed", help="Random seed for reproducible samples.", default="a fresh one", panel=SAMPLING),
    mix_kn: str = typer.Option("off", "--mix-kn", help="Mix with the checkpoint's Kneser-Ney partner: off, auto (the "
                               "weight fitted on validation when training) or the LM's weight in [0, 1].",
                               rich_help_panel=SAMPLING),
    cache: str = typer.Option("off", "--cache", help="Mix with the continuous cache of recent states: off, auto (the "
                              "size and parameters fitted when training) or a number of positions.",
                              rich_help_panel=SAMPLING),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: int = typer.Option(0, "--threads", help=THREADS_HELP),
) -> None:
    """Generate text; the prompt is tokenized exactly like the training text and streamed as it grows."""
    from textseq.lm.generate import generate_text

    set_threads(threads)
    greedy = greedy or None  # not given: the library default
    given = dict(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                 beam_size=beam, num_samples=num_samples, stop_at_eos=stop_at_eos, seed=seed)
    cfg = SamplingConfig.from_dict({k: v for k, v in given.items() if v is not None}, "sampling")
    stream = cfg.num_samples == 1

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    texts, _ = generate_text(checkpoint, prompt, cfg, device, on_text=write if stream else None,
                             warn=lambda message: typer.echo(f"warning: {message}", err=True), mix_kn=mix_kn,
                             cache=cache)
    if stream:
        write("\n")
        return
    for i, text in enumerate(texts, start=1):
        typer.echo(f"--- sample {i}\n{text}")


def register(app: typer.Typer) -> None:
    app.command("generate", cls=Command, no_args_is_help=True)(generate)
