"""The portmap plugin's commands on the fake host (portmap_fakes.py): records, rollback, messages."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from portmap_fakes import Host

from netplugins.cni.errors import CniError
from netplugins.cni.skel import CmdArgs, PluginFuncs, run
from netplugins.firewall.ports import Published
from netplugins.meta.hostsockets import HostSocket
from netplugins.meta.portmap import FUNCS, SYSTEM, SystemHost, cmd_add, cmd_check, cmd_del, cmd_gc
from netplugins.meta.portmap_host import PortmapHost

PREV = {"cniVersion": "1.0.0",
        "interfaces": [{"name": "br0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/c"}],
        "ips": [{"address": "10.88.1.2/24", "interface": 2, "gateway": "10.88.1.1"}],
        "dns": {}}


def stdin(state: Path, mappings: list[dict[str, Any]] | None, prev: dict[str, Any] | None = PREV,
          net: str = "web", extra: dict[str, Any] | None = None) -> bytes:
    conf: dict[str, Any] = {"cniVersion": "1.1.0", "name": net, "type": "portmap",
                            "stateDir": str(state), **(extra or {})}
    if mappings is not None:
        conf["runtimeConfig"] = {"portMappings": mappings}
    if prev is not None:
        conf["prevResult"] = prev
    return json.dumps(conf).encode()


def args(data: bytes, cid: str = "c1", name: str = "", command: str = "ADD", ifname: str = "eth0") -> CmdArgs:
    return CmdArgs(command=command, container_id=cid, netns="/run/netns/c", ifname=ifname,
                   args={"K8S_POD_NAME": name} if name else {}, stdin=data)


M8080 = [{"hostPort": 8080, "containerPort": 80}]


def records(state: Path) -> list[str]:
    base = state / "_portmap"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*.json")) if base.exists() else []


def code_of(fn: Any, a: CmdArgs, host: Host) -> CniError:
    with pytest.raises(CniError) as err:
        fn(a, host)
    return err.value


def test_without_mappings_nothing_is_touched(tmp_path: Path, host: Host) -> None:
    cases: tuple[list[dict[str, Any]] | None, ...] = (None, [])
    for mappings in cases:
        result = cmd_add(args(stdin(tmp_path, mappings)), host)
        assert result.to_dict("1.0.0") == PREV
        cmd_check(args(stdin(tmp_path, mappings), command="CHECK"), host)
        cmd_del(args(stdin(tmp_path, mappings, None), command="DEL"), host)
    assert host.driver_names == [] and host.driver.calls == []
    assert not (tmp_path / "_portmap").exists()


def test_add_records_and_publishes(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080 + [{"hostPort": 53, "containerPort": 53, "protocol": "udp"}]),
                 name="web1"), host)
    assert records(tmp_path) == ["web/c1-eth0.json"]
    rec = json.loads((tmp_path / "_portmap" / "web" / "c1-eth0.json").read_text())
    assert rec["name"] == "web1" and rec["tag"] == "netctl net=web cid=c1 if=eth0"
    assert rec["localnet"] and rec["dev"] == "br-test" and rec["driver"] == "fake"
    assert list(host.driver.plans) == ["netctl net=web cid=c1 if=eth0"]
    assert host.localnet == [("enable", "br-test")] and host.flushed == [2]
    cmd_check(args(stdin(tmp_path, M8080 + [{"hostPort": 53, "containerPort": 53, "protocol": "udp"}]),
                   command="CHECK"), host)


def test_conflicts_name_the_owner_and_leave_nothing(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080), cid="c1", name="web1"), host)
    err = code_of(cmd_add, args(stdin(tmp_path, M8080), cid="c2", name="web2"), host)
    assert err.code == 107 and err.msg == "port 8080/tcp is already allocated by container web1"
    assert records(tmp_path) == ["web/c1-eth0.json"]
    # without a name (no K8S_POD_NAME) the container ID stands in
    cmd_add(args(stdin(tmp_path, [{"hostPort": 9000, "containerPort": 80}]), cid="c3"), host)
    err = code_of(cmd_add, args(stdin(tmp_path, [{"hostPort": 9000, "containerPort": 80}]), cid="c4"), host)
    assert err.msg == "port 9000/tcp is already allocated by container c3"
    # the same container asking the same port through another network
    prev1 = dict(PREV, interfaces=[{"name": "br1"}, {"name": "eth1", "sandbox": "/run/netns/c"}],
                 ips=[{"address": "10.89.0.2/24", "interface": 1}])
    err = code_of(cmd_add, args(stdin(tmp_path, M8080, prev1, net="other"), cid="c1", ifname="eth1"), host)
    assert "already published by this container through its interface eth0 on network web" in err.msg
    host.driver.foreign.append(Published(4, "tcp", None, 7000, 7000, None, "10.9.9.9:70"))
    err = code_of(cmd_add, args(stdin(tmp_path, [{"hostPort": 7000, "containerPort": 80}]), cid="c5"), host)
    assert err.msg == "port 7000/tcp is already allocated by an entry netctl did not make"


def test_host_sockets_and_twice_requested_ports(tmp_path: Path, host: Host) -> None:
    host.sockets.append(HostSocket(4, "tcp", "127.0.0.1", 8080, 0))
    err = code_of(cmd_add, args(stdin(tmp_path, M8080)), host)
    assert (err.code, err.msg) == (107, "port 8080/tcp is already in use on the host")
    assert err.details == "127.0.0.1:8080/tcp is held by a process"
    twice = [{"hostPort": 9000, "containerPort": 80}, {"hostPort": 9000, "containerPort": 81}]
    err = code_of(cmd_add, args(stdin(tmp_path, twice)), host)
    assert (err.code, err.msg) == (107, "port 9000/tcp is requested twice")
    assert host.driver.calls == [] and records(tmp_path) == []


def test_firewall_failure_rolls_back(tmp_path: Path, host: Host) -> None:
    host.driver.fail_on.add("setup_ports")
    err = code_of(cmd_add, args(stdin(tmp_path, M8080)), host)
    assert err.code == 102 and records(tmp_path) == [] and host.localnet == []


def test_del_by_record_and_tag(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080)), host)
    cmd_del(args(stdin(tmp_path, None, None), command="DEL"), host)  # no runtimeConfig, no prevResult
    assert host.driver.plans == {} and records(tmp_path) == []
    assert host.localnet == [("enable", "br-test"), ("restore", "web")]
    calls = len(host.driver.calls)
    cmd_del(args(stdin(tmp_path, None, None), command="DEL"), host)  # twice: the fast no-op
    assert len(host.driver.calls) == calls


def test_failed_del_keeps_the_record_for_a_retry(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080)), host)
    host.driver.fail_on.add("teardown_ports")
    assert code_of(cmd_del, args(stdin(tmp_path, None, None), command="DEL"), host).code == 102
    assert records(tmp_path) == ["web/c1-eth0.json"]
    host.driver.fail_on.clear()
    cmd_del(args(stdin(tmp_path, None, None), command="DEL"), host)
    assert records(tmp_path) == [] and host.driver.plans == {}


def test_check(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080)), host)
    cmd_check(args(stdin(tmp_path, M8080), command="CHECK"), host)
    err = code_of(cmd_check, args(stdin(tmp_path, [{"hostPort": 8081, "containerPort": 80}]),
                                  command="CHECK"), host)
    assert err.code == 102 and "ports of" in err.msg
    assert code_of(cmd_check, args(stdin(tmp_path, M8080, None), command="CHECK"), host).code == 7
    (tmp_path / "_portmap" / "web" / "c1-eth0.json").unlink()
    assert "no record" in code_of(cmd_check, args(stdin(tmp_path, M8080), command="CHECK"), host).msg


def test_gc_keeps_valid_attachments(tmp_path: Path, host: Host) -> None:
    for cid, port in (("keep", 8080), ("gone", 8081)):
        cmd_add(args(stdin(tmp_path, [{"hostPort": port, "containerPort": 80}]), cid=cid), host)
    valid = [{"containerID": "keep", "ifname": "eth0"}]
    cmd_gc(CmdArgs(command="GC", stdin=stdin(tmp_path, None, None, extra={"cni.dev/valid-attachments": valid})), host)
    assert list(host.driver.plans) == ["netctl net=web cid=keep if=eth0"]
    assert records(tmp_path) == ["web/keep-eth0.json"]


def funcs_on(host: Host) -> PluginFuncs:
    """The plugin's FUNCS (same versions, CNI_ARGS keys) with every command on ``host``."""
    return dataclasses.replace(FUNCS, add=partial(cmd_add, host=host),
                               delete=partial(cmd_del, host=host),
                               check=partial(cmd_check, host=host), gc=partial(cmd_gc, host=host))


