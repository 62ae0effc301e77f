"""User-facing errors: the CLI prints these as one line and exits non-zero."""

from collections.abc import Collection


class TextseqError(Exception):
    """Bad input or an impossible request; the message is shown to the user as is."""

    exit_code = 2


class TrainingDiverged(TextseqError):
    """Loss became NaN/inf during training."""

    exit_code = 3


def check_choice(name: str, value: object, allowed: Collection[str]) -> None:
    """Raise the standard one-line error when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise TextseqError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
