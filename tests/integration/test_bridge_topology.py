"""The bridge plugin end to end: several networks in a throwaway host, real traffic.

Per firewall driver: two isolated masquerading networks of two containers each, an internal
network, a network with icc off, and an "outside" namespace behind the host's uplink
(host 192.0.2.1/24, outside 192.0.2.2/24). Then concurrency: 20 ADDs and 20 DELs at once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cniutil import plugin_dir
from nsutil import Netns
from test_bridge_helpers import (
    DRIVER_MODES,
    BridgeLab,
    add_outside,
    blocked,
    link_names,
    make_lab,
    our_rules,
    ping,
    plugin_mode,
    serve_peer_address,
    tcp_ask,
)

pytestmark = pytest.mark.netns


def ip_of(result: dict) -> str:
    return str(result["ips"][0]["address"].split("/")[0])


@pytest.mark.parametrize("driver,mode", DRIVER_MODES)
def test_networks_isolation_masquerade_internal_icc(driver: str, mode: str, host_ns: Netns,
                                                    make_ns: Callable[..., Netns], tmp_path: Path) -> None:
    with plugin_mode(mode, host_ns, tmp_path) as env:
        _networks(driver, make_lab(host_ns, tmp_path, env), host_ns, make_ns)


def _networks(driver: str, lab: BridgeLab, host_ns: Netns, make_ns: Callable[..., Netns]) -> None:
    outside = add_outside(host_ns, make_ns)
    serve_peer_address(outside, 7777)
    nets = {
        "n1": lab.conf("tn1", "10.61.0.0/24", driver=driver, isDefaultGateway=True, ipMasq=True),
        "n2": lab.conf("tn2", "10.62.0.0/24", driver=driver, isDefaultGateway=True, ipMasq=True),
        "int": lab.conf("tint", "10.63.0.0/24", driver=driver, isDefaultGateway=True, internal=True,
                        ipMasq=True),
        "icc": lab.conf("ticc", "10.64.0.0/24", driver=driver, isDefaultGateway=True, icc=False,
                        ipMasq=True),
    }
    members = {"n1": ["a", "b"], "n2": ["a", "b"], "int": ["a"], "icc": ["a", "b"]}
    ctr: dict[str, Netns] = {}
    ip: dict[str, str] = {}
    for net, names in members.items():
        for name in names:
            key = f"{net}{name}"
            ctr[key] = make_ns()
            ip[key] = ip_of(lab.add(nets[net], ctr[key], key))

    # the default route goes via the network's gateway
    assert "default via 10.61.0.1 dev eth0" in ctr["n1a"].run(["ip", "route"]).stdout
    # same network: bridged
    assert ping(ctr["n1a"], ip["n1b"]) and ping(ctr["n2b"], ip["n2a"])
    # across networks: dropped, in both directions
    assert blocked(ctr["n1a"], ip["n2a"])
    assert blocked(ctr["n2a"], ip["n1a"])
    # to the outside, masqueraded behind the host's uplink address
    assert tcp_ask(ctr["n1a"], "192.0.2.2", 7777) == "192.0.2.1"
    assert tcp_ask(ctr["n2b"], "192.0.2.2", 7777) == "192.0.2.1"
    # an internal network reaches its gateway and nothing beyond
    assert ping(ctr["inta"], "10.63.0.1")
    assert blocked(ctr["inta"], "192.0.2.2")
    assert tcp_ask(ctr["inta"], "192.0.2.2", 7777) == ""
    assert blocked(ctr["inta"], ip["n1a"])
    assert blocked(ctr["n1a"], ip["inta"])
    # icc off: the neighbours cannot talk, the gateway and the outside stay reachable
    assert blocked(ctr["icca"], ip["iccb"])
    assert blocked(ctr["iccb"], ip["icca"])
    assert ping(ctr["icca"], "10.64.0.1")
    assert tcp_ask(ctr["iccb"], "192.0.2.2", 7777) == "192.0.2.1"
    # the rules are where the driver puts them
    text = "\n".join(our_rules(host_ns))
    assert ("table inet netctl" in text) == (driver == "nftables")
    assert ("NETCTL-FORWARD" in text) == (driver == "iptables")

    for net, names in members.items():
        for name in names:
            lab.delete(nets[net], ctr[f"{net}{name}"], f"{net}{name}")
    bridges = {f"br-{n}" for n in ("tn1", "tn2", "tint", "ticc")}
    for conf in nets.values():
        lab.assert_clean(conf["name"], expect_links={"lo", "uplink"} | bridges)
    assert our_rules(host_ns) == []


def _at_once(host: Netns, conf: dict, ctrs: list[Netns], command: str, env: dict[str, str]) -> list[str]:
    """Run one plugin process per container, all started before any is waited for."""
    import json
    import os

    exe = os.path.join(plugin_dir(), "bridge")
    base = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
            "CNI_PATH": plugin_dir(), "CNI_IFNAME": "eth0"} | env
    procs = [subprocess.Popen(host.cmd([exe]), env=base | {"CNI_CONTAINERID": f"par{i}", "CNI_NETNS": c.path},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i, c in enumerate(ctrs)]
    outs = [p.communicate(json.dumps(conf).encode(), timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, f"{command} failed: {out.decode()} {err.decode()}"
    return [o.decode() for o, _ in outs]


# through the daemon: 20 separate plugin processes (shims) and 20 forked workers race for
# the same locks; in-process runs would only add 20 interpreter start-ups to wait for
@pytest.mark.parametrize("driver,mode", [("nftables", "daemon"), ("iptables", "daemon")])
def test_concurrent_adds_and_dels(driver: str, mode: str, host_ns: Netns, make_ns: Callable[..., Netns],
                                  tmp_path: Path) -> None:
    with plugin_mode(mode, host_ns, tmp_path) as env:
        _concurrent(driver, make_lab(host_ns, tmp_path), host_ns, make_ns, env)


def _concurrent(driver: str, lab: BridgeLab, host_ns: Netns, make_ns: Callable[..., Netns],
                plugin_env: dict[str, str]) -> None:
    import json

    conf = lab.conf("tpar", "10.70.0.0/24", driver=driver, ipMasq=True)
    ctrs = [make_ns() for _ in range(20)]
    outs = _at_once(host_ns, conf, ctrs, "ADD", plugin_env)
    addrs = [json.loads(o)["ips"][0]["address"] for o in outs]
    assert len(set(addrs)) == 20, addrs
    assert len(lab.leases("tpar")) == 20 and len(lab.records("tpar")) == 20
    assert len([n for n in link_names(host_ns) if n.startswith("veth")]) == 20
    assert our_rules(host_ns)
    # every container reaches the gateway: each bridge port and address is in place
    assert all(ping(c, "10.70.0.1") for c in ctrs)
    _at_once(host_ns, conf, ctrs, "DEL", plugin_env)
    lab.assert_clean("tpar", expect_links={"lo", "br-tpar"})
