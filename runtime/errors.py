"""netctl's user-facing errors: one clear line, a non-zero exit status."""

from __future__ import annotations


class NetctlError(Exception):
    """A failure to report as ``Error: <msg>`` (exit status ``code``)."""

    def __init__(self, msg: str, code: int = 1) -> None:
        super().__init__(msg)
        self.msg = msg
        self.code = code


class NotFound(NetctlError):
    """No such network or container."""


class Conflict(NetctlError):
    """A name, address or resource is already in use."""