def test_errors_through_the_skeleton_are_json(tmp_path: Path, host: Host) -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/c",
           "CNI_IFNAME": "eth0", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web1;FOO=1"}
    out = run(funcs_on(host), env, stdin(tmp_path, [{"hostPort": "x"}]))
    obj = json.loads(out.stdout)
    assert out.exit_code == 1 and obj["code"] == 7 and "host port" in obj["msg"]
    out = run(funcs_on(host), dict(env, CNI_ARGS="FOO=1"), stdin(tmp_path, M8080))
    assert json.loads(out.stdout)["code"] == 4  # unknown CNI_ARGS key without IgnoreUnknown
    out = run(funcs_on(host), env, stdin(tmp_path, M8080))
    assert out.exit_code == 0 and json.loads(out.stdout) == dict(PREV, cniVersion="1.1.0")
    assert list(host.driver.plans) == ["netctl net=web cid=c1 if=eth0"]


def test_host_addresses_owners_and_routes_come_from_the_host(tmp_path: Path, host: Host) -> None:
    # a hostIP the namespace does not have is a config error (7), before any firewall call
    err = code_of(cmd_add, args(stdin(tmp_path, [{"hostPort": 80, "containerPort": 80,
                                                  "hostIP": "203.0.113.9"}])), host)
    assert (err.code, err.msg) == (7, "cannot publish 203.0.113.9:80/tcp: 203.0.113.9 is not an "
                                      "address of this host")
    # a busy port names the process holding the socket
    host.sockets.append(HostSocket(6, "tcp", "::", 8080, 41))
    host.owners[41] = "nginx (pid 7)"
    err = code_of(cmd_add, args(stdin(tmp_path, M8080)), host)
    assert (err.code, err.details) == (107, "[::]:8080/tcp is held by nginx (pid 7)")
    assert host.driver.calls == [] and records(tmp_path) == []
    # no on-link route to the container: published, but route_localnet is left alone
    host.sockets.clear()
    host.dev = None
    cmd_add(args(stdin(tmp_path, M8080)), host)
    rec = json.loads((tmp_path / "_portmap" / "web" / "c1-eth0.json").read_text())
    assert (rec["localnet"], rec["dev"], host.localnet) == (False, "", [])


