"""`textseq generate`: continue a Chinese or English prompt with a trained LM checkpoint."""

from __future__ import annotations

import sys

import typer


def generate(
    checkpoint: str = typer.Argument(..., help="An LM checkpoint (e.g. RUN/best.pt)."),
    prompt: str = typer.Option("", "--prompt", "-p", help="Text to continue (empty: start a new line)."),
    max_tokens: int = typer.Option(200, "--max-tokens", "-n", help="Tokens to generate at most."),
    temperature: float = typer.Option(1.0, help="Sampling temperature (0: greedy)."),
    top_k: int = typer.Option(0, help="Sample among the k most likely tokens (0: all)."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling probability mass."),
    greedy: bool = typer.Option(False, "--greedy", help="Always take the most likely token."),
    beam: int = typer.Option(1, "--beam", help="Beam size (> 1: beam search)."),
    num_samples: int = typer.Option(1, "--num-samples", help="Independent samples."),
    stop_at_eos: bool = typer.Option(True, "--stop-at-eos/--no-stop-at-eos", help="Stop at the end of a line."),
    seed: int = typer.Option(None, help="Random seed for reproducible samples."),
    device: str = typer.Option("cpu", help="auto | cpu | cuda | mps."),
) -> None:
    """Generate text; the prompt is tokenized exactly like the training text and streamed as it grows."""
    from textseq.lm.generate import generate_text
    from textseq.lm.sampling import SamplingConfig

    cfg = SamplingConfig(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                         beam_size=beam, num_samples=num_samples, stop_at_eos=stop_at_eos, seed=seed)
    stream = num_samples == 1

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    texts, _ = generate_text(checkpoint, prompt, cfg, device, on_text=write if stream else None,
                             warn=lambda message: typer.echo(f"warning: {message}", err=True))
    if stream:
        write("\n")
        return
    for i, text in enumerate(texts, start=1):
        typer.echo(f"--- sample {i}\n{text}")


def register(app: typer.Typer) -> None:
    app.command("generate", no_args_is_help=True)(generate)
