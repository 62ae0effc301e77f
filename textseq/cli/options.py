"""The one flag vocabulary every command speaks, and the small helpers the command modules share.

Flags that mirror a library setting default to ``None`` ("not given") so the dataclass default stays
the single source of truth; :func:`opt` shows that default in ``--help`` all the same. Old spellings
stay accepted as hidden aliases for one release (:func:`alias`, :func:`either`).

Vocabulary: ``-o/--output``, ``--force``, ``-q/--quiet``, ``--seed``, ``--device``, ``--threads`` (0: auto),
``--level char|word|subword`` (``--vocab-size``), ``--cell``, ``--hidden``, ``--layers``, ``--emb``, ``--dropout``,
``--mode teacher-forcing|free-running|...``, ``--batch-size``, ``--epochs``, ``--lr``, ``--optimizer``,
``--weight-decay``, ``--momentum``, ``--clip``, ``--patience``, ``--max-vocab``, ``--min-count``,
a positional CHECKPOINT.
"""

from __future__ import annotations

from typing import Any

import typer
from typer._click import exceptions as click_errors
from typer._click.globals import get_current_context

from textseq.errors import TextseqError

DATA, MODEL, TRAINING, OUTPUT, SAMPLING, EVALUATION = "Data", "Model", "Training", "Output", "Sampling", "Evaluation"
MISSING = object()


def opt(*names: str, help: str, default: Any = MISSING, panel: str | None = None, **kwargs) -> Any:  # noqa: A002
    """A flag whose value is None when not given; ``default`` is the library default shown in --help."""
    if default is not MISSING:
        shown = default if not isinstance(default, bool) else str(default).lower()
        help = f"{help} \\[default: {shown}]"  # noqa: A001 - typer's own name
    return typer.Option(None, *names, help=help, show_default=False, rich_help_panel=panel, **kwargs)


def alias(*names: str) -> Any:
    """An old spelling kept for one release: accepted, hidden from --help."""
    return typer.Option(None, *names, hidden=True, show_default=False)


def either(value: Any, old: Any, flag: str, old_flag: str) -> Any:
    """The value of a flag given under its name or its old alias (not both, with different values)."""
    if old is None:
        return value
    if value is not None and value != old:
        raise TextseqError(f"{old_flag} is the old name of {flag}; give only {flag}")
    return old


class Command(typer.core.TyperCommand):
    """Every command's class: usage errors always carry the command, so the usage line can be shown
    (click's parser raises some, e.g. an option missing its value, without it)."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click_errors.UsageError as exc:
            if exc.ctx is None:
                exc.ctx, exc.cmd = ctx, ctx.command
            raise


def usage_error(message: str) -> click_errors.UsageError:
    """A usage error of the running command (shown with its usage line, exit 2)."""
    return click_errors.UsageError(message, ctx=get_current_context(silent=True))


def set_threads(threads: int | None, auto: int = 0) -> None:
    """``--threads``: 0 (the default) is automatic: ``auto`` threads, or torch's own choice when ``auto`` is 0."""
    threads = threads or 0
    if threads < 0:
        raise TextseqError(f"--threads must be 0 (automatic) or positive, got {threads}")
    threads = threads or auto
    if threads:
        import torch

        torch.set_num_threads(threads)


def split_list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


THREADS_HELP = "CPU threads for torch (0: automatic)."
FORCE = typer.Option(False, "--force", help="Overwrite an existing output.", rich_help_panel=OUTPUT)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress output.", rich_help_panel=OUTPUT)
DEVICE_HELP = "auto | cpu | cuda | mps."
