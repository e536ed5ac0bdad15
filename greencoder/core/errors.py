"""Errors that carry a one-line, user-facing message.

The CLI prints `str(error)` on one line and exits non-zero; the traceback is shown only with
`--debug`. Wrap third-party exceptions in these (with `raise ... from exc`) at the point where
we know what the user asked for, so the message can name the path or id that was wrong.
"""


class GreencoderError(Exception):
    """Base class: a problem with the user's input or environment, explained in one line."""


class ModelLoadError(GreencoderError):
    """The base model could not be found or loaded."""


class AdapterError(GreencoderError):
    """The soft-prompt adapter is missing, corrupt, of the wrong kind or does not fit the base model."""


class InputError(GreencoderError):
    """A file, position or option given on the command line is unusable."""
