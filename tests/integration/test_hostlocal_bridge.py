"""The reference ``bridge`` plugin delegating IPAM to our ``host-local``.

Everything happens in throwaway namespaces: the plugins run inside ``host_ns`` (which plays
the host: bridge and host-side veth live there) and configure ``ctr_ns``. CNI_PATH holds
only a temporary directory with our host-local and a symlink to the reference bridge, so
the bridge can only find *our* IPAM plugin.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cniutil import REFERENCE_DIR, plugin_dir, run_plugin
from nsutil import Netns

from ipam.sqlstore import SqliteStore

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not os.path.exists(f"{REFERENCE_DIR}/bridge"), reason="reference bridge not installed"),
]


@pytest.fixture
def cni_path(tmp_path: Path) -> str:
    d = tmp_path / "cni-bin"
    d.mkdir()
    os.symlink(os.path.join(plugin_dir(), "host-local"), d / "host-local")
    os.symlink(f"{REFERENCE_DIR}/bridge", d / "bridge")
    return str(d)


def conflist(tmp_path: Path, version: str) -> dict[str, Any]:
    return {
        "cniVersion": version, "name": "brnet", "type": "bridge", "bridge": "nctbr0",
        "isGateway": True, "ipMasq": False,
        "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                 "ranges": [[{"subnet": "10.50.0.0/24"}], [{"subnet": "fd50::/64"}]],
                 "routes": [{"dst": "0.0.0.0/0"}]},
    }


def addresses(ns: Netns, ifname: str) -> set[str]:
    out = json.loads(ns.run(["ip", "-j", "addr", "show", "dev", ifname]).stdout)
    return {f"{a['local']}/{a['prefixlen']}" for a in out[0]["addr_info"] if a.get("scope") == "global"}


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0"])
def test_reference_bridge_with_our_host_local(
        version: str, host_ns: Netns, ctr_ns: Netns, make_ns: Callable[[], Netns], tmp_path: Path,
        cni_path: str, plugin_env: dict[str, str]) -> None:
    conf = conflist(tmp_path, version)
    bridge = os.path.join(cni_path, "bridge")

    def call(command: str, c: dict[str, Any], cid: str = "ctr1", netns: str | None = None) -> Any:
        return run_plugin(host_ns, "bridge", command, c, container_id=cid,
                          netns=ctr_ns.path if netns is None else netns, path=cni_path,
                          env=plugin_env, exe=bridge)

    res = call("ADD", conf).ok().json
    ips = [ip["address"] for ip in res["ips"]]
    assert ips == ["10.50.0.2/24", "fd50::2/64"]
    assert all(ip["interface"] == 2 for ip in res["ips"])
    assert addresses(ctr_ns, "eth0") == set(ips)
    routes = ctr_ns.run(["ip", "route", "show", "default"]).stdout
    assert "via 10.50.0.1" in routes
    store = SqliteStore(str(tmp_path / "ipam" / "brnet.db"))
    assert {str(le.address) for le in store.leases()} == {"10.50.0.2", "fd50::2"}
    # CHECK: the bridge checks its interfaces and delegates CHECK to our host-local
    call("CHECK", dict(conf, prevResult=res)).ok()
    # a second container on the same bridge gets the next addresses
    second = make_ns()
    res2 = call("ADD", conf, cid="ctr2", netns=second.path).ok().json
    assert [ip["address"] for ip in res2["ips"]] == ["10.50.0.3/24", "fd50::3/64"]
    assert second.run(["ping", "-c1", "-W2", "10.50.0.2"]).returncode == 0
    # DEL releases the lease through our host-local; twice is fine; no netns is fine
    call("DEL", conf).ok()
    assert {le.container_id for le in store.leases()} == {"ctr2"}
    call("DEL", conf).ok()
    call("DEL", conf, netns="").ok()
    call("DEL", conf, cid="ctr2", netns="").ok()
    assert store.leases() == []
    store.close()


def test_check_fails_when_our_lease_is_gone(
        host_ns: Netns, ctr_ns: Netns, tmp_path: Path, cni_path: str) -> None:
    conf = conflist(tmp_path, "1.0.0")
    bridge = os.path.join(cni_path, "bridge")
    res = run_plugin(host_ns, "bridge", "ADD", conf, netns=ctr_ns.path, path=cni_path, exe=bridge).ok().json
    # GC by the runtime with no valid attachment: the lease goes, the interface stays
    gc = dict(conf, cniVersion="1.1.0", **{"cni.dev/valid-attachments": []})
    run_plugin(host_ns, "host-local", "GC", gc, path=cni_path).ok()
    chk = run_plugin(host_ns, "bridge", "CHECK", dict(conf, prevResult=res), netns=ctr_ns.path,
                     path=cni_path, exe=bridge)
    assert chk.rc != 0
    assert "failed to find address" in chk.stdout
    run_plugin(host_ns, "bridge", "DEL", conf, netns=ctr_ns.path, path=cni_path, exe=bridge).ok()
