"""Per-network firewall rules (isolation, internal networks, masquerade).

Import the cheap parts from here; the drivers load their backends lazily::

    from netplugins.firewall import NetworkPolicy, get_driver, teardown_network_everywhere
"""

from __future__ import annotations

from .driver import FirewallDriver, detect_driver_name, get_driver, teardown_network_everywhere
from .errors import FirewallError
from .plan import NetworkPolicy, owner_tag, parse_owner

__all__ = [
    "FirewallDriver",
    "FirewallError",
    "NetworkPolicy",
    "detect_driver_name",
    "get_driver",
    "owner_tag",
    "parse_owner",
    "teardown_network_everywhere",
]