def test_check_reports_route_localnet_turned_off(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080)), host)
    host.localnet.clear()  # someone turned it off behind our back
    err = code_of(cmd_check, args(stdin(tmp_path, M8080), command="CHECK"), host)
    assert (err.code, err.msg) == (102, "route_localnet is off on br-test: 127.0.0.1 does not answer")


def test_the_fake_and_the_real_host_have_the_same_interface(host: Host) -> None:
    assert isinstance(host, PortmapHost) and isinstance(SYSTEM, PortmapHost)
    assert isinstance(SYSTEM, SystemHost)


#: ADD, CHECK and DEL without mappings on the real host, then the host modules that got loaded
NO_MAPPINGS = """
import json, sys
from netplugins.cni.skel import CmdArgs
from netplugins.meta import portmap
data = sys.argv[1].encode()
for cmd in ("ADD", "CHECK", "DEL"):
    fn = {"ADD": portmap.cmd_add, "CHECK": portmap.cmd_check, "DEL": portmap.cmd_del}[cmd]
    fn(CmdArgs(command=cmd, container_id="c1", netns="/run/netns/c", ifname="eth0", stdin=data))
print(json.dumps(sorted(m for m in sys.modules if m.startswith("netplugins.") and m.rpartition(".")[2]
                        in ("portmap_host", "hostsockets", "localnet", "conntrack", "driver", "ports"))))
"""


def test_no_mappings_path_loads_no_host_module(tmp_path: Path) -> None:
    # the real host's modules load on first use: a container without ports pays nothing
    # (and, with nothing to publish, the real host is not touched at all)
    out = subprocess.run([sys.executable, "-c", NO_MAPPINGS, stdin(tmp_path, []).decode()],
                         check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == []
    assert not (tmp_path / "_portmap").exists()
