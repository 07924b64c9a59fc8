"""The host-local plugin called in-process (as the warm daemon calls it), through skel.run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ipam.sqlstore import SqliteStore
from netplugins.cni.skel import run
from netplugins.ipam import hostlocal

V4 = [{"subnet": "10.10.0.0/24"}]
V6 = [{"subnet": "fd10::/64"}]


def netconf(tmp_path: Path, version: str = "1.1.0", **ipam: Any) -> dict[str, Any]:
    section = {"type": "host-local", "dataDir": str(tmp_path / "ipam"), "ranges": [V4]}
    section.update(ipam)
    return {"cniVersion": version, "name": "net1", "type": "bridge", "ipam": section}


class Plugin:
    """Calls the plugin through skel.run with a CNI environment."""

    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf

    def __call__(self, command: str, cid: str = "c1", ifname: str = "eth0", cni_args: str = "",
                 conf: dict[str, Any] | None = None) -> tuple[int, Any]:
        env = {"CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni"}
        if command in ("ADD", "DEL", "CHECK"):
            env |= {"CNI_CONTAINERID": cid, "CNI_IFNAME": ifname}
            if command != "DEL":
                env["CNI_NETNS"] = "/run/netns/whatever"
        if cni_args:
            env["CNI_ARGS"] = cni_args
        out = run(hostlocal.FUNCS, env, json.dumps(conf or self.conf).encode())
        return out.exit_code, json.loads(out.stdout) if out.stdout else None


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    return Plugin(netconf(tmp_path, ranges=[V4, V6], routes=[{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]))


def test_add_result_shape_dual_stack(plugin: Plugin) -> None:
    rc, res = plugin("ADD")
    assert rc == 0
    assert res == {
        "cniVersion": "1.1.0",
        "ips": [{"address": "10.10.0.2/24", "gateway": "10.10.0.1"},
                {"address": "fd10::2/64", "gateway": "fd10::1"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
        "dns": {},
    }


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_result_printed_in_the_requested_version(tmp_path: Path, version: str) -> None:
    rc, res = Plugin(netconf(tmp_path, version, ranges=[V4, V6]))("ADD")
    assert rc == 0 and res["cniVersion"] == version
    for ip in res["ips"]:
        assert "interface" not in ip
        assert ("version" in ip) == (version < "1.0.0")
    if version < "1.0.0":
        assert [ip["version"] for ip in res["ips"]] == ["4", "6"]


def test_legacy_subnet_resolvconf_and_routes(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# comment\nnameserver 10.10.0.1\nnameserver 1.1.1.1\ndomain example.org\n"
                      "search a.example b.example\noptions ndots:0 edns0\n; other comment\nsortlist x\n")
    conf = netconf(tmp_path, ranges=[V6], subnet="10.11.0.0/16", rangeStart="10.11.5.0",
                   rangeEnd="10.11.5.20", gateway="10.11.0.254",
                   routes=[{"dst": "192.168.0.0/16", "gw": "10.11.0.254"}], resolvConf=str(resolv))
    rc, res = Plugin(conf)("ADD")
    assert rc == 0, res
    # the legacy range comes first (prepended), then ranges
    assert res["ips"] == [{"address": "10.11.5.0/16", "gateway": "10.11.0.254"},
                          {"address": "fd10::2/64", "gateway": "fd10::1"}]
    assert res["routes"] == [{"dst": "192.168.0.0/16", "gw": "10.11.0.254"}]
    assert res["dns"] == {"nameservers": ["10.10.0.1", "1.1.1.1"], "domain": "example.org",
                          "search": ["a.example", "b.example"], "options": ["ndots:0", "edns0"]}


def test_requested_addresses_and_precedence(tmp_path: Path) -> None:
    p = Plugin(netconf(tmp_path, ranges=[V4, V6]))
    rc, res = p("ADD", "a", cni_args="IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.10.0.50")
    assert rc == 0 and res["ips"][0]["address"] == "10.10.0.50/24"
    # args.cni.ips wins over CNI_ARGS IP (CONVENTIONS.md); runtimeConfig.ips is added
    conf = dict(p.conf, args={"cni": {"ips": ["10.10.0.60"]}}, runtimeConfig={"ips": ["fd10::60/64"]})
    rc, res = p("ADD", "b", cni_args="IP=10.10.0.70", conf=conf)
    assert rc == 0, res
    assert [ip["address"] for ip in res["ips"]] == ["10.10.0.60/24", "fd10::60/64"]
    # requested addresses leave the round-robin cursors alone (Docker): the next dynamic
    # address follows the last dynamic one ("a" took fd10::2)
    rc, res = p("ADD", "d")
    assert [ip["address"] for ip in res["ips"]] == ["10.10.0.2/24", "fd10::3/64"]
    # runtimeConfig.ipRanges is prepended before the configured ranges
    conf = dict(p.conf, runtimeConfig={"ipRanges": [[{"subnet": "10.99.0.0/24"}]]})
    rc, res = p("ADD", "c", conf=conf)
    assert rc == 0, res
    # and each set keeps its round-robin cursor (keyed by subnets: the shift does not matter)
    assert [ip["address"] for ip in res["ips"]] == ["10.99.0.2/24", "10.10.0.3/24", "fd10::4/64"]


def test_unknown_cni_args_need_ignore_unknown(plugin: Plugin) -> None:
    rc, res = plugin("ADD", cni_args="K8S_POD_NAME=x")
    assert rc == 1 and res["code"] == 4


def leases(tmp_path: Path) -> list[tuple[str, str, str]]:
    path = tmp_path / "ipam" / "net1.db"
    if not path.exists():
        return []
    with SqliteStore(str(path)) as s:
        return [(le.container_id, le.ifname, str(le.address)) for le in s.leases()]


BAD_INPUT = [
    # (config changes, CNI_ARGS, code, message)
    ({}, "IP=10.9.9.9", 7, "invalid address 10.9.9.9: it does not belong to any of this network's subnets"),
    ({}, "IP=10.10.0.1", 7, "invalid address 10.10.0.1: it is the gateway of subnet 10.10.0.0/24"),
    ({}, "IP=10.10.0.255", 7, "invalid address 10.10.0.255: it is the broadcast address of 10.10.0.0/24"),
    ({}, "IP=banana", 7, "invalid address in CNI_ARGS IP 'banana': not an IP address"),
    ({"runtimeConfig": {"ips": ["10.10.0.5/16"]}}, "", 7,
     "invalid address 10.10.0.5/16 in runtimeConfig.ips: the prefix length of subnet 10.10.0.0/24 is 24"),
    ({"args": {"cni": {"ips": ["10.10.0.5", "10.10.0.6"]}}}, "", 7,
     "requested addresses 10.10.0.5 and 10.10.0.6 are both in range set 0 (10.10.0.0/24): one address per range set"),
    ({"ipam": {"ranges": [V4, [{"subnet": "10.10.0.0/16"}]]}}, "", 7,
     "range set 0 (10.10.0.0/24) overlaps with range set 1 (10.10.0.0/16)"),
    ({"ipam": {"ranges": [[{"subnet": "10.10.0.0/31"}]]}}, "", 7,
     "invalid range set 0: network 10.10.0.0/31 too small to allocate from"),
    ({"ipam": {"ranges": [[{"subnet": "10.10.0.0/24", "rangeStart": "10.11.0.1"}]]}}, "", 7,
     "invalid range set 0: rangeStart 10.11.0.1 is outside subnet 10.10.0.0/24"),
    ({"ipam": {"ranges": []}}, "", 7, "no IP ranges specified"),
    ({"ipam": None}, "", 7, "IPAM config missing 'ipam' key"),
    ({"ipam": {"routes": [{"dst": "nowhere"}]}}, "", 7, "invalid route dst 'nowhere': expected CIDR notation such as 10.1.0.0/24"),
    ({"ipam": {"resolvConf": "/nonexistent/resolv.conf"}}, "", 5, "failed to read resolvConf /nonexistent/resolv.conf"),
]


@pytest.mark.parametrize(("change", "cni_args", "code", "message"), BAD_INPUT,
                         ids=[b[3][:40] for b in BAD_INPUT])
def test_bad_input_is_a_clear_error_and_nothing_is_leased(
        tmp_path: Path, change: dict, cni_args: str, code: int, message: str) -> None:
    conf = netconf(tmp_path)
    for key, value in change.items():
        if key == "ipam" and value is not None:
            conf["ipam"] = dict(conf["ipam"], **value)
        elif value is None:
            conf.pop(key)
        else:
            conf[key] = value
    rc, res = Plugin(conf)("ADD", cni_args=cni_args)
    assert rc == 1
    assert res["code"] == code
    assert res["msg"] == message
    assert leases(tmp_path) == []


def test_address_held_by_another_container_names_it(plugin: Plugin) -> None:
    assert plugin("ADD", "first", cni_args="IP=10.10.0.9")[0] == 0
    rc, res = plugin("ADD", "second", cni_args="IP=10.10.0.9")
    assert (rc, res["code"]) == (1, 105)
    assert res["msg"] == ("requested address 10.10.0.9 is already in use by container first "
                          "(interface eth0) on network 'net1'")


def test_all_or_nothing_across_range_sets(tmp_path: Path) -> None:
    p = Plugin(netconf(tmp_path, ranges=[V4, [{"subnet": "10.20.0.0/30"}]]))
    assert p("ADD", "a")[0] == 0
    rc, res = p("ADD", "b")
    assert (rc, res["code"]) == (1, 110)
    assert res["msg"] == ("no IP addresses available in range set: 10.20.0.1-10.20.0.2 "
                          "(network 'net1', subnet 10.20.0.0/30)")
    # b got nothing from the first range set either
    assert [lease[0] for lease in leases(tmp_path)] == ["a", "a"]


def test_duplicate_add(plugin: Plugin) -> None:
    assert plugin("ADD")[0] == 0
    rc, res = plugin("ADD")
    assert (rc, res["code"]) == (1, 111)
    assert res["msg"] == "10.10.0.2 has been allocated to c1, duplicate allocation is not allowed"
    assert plugin("ADD", ifname="eth1")[0] == 0


def test_del(plugin: Plugin, tmp_path: Path) -> None:
    # DEL before anything exists: success, and no database is created
    assert plugin("DEL") == (0, None)
    assert not (tmp_path / "ipam").exists()
    plugin("ADD", "a")
    plugin("ADD", "b")
    assert plugin("DEL", "a") == (0, None)
    assert plugin("DEL", "a") == (0, None)
    assert {lease[0] for lease in leases(tmp_path)} == {"b"}
    # DEL needs no netns and no valid ranges: only the name and dataDir
    broken = dict(plugin.conf, ipam={"type": "host-local", "dataDir": plugin.conf["ipam"]["dataDir"]})
    assert plugin("DEL", "b", conf=broken) == (0, None)
    assert leases(tmp_path) == []


def test_check(plugin: Plugin) -> None:
    _, res = plugin("ADD")
    with_prev = dict(plugin.conf, prevResult=res)
    assert plugin("CHECK", conf=with_prev) == (0, None)
    # prevResult of a bridge (with interfaces and indexes) is fine too
    bridged = dict(res, interfaces=[{"name": "br0"}, {"name": "veth"}, {"name": "eth0", "sandbox": "/x"}],
                   ips=[dict(ip, interface=2) for ip in res["ips"]])
    assert plugin("CHECK", conf=dict(plugin.conf, prevResult=bridged)) == (0, None)
    wrong = dict(res, ips=[{"address": "10.10.0.77/24"}, res["ips"][1]])
    rc, err = plugin("CHECK", conf=dict(plugin.conf, prevResult=wrong))
    assert (rc, err["code"]) == (1, 112)
    assert err["msg"] == "lease 10.10.0.2/24 of container c1 interface eth0 on network 'net1' does not match prevResult"
    missing_v6 = dict(res, ips=res["ips"][:1])
    assert plugin("CHECK", conf=dict(plugin.conf, prevResult=missing_v6))[1]["code"] == 112
    rc, err = plugin("CHECK", "other", conf=with_prev)
    assert err["msg"] == ("host-local: failed to find address added by container other interface eth0 "
                          "on network 'net1'")
    rc, err = plugin("CHECK")
    assert (rc, err["code"]) == (1, 7) and "prevResult" in err["msg"]
    plugin("DEL")
    assert plugin("CHECK", conf=with_prev)[1]["code"] == 112


def test_gc(plugin: Plugin, tmp_path: Path) -> None:
    for cid in ("a", "b", "c"):
        plugin("ADD", cid)
    plugin("ADD", "a", ifname="eth1")
    rc, res = plugin("GC", conf=dict(plugin.conf, **{"cni.dev/valid-attachments": [
        {"containerID": "a", "ifname": "eth0"}, {"containerID": "c", "ifname": "eth0"}]}))
    assert (rc, res) == (0, None)
    assert sorted({(x[0], x[1]) for x in leases(tmp_path)}) == [("a", "eth0"), ("c", "eth0")]
    # the early key name is accepted too
    plugin("GC", conf=dict(plugin.conf, **{"cni.dev/attachments": [{"containerID": "c", "ifname": "eth0"}]}))
    assert {x[0] for x in leases(tmp_path)} == {"c"}
    # no key at all: refuse rather than wipe the network
    rc, res = plugin("GC")
    assert (rc, res["code"]) == (1, 7)
    assert {x[0] for x in leases(tmp_path)} == {"c"}
    # an empty list releases everything
    assert plugin("GC", conf=dict(plugin.conf, **{"cni.dev/valid-attachments": []}))[0] == 0
    assert leases(tmp_path) == []


def test_status(tmp_path: Path) -> None:
    p = Plugin(netconf(tmp_path, ranges=[V6, [{"subnet": "10.20.0.0/29"}]]))
    assert p("STATUS") == (0, None)  # no database yet
    for i in range(5):
        assert p("ADD", f"c{i}")[0] == 0
    rc, res = p("STATUS")
    assert (rc, res["code"]) == (1, 50)
    assert res["msg"] == "no IP addresses available in range set 1 (10.20.0.1-10.20.0.6) of network 'net1'"
    assert res["details"] == "5 of 5 addresses are leased"
    p("DEL", "c3")
    assert p("STATUS") == (0, None)
    old = dict(p.conf, cniVersion="1.0.0")
    assert p("STATUS", conf=old)[1]["code"] == 1  # STATUS needs 1.1.0 (skel)


def test_corrupt_database(plugin: Plugin, tmp_path: Path) -> None:
    (tmp_path / "ipam").mkdir()
    db = tmp_path / "ipam" / "net1.db"
    db.write_bytes(b"garbage" * 1000)
    for command in ("ADD", "DEL", "CHECK", "STATUS"):
        conf = dict(plugin.conf, prevResult={"ips": []})
        rc, res = plugin(command, conf=conf)
        assert rc == 1, command
        assert res["code"] == (50 if command == "STATUS" else 5), (command, res)
        assert str(db) in res["msg"] and "file is not a database" in res["msg"]
        assert "left untouched" in res.get("details", "")
    assert db.read_bytes() == b"garbage" * 1000
    assert sorted(os.listdir(tmp_path / "ipam")) == ["net1.db"]


def test_gc_keeps_the_leases_of_an_add_still_running(plugin: Plugin, tmp_path: Path) -> None:
    from ipam.owner import new_owner
    from ipam.ranges import address as IPAddress
    from ipam.store import Lease

    plugin("ADD", "done")
    with SqliteStore(str(tmp_path / "ipam" / "net1.db")) as s, s.transaction():
        # an ADD of this very process, between its two transactions
        s.reserve(Lease(IPAddress("10.10.0.99"), "inflight", "eth0", "x", pending=True, owner=new_owner()))
        s.reserve(Lease(IPAddress("10.10.0.98"), "crashed", "eth0", "x", pending=True, owner="999999999:0:dead"))
    assert plugin("GC", conf=dict(plugin.conf, **{"cni.dev/valid-attachments": []}))[0] == 0
    assert [x[0] for x in leases(tmp_path)] == ["inflight"]


def _ips(plugin: Plugin, cid: str) -> str:
    rc, res = plugin("ADD", cid)
    assert rc == 0, res
    return str(res["ips"][0]["address"])


def test_gc_leaving_no_lease_removes_the_database(tmp_path: Path) -> None:
    """The network's last GC (``netctl network rm``): the database, its side files and lock
    file go, so a network created again starts at the first address (Docker)."""
    p = Plugin(netconf(tmp_path))
    assert [_ips(p, c) for c in ("a", "b")] == ["10.10.0.2/24", "10.10.0.3/24"]
    # a lease left: the database stays whole
    valid = [{"containerID": "b", "ifname": "eth0"}]
    assert p("GC", conf=dict(p.conf, **{"cni.dev/valid-attachments": valid}))[0] == 0
    assert {"net1.db", "net1.db.lock"} <= set(os.listdir(tmp_path / "ipam"))
    assert _ips(p, "c") == "10.10.0.4/24"
    assert p("GC", conf=dict(p.conf, **{"cni.dev/valid-attachments": []}))[0] == 0
    assert os.listdir(tmp_path / "ipam") == []
    assert p("GC", conf=dict(p.conf, **{"cni.dev/valid-attachments": []}))[0] == 0  # nothing to do
    assert _ips(p, "d") == "10.10.0.2/24"


def test_gc_of_a_network_the_runtime_keeps_keeps_the_cursor(tmp_path: Path) -> None:
    """netctl's periodic GC says the network stays: with no lease left the next container
    still gets the next address (Docker does not hand out .2 again while the network lives)."""
    p = Plugin(netconf(tmp_path))
    assert [_ips(p, c) for c in ("a", "b")] == ["10.10.0.2/24", "10.10.0.3/24"]
    keep = dict(p.conf, **{"cni.dev/valid-attachments": [], "netctl.dev/keep-network": True})
    assert p("GC", conf=keep)[0] == 0
    assert leases(tmp_path) == []
    assert "net1.db" in os.listdir(tmp_path / "ipam")
    assert _ips(p, "c") == "10.10.0.4/24"
    # only the boolean true counts
    assert p("GC", conf=dict(keep, **{"netctl.dev/keep-network": "yes"}))[0] == 0
    assert os.listdir(tmp_path / "ipam") == []


def test_gc_keeps_the_database_while_an_add_has_it_open(tmp_path: Path) -> None:
    p = Plugin(netconf(tmp_path))
    _ips(p, "a")
    with SqliteStore(str(tmp_path / "ipam" / "net1.db")) as add:  # an ADD that opened it
        assert p("GC", conf=dict(p.conf, **{"cni.dev/valid-attachments": []}))[0] == 0
        from ipam.ranges import address as IPAddress
        from ipam.store import Lease

        with add.transaction():
            add.reserve(Lease(IPAddress("10.10.0.2"), "late", "eth0", "10.10.0.0/24"))
    assert [x[0] for x in leases(tmp_path)] == ["late"]
