"""Bad input to the bridge plugin: a clear message, the right code, nothing left behind."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from nsutil import Netns
from test_bridge_helpers import (
    BridgeLab,
    addrs_of,
    lab_fixture,  # noqa: F401 - the lab fixture
    link_info,
    link_names,
    our_rules,
    shared_daemon,  # noqa: F401 - a fixture
)

from netplugins.main.bridge_plan import host_veth_name

pytestmark = pytest.mark.netns



def refused(lab: BridgeLab, conf: dict, ctr: Netns, cid: str = "ctr1", **kw: object) -> dict:
    res = lab.run("ADD", conf, ctr, cid, **kw)  # type: ignore[arg-type]
    assert res.rc != 0, res.stdout
    assert "Traceback" not in res.stderr
    err = res.json
    assert isinstance(err, dict) and err["cniVersion"] == conf["cniVersion"]
    return err


def nothing_changed(lab: BridgeLab, ctr: Netns, network: str, host_links: set[str],
                    ctr_links: set[str] = frozenset({"lo"})) -> None:  # type: ignore[assignment]
    assert link_names(lab.host) == host_links
    assert link_names(ctr) == set(ctr_links)
    assert lab.leases(network) == [] and lab.records(network) == []
    assert our_rules(lab.host) == []


def test_bridge_name_taken_by_a_veth(lab: BridgeLab, ctr_ns: Netns) -> None:
    lab.host.run(["ip", "link", "add", "br-taken", "type", "veth", "peer", "name", "taken-peer"])
    conf = lab.conf("taken", "10.90.0.0/24", bridge="br-taken", ipMasq=True)
    err = refused(lab, conf, ctr_ns)
    assert err["code"] == 7
    assert "'br-taken' already exists but is not a bridge" in err["msg"] and "veth" in err["details"]
    nothing_changed(lab, ctr_ns, "taken", {"lo", "br-taken", "taken-peer"})
    lab.delete(conf, ctr_ns, "ctr1")  # the runtime's DEL after a failed ADD
    assert link_names(lab.host) == {"lo", "br-taken", "taken-peer"}


def test_bridge_with_another_address(lab: BridgeLab, make_ns: Callable[..., Netns]) -> None:
    lab.host.run(["ip", "link", "add", "br-addr", "type", "bridge"])
    lab.host.run(["ip", "addr", "add", "10.99.0.1/24", "dev", "br-addr"])
    conf = lab.conf("addr", "10.91.0.0/24", bridge="br-addr", ipMasq=True)
    a = make_ns()
    err = refused(lab, conf, a)
    assert err["code"] == 7
    assert "'br-addr' already has an IP address different from 10.91.0.1/24" in err["msg"]
    assert "10.99.0.1/24" in err["details"] and "forceAddress" in err["details"]
    # IPAM ran and was undone; the veth was never made
    nothing_changed(lab, a, "addr", {"lo", "br-addr"})
    assert addrs_of(lab.host, "br-addr") == {"10.99.0.1/24"}
    lab.delete(conf, a, "ctr1")
    # forceAddress replaces the address
    forced = dict(conf, forceAddress=True)
    lab.add(forced, a, "ctr1")
    assert addrs_of(lab.host, "br-addr") == {"10.91.0.1/24"}
    lab.delete(forced, a, "ctr1")
    lab.assert_clean("addr", expect_links={"lo", "br-addr"})


@pytest.mark.parametrize("extra,words", [
    ({"hairpinMode": True, "promiscMode": True}, ["hairpin", "promiscuous"]),
    ({"mtu": 70000}, ["mtu", "70000", "out of range"]),
    ({"mtu": 10}, ["mtu", "10", "out of range"]),
    ({"vlan": 10}, ["vlan", "not supported"]),
])
def test_invalid_config(extra: dict, words: list[str], lab: BridgeLab, ctr_ns: Netns) -> None:
    conf = lab.conf("badconf", "10.92.0.0/24", **extra)
    err = refused(lab, conf, ctr_ns)
    assert err["code"] == (2 if "vlan" in extra else 7)
    for word in words:
        assert word in err["msg"] + err.get("details", "")
    nothing_changed(lab, ctr_ns, "badconf", {"lo"})
    lab.delete(conf, ctr_ns, "ctr1")


def test_ipam_plugin_not_on_cni_path(lab: BridgeLab, ctr_ns: Netns, tmp_path: Path) -> None:
    conf = lab.conf("noipam", "10.93.0.0/24", ipam={"type": "no-such-ipam"})
    empty = tmp_path / "empty-cni-path"
    empty.mkdir()
    err = refused(lab, conf, ctr_ns, path=f"{empty}:/usr/lib/cni")
    assert err["code"] == 103
    assert "no-such-ipam" in err["msg"] and str(empty) in err["msg"]
    nothing_changed(lab, ctr_ns, "noipam", {"lo"})  # not even the bridge


def test_ipam_exhausted_after_the_first_container(lab: BridgeLab, make_ns: Callable[..., Netns]) -> None:
    conf = lab.conf("tiny", "10.94.0.0/30", ipMasq=True)  # .1 is the gateway: room for one
    a, b = make_ns(), make_ns()
    lab.add(conf, a, "ctr1")
    rules = our_rules(lab.host)
    err = refused(lab, conf, b, "ctr2")
    assert err["code"] == 110 and "10.94.0.0/30" in err["msg"] + err.get("details", "")
    # the second container got nothing; the first is untouched, rules included
    assert link_names(b) == {"lo"}
    assert host_veth_name("ctr2", "eth0") not in link_names(lab.host)
    assert [cid for _, cid, _ in lab.leases("tiny")] == ["ctr1"]
    assert lab.records("tiny") == ["ctr1-eth0.json"]
    assert our_rules(lab.host) == rules
    lab.delete(conf, b, "ctr2")
    assert our_rules(lab.host) == rules
    lab.delete(conf, a, "ctr1")
    lab.assert_clean("tiny")


def test_requested_ip_taken(lab: BridgeLab, make_ns: Callable[..., Netns]) -> None:
    conf = lab.conf("taken-ip", "10.95.0.0/24")
    a, b = make_ns(), make_ns()
    res = lab.add(conf, a, "ctr1", cni_args="IgnoreUnknown=1;IP=10.95.0.7")
    assert res["ips"][0]["address"] == "10.95.0.7/24"
    err = refused(lab, conf, b, "ctr2", cni_args="IgnoreUnknown=1;IP=10.95.0.7")
    assert err["code"] == 105 and "10.95.0.7" in err["msg"] + err.get("details", "")
    assert link_names(b) == {"lo"}
    assert [cid for _, cid, _ in lab.leases("taken-ip")] == ["ctr1"]
    lab.delete(conf, b, "ctr2")
    lab.delete(conf, a, "ctr1")
    lab.assert_clean("taken-ip")


def test_ifname_already_in_the_container(lab: BridgeLab, ctr_ns: Netns) -> None:
    ctr_ns.run(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other"])
    ctr_ns.run(["ip", "addr", "add", "192.168.5.5/24", "dev", "eth0"])
    before = link_info(ctr_ns, "eth0")
    conf = lab.conf("dup", "10.97.0.0/24", ipMasq=True)
    err = refused(lab, conf, ctr_ns)
    assert err["code"] == 106 and "'eth0' already exists" in err["msg"]
    nothing_changed(lab, ctr_ns, "dup", {"lo"}, {"lo", "eth0", "other"})
    # the runtime's DEL after the failed ADD leaves the container's own interface alone
    lab.delete(conf, ctr_ns, "ctr1")
    assert link_info(ctr_ns, "eth0") == before
    assert addrs_of(ctr_ns, "eth0") == {"192.168.5.5/24"}


def test_second_add_of_the_same_attachment(lab: BridgeLab, ctr_ns: Netns) -> None:
    conf = lab.conf("twice", "10.98.0.0/24")
    res = lab.add(conf, ctr_ns, "ctr1")
    err = refused(lab, conf, ctr_ns)
    assert err["code"] == 106
    # the first attachment still works
    lab.check(conf, res, ctr_ns, "ctr1").ok()
    lab.delete(conf, ctr_ns, "ctr1")
    lab.assert_clean("twice")


@pytest.mark.parametrize("netns,code,word", [
    ("/run/netns/nctest-absent", 104, "nctest-absent"),
    ("/proc/self/status", 104, "not a network namespace"),
])
def test_bad_netns(netns: str, code: int, word: str, lab: BridgeLab) -> None:
    conf = lab.conf("badns", "10.99.0.0/24")
    res = lab.run("ADD", conf, None, "ctr1", netns=netns)
    assert res.rc != 0 and res.json["code"] == code and word in res.json["msg"]
    assert link_names(lab.host) == {"lo"} and lab.leases("badns") == []
    lab.run("DEL", conf, None, "ctr1", netns=netns).ok()


def _fill_bridge(host: Netns, bridge: str, ports: int) -> None:
    """``ports`` veth ends enslaved to ``bridge``, their peers left unattached (one
    ``ip -batch``: ~1 s for 1023; the dummy module may not be loadable on the test host)."""
    lines = [f"link add bp{i} master {bridge} type veth peer name bq{i}" for i in range(ports)]
    host.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n")


def test_full_bridge_is_refused_and_nothing_is_left(lab: BridgeLab, ctr_ns: Netns) -> None:
    from netplugins.nl.bridge import BRIDGE_MAX_PORTS

    conf = lab.conf("full", "10.92.0.0/22", bridge="br-full", ipMasq=True)
    lab.host.run(["ip", "link", "add", "br-full", "type", "bridge"])
    _fill_bridge(lab.host, "br-full", BRIDGE_MAX_PORTS)
    # the constant is the kernel's limit: one more port is refused with EXFULL
    extra = lab.host.run(["ip", "link", "add", "bpx", "master", "br-full", "type", "veth", "peer", "name", "bqx"],
                         check=False)
    assert extra.returncode != 0 and "exchange full" in extra.stderr.lower(), extra.stderr
    assert not {"bpx", "bqx"} & link_names(lab.host)
    before = link_names(lab.host)
    err = refused(lab, conf, ctr_ns)
    assert err["code"] == 101
    assert err["msg"] == f"bridge 'br-full' is full: a Linux bridge holds at most {BRIDGE_MAX_PORTS} ports"
    # no veth, no lease, no record, no rule
    nothing_changed(lab, ctr_ns, "full", before)
    lab.delete(conf, ctr_ns, "ctr1")  # the runtime's DEL after a failed ADD
    # one port freed: the next ADD gets it
    lab.host.run(["ip", "link", "del", "bp0"])  # its peer goes with it
    lab.run("ADD", conf, ctr_ns, "ctr1").ok()
    assert host_veth_name("ctr1", "eth0") in link_names(lab.host)
    lab.delete(conf, ctr_ns, "ctr1")


def test_full_bridge_count_and_kernel_refusal(lab: BridgeLab, ctr_ns: Netns) -> None:
    """The driver's two guards: the port count (done once the network's own attachments
    near the limit) refuses before anything is made; the veth request itself, when it
    loses the last port (other ports, or a racing ADD), fails with EXFULL, which must leave
    nothing and name the limit."""
    from netplugins.nl.bridge import BRIDGE_MAX_PORTS

    lab.host.run(["ip", "link", "add", "br-race", "type", "bridge"])
    _fill_bridge(lab.host, "br-race", BRIDGE_MAX_PORTS)
    code = (
        "import os, sys\n"
        "from netplugins.cni.errors import CniError\n"
        "from netplugins.nl.bridge import BRIDGE_MAX_PORTS, Rtnl, create_veth, ensure_bridge_room, iface_index\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "with Rtnl() as nl:\n"
        "    ensure_bridge_room(nl, 'br-race', iface_index('br-race'), 0)  # few of ours: not counted\n"
        "    try:\n"
        "        ensure_bridge_room(nl, 'br-race', iface_index('br-race'), BRIDGE_MAX_PORTS)\n"
        "    except CniError as err:\n"
        "        print(err.code, err.msg)\n"
        "    try:\n"
        "        create_veth(nl, 'vethrace', '02:00:00:00:00:01', 'eth0', '02:00:00:00:00:02', fd, 0,\n"
        "                    iface_index('br-race'), 'br-race')\n"
        "    except CniError as err:\n"
        "        print(err.code, err.msg)\n"
    )
    out = lab.host.run([sys.executable, "-c", code, ctr_ns.path]).stdout.strip().splitlines()
    assert out == [f"101 bridge 'br-race' is full: a Linux bridge holds at most {BRIDGE_MAX_PORTS} ports"] * 2
    assert "vethrace" not in link_names(lab.host)
    assert link_names(ctr_ns) == {"lo"}
