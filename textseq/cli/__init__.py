"""The ``textseq`` command line. Each command group lives in its own module and only parses
arguments; the work is done by library functions usable from Python."""

from __future__ import annotations

import os
import sys

import click
import typer

from textseq.errors import TextseqError

app = typer.Typer(
    name="textseq",
    help="Text sequences end to end: preprocess, train/evaluate/generate recurrent LMs, forecast series.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _register_commands() -> None:
    from textseq.cli import evaluate, forecast, generate, preprocess, train

    for module in (preprocess, train, evaluate, generate, forecast):
        module.register(app)


_register_commands()


def _fail(message: str, code: int) -> int:
    first_line = " ".join(str(message).split("\n")[0].split())
    print(f"error: {first_line}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; user errors become one line on stderr."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="textseq", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        return _fail("aborted", 130)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except TextseqError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except MemoryError:
        return _fail("out of memory; try smaller batches or a streaming option", 1)
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return _fail(f"{exc.strerror or exc}{':' if where else ''}{where}", 1)
    except Exception as exc:  # noqa: BLE001 - last resort: no traceback for users unless asked
        if os.environ.get("TEXTSEQ_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (set TEXTSEQ_DEBUG=1 for a traceback)", 1)


def main() -> None:
    sys.exit(run())
