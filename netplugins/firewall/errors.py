"""The one exception type of the firewall layer.

Callers (the bridge plugin) turn it into a CNI error, code 102 ``FIREWALL_FAILURE``:
``except FirewallError as e: raise CniError(FIREWALL_FAILURE, e.msg, e.details)``.
"""

from __future__ import annotations


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
