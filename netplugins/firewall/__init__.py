"""Per-network firewall rules (isolation, internal networks, masquerade) and published ports.

Import the cheap parts from here; the drivers load their backends lazily::

    from netplugins.firewall import NetworkPolicy, get_driver, teardown_network_everywhere

The names are resolved on first use (PEP 562): importing a submodule such as
``netplugins.firewall.errors`` must not pull in the planners and drivers, because every
plugin call is a fresh process and portmap's no-op path must stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .driver import FirewallDriver, detect_driver_name, get_driver, teardown_network_everywhere
    from .errors import FirewallError
    from .plan import NetworkPolicy, owner_tag, parse_owner

#: exported name -> the submodule defining it
_EXPORTS = {
    "FirewallDriver": "driver",
    "detect_driver_name": "driver",
    "get_driver": "driver",
    "teardown_network_everywhere": "driver",
    "FirewallError": "errors",
    "NetworkPolicy": "plan",
    "owner_tag": "plan",
    "parse_owner": "plan",
}

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
