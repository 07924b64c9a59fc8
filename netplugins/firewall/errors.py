"""The exception types of the firewall layer.

Callers (the bridge plugin) turn ``FirewallError`` into a CNI error, code 102
``FIREWALL_FAILURE``: ``except FirewallError as e: raise CniError(FIREWALL_FAILURE, e.msg,
e.details)``; portmap turns ``PortConflict`` into code 107 ``PORT_CONFLICT``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ports.py imports this module
    from .ports import Forward, Published


class FirewallError(Exception):
    """A firewall operation failed or was asked for with bad input.

    ``msg`` says what failed (lower-case, with context); ``details`` holds what the
    tool said (nft's stderr, libiptc's error string), possibly empty.
    """

    def __init__(self, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details.strip()

    def __str__(self) -> str:
        return f"{self.msg}: {self.details}" if self.details else self.msg


class PortConflict(FirewallError):
    """A host port of the plan is already published by another owner; nothing was changed.

    ``conflicts`` holds ``(ports.Forward, ports.Published)`` pairs: what was asked and who
    already has it (the caller turns owner tags into container names).
    """

    def __init__(self, conflicts: list[tuple[Forward, Published]]) -> None:
        super().__init__(f"port {conflicts[0][0].describe()} is already allocated")
        self.conflicts = conflicts
