"""Shared helpers of the netctl-dns integration tests (this module holds no tests).

A :class:`Chain` runs a main plugin (ours or the reference ``bridge`` from
/usr/lib/cni) followed by ``netctl-dns`` as a runtime runs a conflist: ADD in order with
each result as the next ``prevResult``, DEL backwards with the final result, and the DEL
of what already ran when a later ADD fails.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cniutil import REFERENCE_DIR, PluginRun, plugin_dir, run_plugin
from nsutil import Netns

#: an upstream in TEST-NET without a route: dnsd never forwards anything off the namespace
NO_UPSTREAM = "192.0.2.53"


def dig(ns: Netns, server: str, name: str) -> list[str]:
    """Addresses ``server`` answers for ``name`` A, asked from inside ``ns``."""
    res = ns.run(["dig", f"@{server}", name, "A", "+short", "+time=1", "+tries=2"], check=False)
    return [line for line in res.stdout.split() if line and line[0].isdigit()]


@dataclass
class Chain:
    """``main`` then netctl-dns, run inside ``host`` with every directory under ``tmp``."""

    host: Netns
    tmp: Path
    #: "ours" (our bridge, our host-local) or "reference" (/usr/lib/cni bridge + host-local)
    flavour: str = "ours"
    env: dict[str, str] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    #: the reference's main plugin ("bridge", "ptp", "macvlan" ...)
    main_type: str = "bridge"

    @property
    def dns_dir(self) -> Path:
        return self.tmp / "dns"

    def main_conf(self, name: str, subnet: str, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": name, "type": "bridge",
                                "bridge": f"br-{name}"[:15], "isGateway": True, "isDefaultGateway": True,
                                "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                                         "dataDir": str(self.tmp / "ipam")}}
        if self.flavour == "ours":
            conf |= {"stateDir": str(self.tmp / "state"), "firewallDriver": "nftables"}
        return conf | extra

    def dns_conf(self, name: str, **extra: Any) -> dict[str, Any]:
        return {"cniVersion": "1.0.0", "name": name, "type": "netctl-dns", "dir": str(self.dns_dir),
                "upstreams": [NO_UPSTREAM], "capabilities": {"aliases": True}} | extra

    def _main(self, command: str, conf: dict[str, Any], ctr: Netns | None, cid: str, **kw: Any) -> PluginRun:
        if self.flavour == "reference":
            # only the reference directory: its bridge must delegate to its own host-local
            return run_plugin(self.host, self.main_type, command, conf, container_id=cid,
                              netns=ctr.path if ctr else "", env=self.env, path=REFERENCE_DIR,
                              exe=os.path.join(REFERENCE_DIR, self.main_type), **kw)
        return run_plugin(self.host, "bridge", command, conf, container_id=cid,
                          netns=ctr.path if ctr else "", env=self.env, **kw)

    def dns(self, command: str, conf: dict[str, Any], ctr: Netns | None, cid: str, **kw: Any) -> PluginRun:
        plugin_dir()
        return run_plugin(self.host, "netctl-dns", command, conf, container_id=cid,
                          netns=ctr.path if ctr else "", env=self.env, **kw)

    def add(self, main: dict[str, Any], dns: dict[str, Any], ctr: Netns, cid: str,
            **kw: Any) -> dict[str, Any]:
        """ADD of the chain that must succeed; the final result."""
        first = self._main("ADD", main, ctr, cid, **kw).ok().json
        res = self.dns("ADD", dict(dns, prevResult=first), ctr, cid, **kw)
        if res.rc != 0:
            self._main("DEL", dict(main, prevResult=first), ctr, cid, **kw)  # as a runtime does
        final = res.ok().json
        self.results[cid] = final
        return dict(final)

    def delete(self, main: dict[str, Any], dns: dict[str, Any], ctr: Netns | None, cid: str,
               **kw: Any) -> None:
        """DEL of the chain, backwards, with the cached final result (if any)."""
        prev = self.results.pop(cid, None)
        extra = {"prevResult": prev} if prev else {}
        self.dns("DEL", dict(dns, **extra), ctr, cid, **kw).ok()
        self._main("DEL", dict(main, **extra), ctr, cid, **kw).ok()

    def check(self, dns: dict[str, Any], ctr: Netns, cid: str, **kw: Any) -> PluginRun:
        return self.dns("CHECK", dict(dns, prevResult=self.results[cid]), ctr, cid, **kw)

    def gc(self, dns: dict[str, Any], valid: list[tuple[str, str]]) -> PluginRun:
        conf = dict(dns, cniVersion="1.1.0", **{"cni.dev/valid-attachments": [
            {"containerID": c, "ifname": i} for c, i in valid]})
        return run_plugin(self.host, "netctl-dns", "GC", conf, env=self.env)

    # --- what is left in dnsd's directory -------------------------------------------------

    def registered(self) -> list[str]:
        """The network and entry files in dnsd's directory (relative names)."""
        out = []
        for sub in ("networks", "entries"):
            top = self.dns_dir / sub
            out += [str(p.relative_to(self.dns_dir)) for p in top.rglob("*") if p.is_file()] if top.exists() else []
        return sorted(out)

    def entry(self, network: str, cid: str, ifname: str = "eth0") -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dns_dir / "entries" / network / f"{cid}-{ifname}.json").read_text())
        return data

    def dnsd_pid(self) -> int:
        return int((self.dns_dir / "dnsd.pid").read_text())
