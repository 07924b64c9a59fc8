"""IPAM failures, each carrying the CNI error code it maps to.

The library is shared by the runtime and the plugins, so it does not import the CNI
skeleton: an :class:`IpamError` only carries ``code``; ``netplugins.ipam.hostlocal`` turns it into a
``CniError`` and ``netctl`` prints ``str(err)``.

Code mapping (README "IPAM errors"):

====  ==========================================================================
code  when
====  ==========================================================================
5     the lease database cannot be opened, read or written (corrupt, permissions)
7     invalid configuration or request (ranges, subnets, requested addresses)
11    the database stayed locked past the busy timeout, or an ADD for the same
      attachment is still running: try again
50    STATUS only: a range set is exhausted or the database is unusable
105   a requested address is held by another attachment (``ADDRESS_CONFLICT``)
110   a range set has no free address left
111   the attachment already holds a lease ("duplicate allocation")
112   CHECK: the lease is missing or differs from prevResult
====  ==========================================================================
"""

from __future__ import annotations

# The CNI codes each failure maps to. Literal on purpose: ipam is below netplugins and
# imports nothing from it (tests/unit/test_layers.py); tests/unit/ipam/test_ipam_codes.py
# keeps these equal to netplugins.cni.errors.
IO_FAILURE = 5
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
ADDRESS_CONFLICT = 105
RANGE_EXHAUSTED = 110
DUPLICATE_ALLOCATION = 111
LEASE_MISMATCH = 112


class IpamError(Exception):
    """Base class: ``msg`` is the one-line message, ``details`` optional context."""

    code = 999

    def __init__(self, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def __str__(self) -> str:
        return f"{self.msg}: {self.details}" if self.details else self.msg


class ConfigError(IpamError):
    """The IPAM configuration or a requested address is invalid (code 7)."""

    code = INVALID_CONFIG


class AddressInUse(IpamError):
    """A requested address is leased to another attachment (code 105)."""

    code = ADDRESS_CONFLICT


class RangeExhausted(IpamError):
    """No free address is left in a range set (code 110)."""

    code = RANGE_EXHAUSTED


class DuplicateAllocation(IpamError):
    """The attachment already holds a lease in this range set (code 111)."""

    code = DUPLICATE_ALLOCATION


class LeaseMismatch(IpamError):
    """CHECK found no lease, or one that differs from prevResult (code 112)."""

    code = LEASE_MISMATCH


class StoreError(IpamError):
    """The lease database cannot be used: unreadable, corrupt, not writable (code 5)."""

    code = IO_FAILURE


class StoreBusy(IpamError):
    """The database stayed locked longer than the busy timeout (code 11)."""

    code = TRY_AGAIN_LATER


class AddInProgress(IpamError):
    """Another ADD for the same attachment is still running (code 11)."""

    code = TRY_AGAIN_LATER


class SubnetOverlap(IpamError):
    """A subnet overlaps another network or a host address/route (code 7)."""

    code = INVALID_CONFIG


class PoolExhausted(IpamError):
    """Every subnet of the default pools is taken or overlaps something (code 110)."""

    code = RANGE_EXHAUSTED


class ReadError(IpamError):
    """A file the config points at (resolvConf) cannot be read (code 5)."""

    code = IO_FAILURE
