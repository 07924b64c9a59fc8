"""The bridge plugin against the CNI contract: every version, DEL semantics, CHECK, GC,
STATUS, and the per-attachment options (MTU, MAC, hairpin, icc, promisc, L2 only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cniutil import ALL_VERSIONS
from nsutil import Netns
from test_bridge_helpers import (
    DRIVERS,
    BridgeLab,
    addrs_of,
    lab_fixture,  # noqa: F401 - the lab fixture
    link_info,
    link_names,
    make_lab,
    our_rules,
    ping,
    shared_daemon,  # noqa: F401 - a fixture
)

from netplugins.main.bridge_plan import host_veth_name

pytestmark = pytest.mark.netns



@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_add_check_del_every_version(version: str, host_ns: Netns, ctr_ns: Netns, tmp_path: Path,
                                     plugin_env: dict[str, str]) -> None:
    lab = make_lab(host_ns, tmp_path, plugin_env)
    conf = lab.conf("vnet", "10.71.0.0/24", version=version, isDefaultGateway=True, ipMasq=True,
                    mtu=1400)
    res = lab.add(conf, ctr_ns, "ctr1")
    assert res["cniVersion"] == version
    veth = host_veth_name("ctr1", "eth0")
    assert [i["name"] for i in res["interfaces"]] == ["br-vnet", veth, "eth0"]
    assert res["interfaces"][2]["sandbox"] == ctr_ns.path
    assert ("mtu" in res["interfaces"][2]) == (version == "1.1.0")
    [ip] = res["ips"]
    assert ip["interface"] == 2 and ip["gateway"] == "10.71.0.1"
    assert ("version" in ip) == (version < "1.0.0")
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.71.0.1"}]
    # the result describes the kernel state
    for iface, ns in ((res["interfaces"][0], host_ns), (res["interfaces"][1], host_ns),
                      (res["interfaces"][2], ctr_ns)):
        info = link_info(ns, iface["name"])
        assert info is not None and info["address"] == iface["mac"]
    assert addrs_of(ctr_ns, "eth0") == {ip["address"]}
    assert addrs_of(host_ns, "br-vnet") == {"10.71.0.1/24"}
    # gratuitous ARP on link up (a reused address gets a new MAC), no RAs on the host side
    assert ctr_ns.run(["sysctl", "-n", "net.ipv4.conf.eth0.arp_notify"]).stdout.strip() == "1"
    assert host_ns.run(["sysctl", "-n", f"net.ipv6.conf.{veth}.accept_ra"]).stdout.strip() == "0"
    assert host_ns.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    assert ping(ctr_ns, "10.71.0.1")
    if version >= "0.4.0":
        chk = lab.check(conf, res, ctr_ns, "ctr1").ok()
        assert chk.stdout == ""
    else:
        # the spec has no CHECK before 0.4.0
        chk = lab.check(conf, res, ctr_ns, "ctr1")
        assert chk.rc != 0 and chk.json["code"] == 1
    lab.delete(conf, ctr_ns, "ctr1")
    assert link_names(ctr_ns) == {"lo"}
    lab.assert_clean("vnet", expect_links={"lo", "br-vnet"})
    lab.delete(conf, ctr_ns, "ctr1")  # DEL twice: success, nothing to do


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("how", ["path-gone", "netns-empty"])
def test_del_with_the_namespace_gone(how: str, driver: str, lab: BridgeLab,
                                     make_ns: Callable[..., Netns]) -> None:
    conf = lab.conf("gone", "10.72.0.0/24", driver=driver, ipMasq=True)
    ctr = make_ns()
    lab.add(conf, ctr, "ctr1")
    assert lab.leases("gone") and lab.records("gone") and our_rules(lab.host)
    path = ctr.path
    ctr.delete()
    lab.delete(conf, None, "ctr1", netns=path if how == "path-gone" else "")
    lab.assert_clean("gone", expect_links={"lo", "br-gone"})
    lab.delete(conf, None, "ctr1", netns="")


def _break_rules(host: Netns, driver: str) -> None:
    if driver == "nftables":
        host.run(["nft", "flush", "chain", "inet", "netctl", "forward"])
    else:
        host.run(["iptables-legacy", "-F", "NETCTL-FORWARD"])


MUTATIONS: dict[str, Callable[[Netns, Netns, str], None]] = {
    "address removed": lambda host, ctr, drv: ctr.run(["ip", "addr", "flush", "dev", "eth0", "scope", "global"]),
    "interface down": lambda host, ctr, drv: ctr.run(["ip", "link", "set", "eth0", "down"]),
    "host veth removed": lambda host, ctr, drv: host.run(["ip", "link", "del", host_veth_name("ctr1", "eth0")]),
    "host veth off the bridge": lambda host, ctr, drv: host.run(
        ["ip", "link", "set", host_veth_name("ctr1", "eth0"), "nomaster"]),
    "route removed": lambda host, ctr, drv: ctr.run(["ip", "route", "del", "default"]),
    "bridge MAC changed": lambda host, ctr, drv: host.run(["ip", "link", "set", "br-chk", "address", "02:00:00:00:99:99"]),
    "ip_forward off": lambda host, ctr, drv: host.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]),
    "rule removed": lambda host, ctr, drv: _break_rules(host, drv),
}
EXPECT = {
    "address removed": "address 10.73.0.2/24 is missing",
    "interface down": "eth0 is down",
    "host veth removed": "is missing",
    "host veth off the bridge": "is not a port of br-chk",
    "route removed": "route to 0.0.0.0/0 is missing",
    "bridge MAC changed": "br-chk has MAC 02:00:00:00:99:99",
    "ip_forward off": "ip_forward is off",
    "rule removed": "forward",
}
CHECK_CASES = [pytest.param(m, "nftables", id=m) for m in MUTATIONS if m != "rule removed"] + [
    pytest.param("rule removed", d, id=f"rule removed-{d}") for d in DRIVERS]


@pytest.mark.parametrize("mutation,driver", CHECK_CASES)
def test_check_detects(mutation: str, driver: str, lab: BridgeLab, ctr_ns: Netns) -> None:
    conf = lab.conf("chk", "10.73.0.0/24", driver=driver, isDefaultGateway=True, ipMasq=True)
    res = lab.add(conf, ctr_ns, "ctr1")
    lab.check(conf, res, ctr_ns, "ctr1").ok()
    MUTATIONS[mutation](lab.host, ctr_ns, driver)
    bad = lab.check(conf, res, ctr_ns, "ctr1")
    assert bad.rc != 0, mutation
    err = bad.json
    assert err["code"] != 0
    text = err["msg"] + " " + err.get("details", "")
    assert EXPECT[mutation].lower() in text.lower(), text
    lab.delete(conf, ctr_ns, "ctr1")
    lab.assert_clean("chk")


def test_check_without_record_or_lease(lab: BridgeLab, ctr_ns: Netns) -> None:
    conf = lab.conf("chk2", "10.74.0.0/24")
    res = lab.add(conf, ctr_ns, "ctr1")
    (lab.state_dir / "chk2" / "ctr1-eth0.json").unlink()
    bad = lab.check(conf, res, ctr_ns, "ctr1")
    assert bad.rc != 0 and "no attachment record" in bad.stdout
    lab.delete(conf, ctr_ns, "ctr1")


def test_check_needs_prev_result(lab: BridgeLab, ctr_ns: Netns) -> None:
    conf = lab.conf("chk3", "10.75.0.0/24")
    lab.add(conf, ctr_ns, "ctr1")
    bad = lab.run("CHECK", conf, ctr_ns, "ctr1")
    assert bad.rc != 0 and bad.json["code"] == 7 and "prevResult" in bad.json["msg"]
    lab.delete(conf, ctr_ns, "ctr1")


def test_gc_and_status(lab: BridgeLab, make_ns: Callable[..., Netns]) -> None:
    conf = lab.conf("gcnet", "10.76.0.0/24", version="1.1.0", ipMasq=True)
    keep, drop = make_ns(), make_ns()
    lab.add(conf, keep, "keep")
    lab.add(conf, drop, "drop")
    lab.run("STATUS", conf, None, "").ok()
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]})
    lab.run("GC", gc, None, "").ok()
    assert lab.records("gcnet") == ["keep-eth0.json"]
    assert [cid for _, cid, _ in lab.leases("gcnet")] == ["keep"]
    names = link_names(lab.host)
    assert host_veth_name("keep", "eth0") in names and host_veth_name("drop", "eth0") not in names
    assert our_rules(lab.host)
    # nothing valid any more: the network's rules go with its last attachment, and the
    # bridge the plugin made goes with the GC that finds the network unused
    lab.run("GC", dict(conf, **{"cni.dev/valid-attachments": []}), None, "").ok()
    lab.assert_clean("gcnet", expect_links={"lo"})


def _gc(lab: BridgeLab, conf: dict[str, object]) -> str:
    """GC with no valid attachment; what the plugin said on stderr."""
    return lab.run("GC", dict(conf, **{"cni.dev/valid-attachments": []}), None, "").ok().stderr


def test_gc_removes_its_own_idle_bridge_and_keeps_a_foreign_one(host_ns: Netns, tmp_path: Path,
                                                               make_ns: Callable[..., Netns],
                                                               plugin_env: dict[str, str]) -> None:
    lab = make_lab(host_ns, tmp_path, plugin_env)
    own = lab.conf("gcown", "10.78.0.0/24", version="1.1.0")
    # a bridge the host had, with a link and an address of its own: adopted by the network
    host_ns.run(["ip", "link", "add", "br-host", "type", "bridge"])
    host_ns.run(["ip", "link", "add", "hport0", "type", "veth", "peer", "name", "hport1"])
    host_ns.run(["ip", "link", "set", "hport0", "master", "br-host"])
    host_ns.run(["ip", "addr", "add", "fd00:99::1/64", "dev", "br-host", "nodad"])  # a second IPv4 one needs forceAddress
    adopted = lab.conf("gcadopt", "10.79.0.0/24", version="1.1.0", bridge="br-host")
    a, b = make_ns(), make_ns()
    lab.add(own, a, "ctr-a")
    lab.add(adopted, b, "ctr-b")
    assert link_info(host_ns, "br-gcown")["ifalias"] == "netctl net=gcown"  # type: ignore[index]
    # while the plugin's records say a container uses them, GC keeps both bridges
    lab.run("GC", dict(own, **{"cni.dev/valid-attachments": [{"containerID": "ctr-a", "ifname": "eth0"}]}),
            None, "").ok()
    assert {"br-gcown", "br-host"} <= link_names(host_ns)
    said = _gc(lab, own)
    assert "removed bridge br-gcown of network gcown: no attachment left" in said
    assert "br-gcown" not in link_names(host_ns)
    assert "br-host" in link_names(host_ns)  # not marked: only its network's GC touches it
    said = _gc(lab, adopted)
    assert ("kept bridge br-host: netctl did not create it (it has no 'netctl net=gcadopt' alias); "
            "removed only netctl's addresses (10.79.0.1/24)") in said
    assert addrs_of(host_ns, "br-host") == {"fd00:99::1/64"}
    assert link_info(host_ns, "hport0")["master"] == "br-host"  # type: ignore[index]
    lab.assert_clean("gcadopt")
    lab.assert_clean("gcown")
    assert _gc(lab, adopted) == ""  # nothing left to say


def test_gc_keeps_a_marked_bridge_with_ports_and_collects_orphans(lab: BridgeLab) -> None:
    host = lab.host
    for name, owner in (("br-orphan", "gone"), ("br-busy", "elsewhere")):
        host.run(["ip", "link", "add", name, "type", "bridge"])
        host.run(["ip", "link", "set", name, "alias", f"netctl net={owner}"])
    # a port the plugin did not record (another runtime's container, another stateDir)
    host.run(["ip", "link", "add", "busy0", "type", "veth", "peer", "name", "busy1"])
    host.run(["ip", "link", "set", "busy0", "master", "br-busy"])
    said = _gc(lab, lab.conf("gcany", "10.80.0.0/24", version="1.1.0"))
    assert "removed bridge br-orphan of network gone" in said
    names = link_names(host)
    assert "br-orphan" not in names and "br-busy" in names
    busy = lab.conf("elsewhere", "10.81.0.0/24", version="1.1.0", bridge="br-busy")
    assert "kept bridge br-busy of network elsewhere: 1 port(s)" in _gc(lab, busy)
    assert "br-busy" in link_names(host)


def test_options_mtu_mac_hairpin_promisc(lab: BridgeLab, make_ns: Callable[..., Netns]) -> None:
    a, b = make_ns(), make_ns()
    conf = lab.conf("opts", "10.77.0.0/24", mtu=1400, hairpinMode=True,
                    runtimeConfig={"mac": "02:42:00:00:00:0a"})
    res = lab.add(conf, a, "ctr1")
    assert res["interfaces"][2]["mac"] == "02:42:00:00:00:0a"
    assert link_info(a, "eth0")["address"] == "02:42:00:00:00:0a"  # type: ignore[index]
    host = link_info(lab.host, host_veth_name("ctr1", "eth0"))
    assert host is not None and host["mtu"] == 1400 and link_info(a, "eth0")["mtu"] == 1400  # type: ignore[index]
    assert link_info(lab.host, "br-opts")["mtu"] == 1400  # type: ignore[index]
    port = host["linkinfo"]["info_slave_data"]
    assert port["hairpin"] is True and port["isolated"] is False
    # MAC from CNI_ARGS; promiscuous bridge; icc off isolates the port
    conf2 = lab.conf("opts2", "10.78.0.0/24", promiscMode=True, icc=False)
    res2 = lab.add(conf2, b, "ctr2", cni_args="IgnoreUnknown=1;MAC=02:42:00:00:00:0b")
    assert res2["interfaces"][2]["mac"] == "02:42:00:00:00:0b"
    assert "PROMISC" in link_info(lab.host, "br-opts2")["flags"]  # type: ignore[index]
    port2 = link_info(lab.host, host_veth_name("ctr2", "eth0"))["linkinfo"]["info_slave_data"]  # type: ignore[index]
    assert port2["isolated"] is True and port2["hairpin"] is False
    lab.delete(conf, a, "ctr1")
    lab.delete(conf2, b, "ctr2")


def test_l2_only_and_no_gateway(lab: BridgeLab, make_ns: Callable[..., Netns]) -> None:
    a, b = make_ns(), make_ns()
    l2 = lab.conf("l2net", None)
    res = lab.add(l2, a, "ctr1")
    assert "ips" not in res and len(res["interfaces"]) == 3
    assert "UP" in link_info(a, "eth0")["flags"]  # type: ignore[index]
    assert addrs_of(a, "eth0") == set()
    assert our_rules(lab.host) == []  # no subnet, nothing to filter
    nogw = lab.conf("nogw", "10.79.0.0/24", isGateway=False)
    res = lab.add(nogw, b, "ctr2")
    assert res["ips"][0]["gateway"] == "10.79.0.1"  # host-local's gateway is reported ...
    assert addrs_of(lab.host, "br-nogw") == set()  # ... but not put on the bridge
    lab.delete(l2, a, "ctr1")
    lab.delete(nogw, b, "ctr2")
    assert lab.records("l2net") == [] and lab.records("nogw") == []


def test_two_interfaces_of_one_container(lab: BridgeLab, ctr_ns: Netns) -> None:
    n1 = lab.conf("multi1", "10.80.0.0/24", isDefaultGateway=True)
    n2 = lab.conf("multi2", "10.81.0.0/24", isDefaultGateway=True)
    lab.add(n1, ctr_ns, "ctr1", ifname="eth0")
    lab.add(n2, ctr_ns, "ctr1", ifname="eth1")
    routes = ctr_ns.run(["ip", "route"]).stdout
    # one default route: the first network's
    assert routes.count("default") == 1 and "default via 10.80.0.1 dev eth0" in routes
    lab.delete(n2, ctr_ns, "ctr1", ifname="eth1")
    assert link_names(ctr_ns) == {"lo", "eth0"}
    lab.delete(n1, ctr_ns, "ctr1", ifname="eth0")
    assert json.loads(ctr_ns.run(["ip", "-j", "link"]).stdout)[0]["ifname"] == "lo"


@pytest.mark.parametrize("driver", DRIVERS)
def test_dual_stack(driver: str, lab: BridgeLab, make_ns: Callable[..., Netns]) -> None:
    conf = lab.conf("dual", None, driver=driver, isDefaultGateway=True, ipMasq=True,
                    ipam={"type": "host-local", "dataDir": str(lab.ipam_dir),
                          "ranges": [[{"subnet": "10.82.0.0/24"}], [{"subnet": "fd00:82::/64"}]]})
    a, b = make_ns(), make_ns()
    res_a = lab.add(conf, a, "ctr1")
    res_b = lab.add(conf, b, "ctr2")
    assert [ip["address"].split("/")[1] for ip in res_a["ips"]] == ["24", "64"]
    assert {r["dst"] for r in res_a["routes"]} == {"0.0.0.0/0", "::/0"}
    assert addrs_of(lab.host, "br-dual") == {"10.82.0.1/24", "fd00:82::1/64"}
    v6_b = res_b["ips"][1]["address"].split("/")[0]
    assert ping(a, "fd00:82::1") and ping(a, v6_b)
    assert "default via fd00:82::1 dev eth0" in a.run(["ip", "-6", "route"]).stdout
    lab.check(conf, res_a, a, "ctr1").ok()
    text = "\n".join(our_rules(lab.host))
    assert "fd00:82::/64" in text
    lab.delete(conf, a, "ctr1")
    lab.delete(conf, b, "ctr2")
    lab.assert_clean("dual", expect_links={"lo", "br-dual"})
