"""portmap as a CNI plugin: conflicts, DEL, CHECK, GC, conntrack, versions, errors.

Both firewall drivers; the conflict scenarios also through the warm plugin daemon. Every
failed ADD must leave the firewall and the records exactly as they were.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cniutil import ALL_VERSIONS, start_daemon
from nsutil import Netns, wait_for
from test_portmap_helpers import (
    CLIENT_IP,
    DRIVERS,
    HOST_IP,
    PortLab,
    ask_tcp,
    ask_udp,
    make_lab,
    mapping,
    port_rules,
    serve_tcp,
    serve_udp,
)

from netplugins.firewall.lock import DEFAULT_NFT_LOCK

pytestmark = pytest.mark.netns

NET, SUBNET = "web", "10.73.0.0/24"


@pytest.fixture(params=DRIVERS)
def lab(request: pytest.FixtureRequest, host_ns: Netns, make_ns: Callable[..., Netns],
        tmp_path: Path) -> PortLab:
    return make_lab(host_ns, make_ns, tmp_path, request.param)


@pytest.fixture(params=[(d, m) for d in DRIVERS for m in ("inproc", "daemon")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def mode_lab(request: pytest.FixtureRequest, host_ns: Netns, make_ns: Callable[..., Netns],
             tmp_path: Path) -> Iterator[PortLab]:
    driver, mode = request.param
    if mode == "inproc":
        yield make_lab(host_ns, make_ns, tmp_path, driver)
        return
    sock = str(tmp_path / "plugind.sock")
    proc = start_daemon(host_ns, sock)
    try:
        yield make_lab(host_ns, make_ns, tmp_path, driver,
                       {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": sock})
    finally:
        proc.terminate()
        proc.wait(5)


def failed(run: object, code: int) -> str:
    """The message of a plugin error with ``code`` (asserts it is one)."""
    obj = run.json  # type: ignore[attr-defined]
    assert run.rc != 0 and obj["code"] == code, f"{run.rc} {run.stdout} {run.stderr}"  # type: ignore[attr-defined]
    return str(obj["msg"]) + " | " + str(obj.get("details", ""))


def test_conflicts_are_errors_and_leave_nothing(mode_lab: PortLab) -> None:
    lab = mode_lab
    client = lab.add_client()
    web, other = lab.make_ns(), lab.make_ns()
    lab.attach(NET, SUBNET, web, "c-web1", [mapping(8080, 80)], name="web1")
    serve_tcp(web, 80, "web1")
    prev = lab.run("bridge", "ADD", lab.bridge_conf(NET, SUBNET), other, "c-web2").ok().json
    before, records = port_rules(lab.host), lab.records()

    def refused(mappings: list[dict[str, object]], code: int = 107) -> str:
        msg = failed(lab.portmap("ADD", NET, other, "c-web2", mappings, prev, name="web2"), code)
        assert port_rules(lab.host) == before and lab.records() == records
        return msg

    assert refused([mapping(8080, 80)]).startswith(
        "port 8080/tcp is already allocated by container web1")
    assert refused([mapping(8080, 81, host_ip="127.0.0.1")]).startswith(
        "port 127.0.0.1:8080/tcp is already allocated by container web1")
    # one mapping of a range conflicting refuses the whole ADD
    assert "8080/tcp" in refused([mapping(8079 + i, 80 + i) for i in range(3)])
    assert "requested twice" in refused([mapping(9000, 80), mapping(9000, 81)])

    # a host process: TCP listening on any address, UDP bound
    lab.host.spawn(["socat", "TCP-LISTEN:7070,reuseaddr,fork", "SYSTEM:echo host"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lab.host.spawn(["socat", "UDP4-RECVFROM:7071,bind=127.0.0.1,fork", "SYSTEM:echo host"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: ":1B9E " in lab.host.run(["cat", "/proc/net/tcp"]).stdout
                    and ":1B9F " in lab.host.run(["cat", "/proc/net/udp"]).stdout)
    msg = refused([mapping(7070, 80)])
    assert msg.startswith("port 7070/tcp is already in use on the host") and "socat" in msg
    assert refused([mapping(7071, 53, "udp")]).startswith("port 7071/udp is already in use on the host")
    # ... but a host address the process does not hold is free
    lab.portmap("ADD", NET, other, "c-web2", [mapping(7071, 53, "udp", HOST_IP)], prev, "web2").ok()
    # other protocol, same number: no conflict
    lab.portmap("ADD", NET, other, "c-web2", [mapping(8080, 80, "udp")], prev, "web2").ok()

    # the first container kept its port throughout
    assert ask_tcp(client, HOST_IP, 8080) == f"web1 {CLIENT_IP}"
    lab.portmap("DEL", NET, other, "c-web2", None, prev).ok()
    lab.portmap("DEL", NET, web, "c-web1", None, None).ok()
    assert port_rules(lab.host) == []


def test_del_without_runtime_config_removes_by_tag(lab: PortLab) -> None:
    web = lab.make_ns()
    res = lab.attach(NET, SUBNET, web, "c1", [mapping(8080, 80), mapping(8081, 81, "sctp")])
    assert port_rules(lab.host)
    # no runtimeConfig, no prevResult, no namespace: the record and the owner tags suffice
    lab.run("portmap", "DEL", lab.portmap_conf(NET, None, None), None, "c1").ok()
    assert port_rules(lab.host) == [] and lab.records() == []
    lab.run("portmap", "DEL", lab.portmap_conf(NET, None, None), None, "c1").ok()
    lab.portmap("DEL", NET, web, "c1", [mapping(8080, 80)], res).ok()


def test_no_mappings_is_a_fast_no_op(lab: PortLab) -> None:
    web = lab.make_ns()
    prev = lab.run("bridge", "ADD", lab.bridge_conf(NET, SUBNET), web, "c1").ok().json
    os.makedirs(os.path.dirname(DEFAULT_NFT_LOCK), exist_ok=True)
    fd = os.open(DEFAULT_NFT_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a firewall user would now wait (and time out)
        cases: tuple[list[dict[str, object]] | None, ...] = (None, [])
        for mappings in cases:
            assert lab.portmap("ADD", NET, web, "c1", mappings, prev).ok().json == prev
            lab.portmap("CHECK", NET, web, "c1", mappings, prev).ok()
            lab.portmap("DEL", NET, web, "c1", mappings, prev).ok()
    finally:
        os.close(fd)
    assert port_rules(lab.host) == []
    assert not (lab.state_dir / "_portmap").exists()


def test_check_reports_what_is_missing(lab: PortLab) -> None:
    web = lab.make_ns()
    maps = [mapping(8080, 80), mapping(5353, 53, "udp")]
    res = lab.attach(NET, SUBNET, web, "c1", maps)
    lab.portmap("CHECK", NET, web, "c1", maps, res).ok()
    expect = lab.delete_published("udp", 5353, "netctl net=web cid=c1 if=eth0", "10.73.0.2:53")
    msg = failed(lab.portmap("CHECK", NET, web, "c1", maps, res), 102)
    assert expect in msg
    # ADD again repairs it (a repeated ADD replaces the attachment's entries)
    lab.portmap("ADD", NET, web, "c1", maps, res).ok()
    lab.portmap("CHECK", NET, web, "c1", maps, res).ok()
    assert "prevResult" in failed(lab.portmap("CHECK", NET, web, "c1", maps, None), 7)
    lab.portmap("DEL", NET, web, "c1", maps, res).ok()
    assert port_rules(lab.host) == []


def test_gc_removes_attachments_that_are_not_valid(lab: PortLab) -> None:
    client = lab.add_client()
    keep, gone = lab.make_ns(), lab.make_ns()
    lab.attach(NET, SUBNET, keep, "keep", [mapping(8080, 80)])
    lab.attach(NET, SUBNET, gone, "gone", [mapping(8081, 80), mapping(8082, 80, "udp")])
    serve_tcp(keep, 80, "keep")
    serve_tcp(gone, 80, "gone")
    assert ask_tcp(client, HOST_IP, 8081) == f"gone {CLIENT_IP}"
    conf = dict(lab.portmap_conf(NET, None, None), cniVersion="1.1.0")
    conf["cni.dev/valid-attachments"] = [{"containerID": "keep", "ifname": "eth0"}]
    lab.run("portmap", "GC", conf, None, "").ok()
    assert ask_tcp(client, HOST_IP, 8081, timeout=1) == ""
    assert ask_tcp(client, HOST_IP, 8080) == f"keep {CLIENT_IP}"
    assert lab.records() == ["web/keep-eth0.json"]
    assert not any("cid=gone" in line for line in port_rules(lab.host))
    conf["cni.dev/valid-attachments"] = []
    lab.run("portmap", "GC", conf, None, "").ok()
    assert port_rules(lab.host) == [] and lab.records() == []


def test_old_udp_flows_do_not_bypass_a_new_mapping(lab: PortLab) -> None:
    client = lab.add_client()
    web = lab.make_ns()
    prev = lab.run("bridge", "ADD", lab.bridge_conf(NET, SUBNET), web, "c1").ok().json
    serve_udp(web, 53, "udp-ok")
    # a client talks to host port 5353 before it is published: a conntrack entry, no NAT
    assert ask_udp(client, HOST_IP, 5353, sport=40053) == ""
    flows = lab.host.run(["conntrack", "-L", "-p", "udp", "--dport", "5353"], check=False).stdout
    assert "sport=40053" in flows
    lab.portmap("ADD", NET, web, "c1", [mapping(5353, 53, "udp")], prev).ok()
    # the same flow (same ports) now reaches the container: its old entry was deleted
    assert ask_udp(client, HOST_IP, 5353, sport=40053) == "udp-ok"
    lab.portmap("DEL", NET, web, "c1", None, prev).ok()


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_every_spec_version(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path,
                            version: str) -> None:
    lab = make_lab(host_ns, make_ns, tmp_path, "nftables")
    lab.version = version
    client = lab.add_client()
    web = lab.make_ns()
    res = lab.attach(NET, SUBNET, web, "c1", [mapping(8080, 80)])
    serve_tcp(web, 80, "ok")
    assert ask_tcp(client, HOST_IP, 8080) == f"ok {CLIENT_IP}"
    if version not in ("0.3.0", "0.3.1"):
        lab.portmap("CHECK", NET, web, "c1", [mapping(8080, 80)], res).ok()
    lab.portmap("DEL", NET, web, "c1", [mapping(8080, 80)], res).ok()
    assert port_rules(host_ns) == []


def test_bad_input_is_a_clear_error_and_changes_nothing(lab: PortLab) -> None:
    web = lab.make_ns()
    prev = lab.run("bridge", "ADD", lab.bridge_conf(NET, SUBNET), web, "c1").ok().json

    def refused(code: int, mappings: object, prev_: object = prev, **extra: object) -> str:
        conf = lab.portmap_conf(NET, None, prev_, **extra)  # type: ignore[arg-type]
        conf["runtimeConfig"] = {"portMappings": mappings}
        msg = failed(lab.run("portmap", "ADD", conf, web, "c1"), code)
        assert port_rules(lab.host) == [] and lab.records() == []
        return msg

    assert "chained" in refused(7, [mapping(8080, 80)], None)
    assert "host port" in refused(7, [{"hostPort": "80", "containerPort": 80}])
    assert "container port" in refused(7, [{"hostPort": 80, "containerPort": 70000}])
    assert "protocol" in refused(7, [mapping(80, 80, "icmp")])
    assert "list" in refused(7, {"hostPort": 80})
    assert "not an address of this host" in refused(7, [mapping(80, 80, host_ip="203.0.113.9")])
    assert "no IPv6 address" in refused(7, [mapping(80, 80, host_ip="::")])
    assert "conditionsV4" in refused(7, [mapping(80, 80)], conditionsV4=["-s", "1.2.3.4"])
    # the same run with a broken config must still let DEL succeed
    lab.run("portmap", "DEL", dict(lab.portmap_conf(NET, None, prev),
                                   runtimeConfig={"portMappings": "junk"}), web, "c1").ok()


def test_concurrent_adds_one_port_one_winner(lab: PortLab) -> None:
    """Eight containers race for host port 8080 while eight others publish distinct ports:
    exactly one gets 8080, every other racer a clean 107, every distinct port works."""
    import json

    from cniutil import plugin_dir

    ctrs = [lab.make_ns() for _ in range(16)]
    prevs = [lab.run("bridge", "ADD", lab.bridge_conf(NET, SUBNET), c, f"r{i}").ok().json
             for i, c in enumerate(ctrs)]
    env = {"PATH": os.environ.get("PATH", ""), "CNI_COMMAND": "ADD", "CNI_IFNAME": "eth0",
           "CNI_PATH": plugin_dir(), **lab.env}
    procs = []
    for i, (ctr, prev) in enumerate(zip(ctrs, prevs, strict=True)):
        port = 8080 if i % 2 == 0 else 9000 + i
        conf = lab.portmap_conf(NET, [mapping(port, 80)], prev)
        procs.append(subprocess.Popen(
            lab.host.cmd([f"{plugin_dir()}/portmap"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env | {"CNI_CONTAINERID": f"r{i}", "CNI_NETNS": ctr.path}))
        procs[-1].stdin.write(json.dumps(conf).encode())  # type: ignore[union-attr]
    for p in procs:
        p.stdin.close()  # type: ignore[union-attr]
    outcomes = [(p.wait(60), p.stdout.read()) for p in procs]  # type: ignore[union-attr]
    racers = outcomes[0::2]
    assert sum(rc == 0 for rc, _ in racers) == 1
    assert all(json.loads(out)["code"] == 107 for rc, out in racers if rc != 0)
    assert all(rc == 0 for rc, _ in outcomes[1::2])
    winner = next(i for i in range(0, 16, 2) if outcomes[i][0] == 0)
    assert lab.records() == sorted(f"web/r{i}-eth0.json" for i in [winner, *range(1, 16, 2)])
    rules = "\n".join(port_rules(lab.host))
    assert all(str(9000 + i) in rules for i in range(1, 16, 2))
    assert rules.count("8080") == 1 and f"cid=r{winner} " in rules
    for i in range(16):
        lab.portmap("DEL", NET, ctrs[i], f"r{i}", None, prevs[i]).ok()
    assert port_rules(lab.host) == []
