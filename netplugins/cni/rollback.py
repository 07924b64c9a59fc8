"""Undo steps of an ADD that report their own failures.

ADD registers an undo after each step that changed something; on failure they run in
reverse (``contextlib.ExitStack``). An undo step that fails must neither hide the error
that caused the rollback nor pass unnoticed: the runtime would believe nothing is left
(a lease, a veth, a rule). Each failure is logged and appended to the error's details
(``rollback incomplete: failed to release the IPAM lease: ...``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Literal

from .errors import CniError
from .lastresort import describe


class Rollback(ExitStack):
    """An ExitStack of named undo steps; call ``pop_all()`` once the ADD succeeded."""

    def __init__(self) -> None:
        super().__init__()
        #: "failed to <what>: <error>" for every undo step that raised
        self.failures: list[str] = []

    def undo(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """Register ``fn(*args)`` to run on failure; ``what`` says what it undoes
        ("release the IPAM lease"), for the log and the error message."""
        self.callback(self._run, what, fn, *args)

    def _run(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported below, the other steps still run
            # a plugin error speaks for itself; anything else is named by its type
            text = str(exc) if isinstance(exc, CniError) else describe(exc)
            import logging  # only when an undo step failed: ~3 ms a plugin process saves

            logging.getLogger("netplugins.rollback").warning("rollback: failed to %s: %s", what, text)
            self.failures.append(f"failed to {what}: {text}")

    def summary(self) -> str:
        """What the rollback left behind, or "" when every undo step worked."""
        return f"rollback incomplete: {'; '.join(self.failures)}" if self.failures else ""

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        # undo steps never suppress the error (only callbacks are registered here)
        super().__exit__(exc_type, exc, tb)
        text = self.summary()
        if text and exc is not None:
            if isinstance(exc, CniError):
                exc.details = f"{exc.details}; {text}" if exc.details else text
            else:
                # the skeleton puts notes into the details of an internal error (code 100)
                exc.add_note(text)
        return False


def notes(exc: BaseException) -> str:
    """The notes attached to ``exc`` (a rollback summary), joined; "" when none."""
    return "; ".join(str(n) for n in getattr(exc, "__notes__", ()))
