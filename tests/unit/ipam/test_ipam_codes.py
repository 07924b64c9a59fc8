"""ipam's errors carry the CNI codes they map to without importing the CNI skeleton (it is
the lower layer): the numbers must stay those of netplugins.cni.errors."""

from ipam import errors as ipam_errors
from netplugins.cni import errors as cni_errors


def test_ipam_codes_are_the_cni_codes() -> None:
    for name in ("IO_FAILURE", "INVALID_CONFIG", "TRY_AGAIN_LATER", "NOT_AVAILABLE",
                 "ADDRESS_CONFLICT", "RANGE_EXHAUSTED", "DUPLICATE_ALLOCATION", "LEASE_MISMATCH"):
        assert getattr(ipam_errors, name) == getattr(cni_errors, name), name
