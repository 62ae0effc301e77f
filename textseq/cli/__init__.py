"""The ``textseq`` command line. Each command group lives in its own module and only parses
arguments; the work is done by library functions usable from Python. The shared flag vocabulary
lives in :mod:`textseq.cli.options`."""

from __future__ import annotations

import importlib
import os
import sys

import typer
from typer._click import exceptions as click_errors  # Typer ships its own click: catch its exceptions

from textseq import __version__
from textseq.errors import TextseqError
from textseq.io import is_disk_full

app = typer.Typer(
    name="textseq",
    help="Text sequences end to end: preprocess, train/evaluate/generate recurrent LMs, forecast series.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"textseq {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", callback=_show_version, is_eager=True,
                                       help="Show the version and exit.")) -> None:
    """Text sequences end to end: preprocess, train/evaluate/generate recurrent LMs, forecast series."""


COMMAND_MODULES = ("preprocess", "train", "evaluate", "generate", "forecast")  # textseq.cli.<name>, in help order
_registered: set[str] = set()


def register_commands(argv: list[str]) -> None:
    """Import the module of the command that ``argv`` names, or all of them (for the top-level help, a
    mistyped command's suggestions, shell completion). The LM and forecasting commands import PyTorch, which
    ``textseq preprocess`` never needs: it starts in a fraction of the time and memory."""
    named = next((arg for arg in argv if not arg.startswith("-")), None)
    for name in [named] if named in COMMAND_MODULES else COMMAND_MODULES:
        if name not in _registered:
            importlib.import_module(f"textseq.cli.{name}").register(app)
            _registered.add(name)


def _fail(message: str, code: int) -> int:
    print(f"error: {one_line(str(message))}", file=sys.stderr)
    return code


def one_line(message: str, limit: int = 2000) -> str:
    """A message as one printable line: control characters (a newline or an escape sequence in a file name)
    are shown escaped, never sent to the terminal."""
    shown = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in message)
    return shown if len(shown) <= limit else shown[:limit] + " ..."


def _usage_error(exc: click_errors.UsageError) -> int:
    """The usage line, where to find help, and one ``error:`` line; exit 2 (the click convention)."""
    if exc.ctx is not None:
        print(exc.ctx.get_usage(), file=sys.stderr)
        print(f"Try '{exc.ctx.command_path} -h' for help.", file=sys.stderr)
    return _fail(exc.format_message(), 2)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; user errors become one line on stderr."""
    register_commands(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="textseq", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click_errors.NoArgsIsHelpError as exc:  # rich help is printed while the error is built
        if exc.format_message().strip():
            print(exc.format_message())
        return 0
    except click_errors.UsageError as exc:
        return _usage_error(exc)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return _fail("aborted", 130)
    except BrokenPipeError:  # e.g. `textseq train -h | head`: the reader left, nothing more to say
        return 0
    except click_errors.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except TextseqError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except MemoryError:
        return _fail("out of memory; try smaller batches or a streaming option", 1)
    except OSError as exc:
        where = getattr(exc, "filename", None)
        if is_disk_full(exc):
            return _fail(f"no space left on device ({where})" if where else "no space left on device", 1)
        return _fail(f"{exc.strerror or exc}{': ' + str(where) if where else ''}", 1)
    except Exception as exc:  # noqa: BLE001 - last resort: no traceback for users unless asked
        if os.environ.get("TEXTSEQ_DEBUG", "").lower() in ("1", "true", "yes", "on"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        return _fail(f"internal error: {type(exc).__name__}: {first} (set TEXTSEQ_DEBUG=1 for a traceback)", 1)


def main() -> None:
    sys.exit(run())
