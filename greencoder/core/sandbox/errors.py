"""The sandbox's own failure: no acceptable isolation, or an unsafe place to put job folders."""

from __future__ import annotations

from greencoder.core.errors import GreencoderError


class SandboxUnavailable(GreencoderError):
    """No acceptable isolation here, and the user did not opt in to running without one."""
