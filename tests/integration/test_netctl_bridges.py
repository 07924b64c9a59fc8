"""End-to-end (issue 13): netctl removes only the bridges it created.

A bridge the plugin creates carries the alias ``netctl net=<network>``; ``netctl rm`` and
``prune`` delete such a bridge, while an adopted one (``-o com.docker.network.bridge.name``
naming a bridge the host had) keeps its other links and loses only netctl's addresses
and rules, and the user is told. ``netctl gc`` deletes marked bridges of vanished
networks only. Everything happens in a throwaway host namespace.
"""

from __future__ import annotations

import json

import pytest
from netctlutil import Netctl, netctl_fixture  # noqa: F401 - the netctl fixture

pytestmark = pytest.mark.netns

SUBNET = "172.22.41.0/24"
GATEWAY = "172.22.41.1"


def links(n: Netctl) -> dict[str, dict[str, object]]:
    return {link["ifname"]: link for link in json.loads(n.host.run(["ip", "-j", "-d", "addr", "show"]).stdout)}


def test_adopted_bridge_survives_rm(netctl: Netctl) -> None:
    host = netctl.host
    host.run(["ip", "link", "add", "br0", "type", "bridge"])
    host.run(["ip", "link", "add", "hostport0", "type", "veth", "peer", "name", "hostport1"])
    host.run(["ip", "link", "set", "hostport0", "master", "br0"])
    # the host's own address (IPv6: the plugin refuses a second IPv4 one without forceAddress)
    host.run(["ip", "addr", "add", "fd00:99::1/64", "dev", "br0", "nodad"])
    proc = netctl("create", "--subnet", SUBNET, "--gateway", GATEWAY,
                  "-o", "com.docker.network.bridge.name=br0", "adopt")
    assert "bridge br0 exists" in proc.stderr and "keep it" in proc.stderr
    netctl.run_d("c1", "--network", "adopt")
    br = links(netctl)["br0"]
    assert f"{GATEWAY}" in [a["local"] for a in br["addr_info"]]
    assert "ifalias" not in br  # not marked: netctl did not create it
    netctl("container", "rm", "-f", "c1")
    proc = netctl("rm", "adopt")
    assert "kept bridge br0" in proc.stderr and f"{GATEWAY}/24" in proc.stderr
    now = links(netctl)
    assert "br0" in now, "the adopted bridge must survive"
    kept = [a["local"] for a in now["br0"]["addr_info"] if a.get("scope") == "global"]
    assert kept == ["fd00:99::1"]
    assert now["hostport0"]["master"] == "br0"  # its other links stay
    # and netctl's rules are gone
    assert "br0" not in host.run(["nft", "list", "ruleset"]).stdout


def test_created_bridge_is_marked_and_removed(netctl: Netctl) -> None:
    netctl("create", "--subnet", SUBNET, "--gateway", GATEWAY, "own")
    netctl.run_d("c1", "--network", "own")
    bridge = netctl.inspect("own")["Options"]["com.docker.network.bridge.name"]
    assert links(netctl)[bridge].get("ifalias") == "netctl net=own"
    netctl("container", "rm", "-f", "c1")
    proc = netctl("prune", "-f")
    assert "kept" not in proc.stderr
    assert bridge not in links(netctl)


def test_gc_removes_only_marked_orphans(netctl: Netctl) -> None:
    host = netctl.host
    host.run(["ip", "link", "add", "br-foreign", "type", "bridge"])
    host.run(["ip", "link", "add", "br-gone", "type", "bridge"])
    host.run(["ip", "link", "set", "br-gone", "alias", "netctl net=gone"])
    host.run(["ip", "link", "add", "br-busy", "type", "bridge"])
    host.run(["ip", "link", "set", "br-busy", "alias", "netctl net=elsewhere"])
    host.run(["ip", "link", "add", "busyport", "type", "veth", "peer", "name", "busyport1"])
    host.run(["ip", "link", "set", "busyport", "master", "br-busy"])
    out = netctl("gc").stdout
    assert "removed bridge br-gone" in out
    now = links(netctl)
    assert "br-gone" not in now
    assert "br-foreign" in now and "br-busy" in now
