"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class TextseqError(Exception):
    """Bad input or an impossible request; the message is shown to the user as is."""

    exit_code = 2


class TrainingDiverged(TextseqError):
    """Loss became NaN/inf during training."""

    exit_code = 3
