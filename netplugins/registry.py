"""Which module implements each CNI plugin type we ship (stdlib only: imported by shims)."""

from __future__ import annotations

#: CNI ``type`` → module exposing ``FUNCS`` (a PluginFuncs) and ``main()``.
PLUGINS: dict[str, str] = {
    "loopback": "netplugins.main.loopback",
    "host": "netplugins.main.host",
    "container": "netplugins.main.container",
    "bridge": "netplugins.main.bridge",
    "portmap": "netplugins.meta.portmap",
    "host-local": "netplugins.ipam.hostlocal",
    "overlay": "netplugins.main.overlay",
    "netctl-dns": "netplugins.meta.dnsreg",
}

#: Our plugins that allocate addresses: the only ones of ours an ``ipam.type`` may name.
IPAM_PLUGINS = frozenset({"host-local"})

#: Plugin types that are not IPAM plugins: ours and the reference's main and meta plugins.
#: ``ipam.type`` naming one is a config error (code 7): ``"ipam": {"type": "bridge"}`` made
#: the bridge delegate to itself until the stack ran out (code 100).
NOT_IPAM = frozenset(set(PLUGINS) - IPAM_PLUGINS) | frozenset({
    "ptp", "macvlan", "ipvlan", "vlan", "host-device", "tap", "dummy", "vrf", "bandwidth",
    "firewall", "sbr", "tuning", "dnsname"})

#: First lines of every executable we generate; invoke.py recognises our own plugins by it.
SHIM_MARKER = "# netctl-cni-shim:"


def available() -> dict[str, str]:
    """The plugin types whose module is present in this installation."""
    # lazy: the shim imports this module; only the agent lists plugins
    import importlib.util

    out = {}
    for ptype, module in PLUGINS.items():
        try:
            if importlib.util.find_spec(module) is not None:
                out[ptype] = module
        except ModuleNotFoundError:
            continue
    return out


def load_funcs(ptype: str):  # type: ignore[no-untyped-def]
    """Import the module of ``ptype`` and return its PluginFuncs.

    Raises:
        KeyError: for a type we do not ship.
        ImportError: if the module is missing.
    """
    # lazy: the shim's fast path (through the agent) loads no plugin
    import importlib

    return importlib.import_module(PLUGINS[ptype]).FUNCS


def is_our_plugin(path: str) -> str | None:
    """The CNI type when ``path`` is one of our executables, else None (a delegating plugin
    then runs it in its own process: ``cni/invoke.py``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    for line in head.split(b"\n")[:3]:
        if line.startswith(SHIM_MARKER.encode()):
            return line[len(SHIM_MARKER):].strip().decode() or None
    return None
