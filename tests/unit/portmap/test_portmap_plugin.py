"""The portmap plugin's commands over fakes (conftest.py): records, rollback, messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from portmap_fakes import Host

from netplugins.cni.errors import CniError
from netplugins.cni.skel import CmdArgs, run
from netplugins.firewall.ports import Published
from netplugins.meta.hostsockets import HostSocket
from netplugins.meta.portmap import FUNCS, cmd_add, cmd_check, cmd_del, cmd_gc

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


def code_of(fn: Any, a: CmdArgs) -> CniError:
    with pytest.raises(CniError) as err:
        fn(a)
    return err.value


def test_without_mappings_nothing_is_touched(tmp_path: Path, host: Host) -> None:
    cases: tuple[list[dict[str, Any]] | None, ...] = (None, [])
    for mappings in cases:
        result = cmd_add(args(stdin(tmp_path, mappings)))
        assert result.to_dict("1.0.0") == PREV
        cmd_check(args(stdin(tmp_path, mappings), command="CHECK"))
        cmd_del(args(stdin(tmp_path, mappings, None), command="DEL"))
    assert host.driver_names == [] and host.driver.calls == []
    assert not (tmp_path / "_portmap").exists()


def test_add_records_and_publishes(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080 + [{"hostPort": 53, "containerPort": 53, "protocol": "udp"}]),
                 name="web1"))
    assert records(tmp_path) == ["web/c1-eth0.json"]
    rec = json.loads((tmp_path / "_portmap" / "web" / "c1-eth0.json").read_text())
    assert rec["name"] == "web1" and rec["tag"] == "netctl net=web cid=c1 if=eth0"
    assert rec["localnet"] and rec["dev"] == "br-test" and rec["driver"] == "fake"
    assert list(host.driver.plans) == ["netctl net=web cid=c1 if=eth0"]
    assert host.localnet == [("enable", "br-test")] and host.flushed == [2]
    cmd_check(args(stdin(tmp_path, M8080 + [{"hostPort": 53, "containerPort": 53, "protocol": "udp"}]),
                   command="CHECK"))


def test_conflicts_name_the_owner_and_leave_nothing(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080), cid="c1", name="web1"))
    err = code_of(cmd_add, args(stdin(tmp_path, M8080), cid="c2", name="web2"))
    assert err.code == 107 and err.msg == "port 8080/tcp is already allocated by container web1"
    assert records(tmp_path) == ["web/c1-eth0.json"]
    # without a name (no K8S_POD_NAME) the container ID stands in
    cmd_add(args(stdin(tmp_path, [{"hostPort": 9000, "containerPort": 80}]), cid="c3"))
    err = code_of(cmd_add, args(stdin(tmp_path, [{"hostPort": 9000, "containerPort": 80}]), cid="c4"))
    assert err.msg == "port 9000/tcp is already allocated by container c3"
    # the same container asking the same port through another network
    prev1 = dict(PREV, interfaces=[{"name": "br1"}, {"name": "eth1", "sandbox": "/run/netns/c"}],
                 ips=[{"address": "10.89.0.2/24", "interface": 1}])
    err = code_of(cmd_add, args(stdin(tmp_path, M8080, prev1, net="other"), cid="c1", ifname="eth1"))
    assert "already published by this container through its interface eth0 on network web" in err.msg
    host.driver.foreign.append(Published(4, "tcp", None, 7000, 7000, None, "10.9.9.9:70"))
    err = code_of(cmd_add, args(stdin(tmp_path, [{"hostPort": 7000, "containerPort": 80}]), cid="c5"))
    assert err.msg == "port 7000/tcp is already allocated by an entry netctl did not make"


def test_host_sockets_and_twice_requested_ports(tmp_path: Path, host: Host) -> None:
    host.sockets.append(HostSocket(4, "tcp", "127.0.0.1", 8080, 0))
    err = code_of(cmd_add, args(stdin(tmp_path, M8080)))
    assert (err.code, err.msg) == (107, "port 8080/tcp is already in use on the host")
    assert err.details == "127.0.0.1:8080/tcp is held by a process"
    twice = [{"hostPort": 9000, "containerPort": 80}, {"hostPort": 9000, "containerPort": 81}]
    err = code_of(cmd_add, args(stdin(tmp_path, twice)))
    assert (err.code, err.msg) == (107, "port 9000/tcp is requested twice")
    assert host.driver.calls == [] and records(tmp_path) == []


def test_firewall_failure_rolls_back(tmp_path: Path, host: Host) -> None:
    host.driver.fail_on.add("setup_ports")
    err = code_of(cmd_add, args(stdin(tmp_path, M8080)))
    assert err.code == 102 and records(tmp_path) == [] and host.localnet == []


def test_del_by_record_and_tag(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080)))
    cmd_del(args(stdin(tmp_path, None, None), command="DEL"))  # no runtimeConfig, no prevResult
    assert host.driver.plans == {} and records(tmp_path) == []
    assert host.localnet == [("enable", "br-test"), ("restore", "web")]
    calls = len(host.driver.calls)
    cmd_del(args(stdin(tmp_path, None, None), command="DEL"))  # twice: the fast no-op
    assert len(host.driver.calls) == calls


def test_failed_del_keeps_the_record_for_a_retry(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080)))
    host.driver.fail_on.add("teardown_ports")
    assert code_of(cmd_del, args(stdin(tmp_path, None, None), command="DEL")).code == 102
    assert records(tmp_path) == ["web/c1-eth0.json"]
    host.driver.fail_on.clear()
    cmd_del(args(stdin(tmp_path, None, None), command="DEL"))
    assert records(tmp_path) == [] and host.driver.plans == {}


def test_check(tmp_path: Path, host: Host) -> None:
    cmd_add(args(stdin(tmp_path, M8080)))
    cmd_check(args(stdin(tmp_path, M8080), command="CHECK"))
    err = code_of(cmd_check, args(stdin(tmp_path, [{"hostPort": 8081, "containerPort": 80}]),
                                  command="CHECK"))
    assert err.code == 102 and "ports of" in err.msg
    assert code_of(cmd_check, args(stdin(tmp_path, M8080, None), command="CHECK")).code == 7
    (tmp_path / "_portmap" / "web" / "c1-eth0.json").unlink()
    assert "no record" in code_of(cmd_check, args(stdin(tmp_path, M8080), command="CHECK")).msg


def test_gc_keeps_valid_attachments(tmp_path: Path, host: Host) -> None:
    for cid, port in (("keep", 8080), ("gone", 8081)):
        cmd_add(args(stdin(tmp_path, [{"hostPort": port, "containerPort": 80}]), cid=cid))
    valid = [{"containerID": "keep", "ifname": "eth0"}]
    cmd_gc(CmdArgs(command="GC", stdin=stdin(tmp_path, None, None, extra={"cni.dev/valid-attachments": valid})))
    assert list(host.driver.plans) == ["netctl net=web cid=keep if=eth0"]
    assert records(tmp_path) == ["web/keep-eth0.json"]


def test_errors_through_the_skeleton_are_json(tmp_path: Path) -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/c",
           "CNI_IFNAME": "eth0", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web1;FOO=1"}
    out = run(FUNCS, env, stdin(tmp_path, [{"hostPort": "x"}]))
    obj = json.loads(out.stdout)
    assert out.exit_code == 1 and obj["code"] == 7 and "host port" in obj["msg"]
    out = run(FUNCS, dict(env, CNI_ARGS="FOO=1"), stdin(tmp_path, M8080))
    assert json.loads(out.stdout)["code"] == 4  # unknown CNI_ARGS key without IgnoreUnknown
