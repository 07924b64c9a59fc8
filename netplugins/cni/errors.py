"""CNI error results (spec section "Error") and the codes we use.

Codes 0-99 are the spec's; 100 and above are ours. Plugins raise :class:`CniError`;
the skeleton turns it into the JSON object on stdout and a non-zero exit status.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any


INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
LIMITED_CONNECTIVITY = 51

# Our own codes (>= 100).
INTERNAL = 100          #: an unexpected failure inside a plugin (details hold the exception)
NETLINK_FAILURE = 101   #: the kernel refused a link, address or route change
FIREWALL_FAILURE = 102  #: nft / iptables refused a ruleset
DELEGATE_FAILURE = 103  #: a delegated plugin (IPAM) could not be run
INVALID_NETNS = 104     #: CNI_NETNS is not a network namespace, or not the expected one
ADDRESS_CONFLICT = 105  #: an address or port is already in use
IFACE_EXISTS = 106      #: CNI_IFNAME already exists in the container
PORT_CONFLICT = 107     #: a host port is already published or bound
RANGE_EXHAUSTED = 110   #: IPAM: no free address left in a range set
DUPLICATE_ALLOCATION = 111  #: IPAM: the attachment already holds a lease
LEASE_MISMATCH = 112    #: IPAM CHECK: the lease differs from prevResult


class CniError(Exception):
    """A failure to report to the runtime as a CNI error result."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_dict(self, cni_version: str) -> dict[str, Any]:
        """The spec's error object for ``cni_version``."""
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return f"{self.msg}: {self.details}" if self.details else self.msg

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> CniError:
        """Rebuild an error printed by another plugin (a delegate)."""
        try:
            code = int(obj.get("code", INTERNAL))
        except (TypeError, ValueError):
            code = INTERNAL
        return cls(code, str(obj.get("msg", "plugin failed")), str(obj.get("details", "") or ""))


def env_error(msg: str) -> CniError:
    """Code 4: an environment variable is missing or invalid (``msg`` names it)."""
    return CniError(INVALID_ENV, msg)


def config_error(msg: str, details: str = "") -> CniError:
    """Code 7: the network configuration is invalid."""
    return CniError(INVALID_CONFIG, msg, details)


class ErrorList(Exception):
    """Errors collected while tearing down (DEL carries on, then reports all)."""

    def __init__(self) -> None:
        super().__init__("teardown errors")
        self.errors: list[Exception] = []

    def collect(self, err: Exception) -> None:
        self.errors.append(err)

    def raise_if_any(self, code: int = INTERNAL) -> None:
        """Raise one :class:`CniError` listing every collected error, if there were any.

        Raises:
            CniError: with the first error's code when it was a CniError, else ``code``.
        """
        if not self.errors:
            return
        first = self.errors[0]
        if len(self.errors) == 1 and isinstance(first, CniError):
            raise first
        code = first.code if isinstance(first, CniError) else code
        raise CniError(code, "; ".join(str(e) for e in self.errors))
