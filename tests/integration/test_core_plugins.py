"""loopback, host and container plugins, exec'd for real for every CNI version we claim."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cniutil import ALL_VERSIONS, REFERENCE_DIR, run_plugin
from nsutil import Netns

pytestmark = pytest.mark.netns


def lo_conf(version: str) -> dict:
    return {"cniVersion": version, "name": "lo-net", "type": "loopback"}


def lo_state(ns: Netns) -> dict:
    return json.loads(ns.run(["ip", "-j", "link", "show", "lo"]).stdout)[0]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_loopback_add_check_del(version: str, host_ns: Netns, ctr_ns: Netns,
                                plugin_env: dict[str, str]) -> None:
    ctr_ns.run(["ip", "link", "set", "lo", "down"])
    res = run_plugin(host_ns, "loopback", "ADD", lo_conf(version), netns=ctr_ns.path,
                     ifname="lo", env=plugin_env).ok().json
    assert res["cniVersion"] == version
    assert res["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": ctr_ns.path}]
    addrs = {ip["address"] for ip in res["ips"]}
    assert addrs == {"127.0.0.1/8", "::1/128"}
    assert all(ip["interface"] == 0 for ip in res["ips"])
    assert all(("version" in ip) == (version < "1.0.0") for ip in res["ips"])
    assert "UP" in lo_state(ctr_ns)["flags"]
    if version >= "0.4.0":
        prev = dict(lo_conf(version), prevResult=res)
        run_plugin(host_ns, "loopback", "CHECK", prev, netns=ctr_ns.path, ifname="lo",
                   env=plugin_env).ok()
    run_plugin(host_ns, "loopback", "DEL", lo_conf(version), netns=ctr_ns.path, ifname="lo",
               env=plugin_env).ok()
    assert "UP" not in lo_state(ctr_ns)["flags"]
    # DEL twice succeeds
    run_plugin(host_ns, "loopback", "DEL", lo_conf(version), netns=ctr_ns.path, ifname="lo",
               env=plugin_env).ok()


def test_loopback_same_as_reference(host_ns: Netns, make_ns) -> None:  # type: ignore[no-untyped-def]
    if not os.path.exists(f"{REFERENCE_DIR}/loopback"):
        pytest.skip("containernetworking-plugins not installed")
    a, b = make_ns(), make_ns()
    ours = run_plugin(host_ns, "loopback", "ADD", lo_conf("1.0.0"), netns=a.path, ifname="lo").ok().json
    ref = run_plugin(host_ns, "loopback", "ADD", lo_conf("1.0.0"), netns=b.path, ifname="lo",
                     exe=f"{REFERENCE_DIR}/loopback").ok().json
    for res, ns in ((ours, a), (ref, b)):
        for iface in res["interfaces"]:
            assert iface.pop("sandbox") == ns.path
    assert ours == ref


def test_loopback_prev_result_passthrough(host_ns: Netns, ctr_ns: Netns) -> None:
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}], "dns": {}}
    res = run_plugin(host_ns, "loopback", "ADD", dict(lo_conf("1.0.0"), prevResult=prev),
                     netns=ctr_ns.path, ifname="lo").ok().json
    assert res["ips"] == [{"address": "10.0.0.2/24"}]


def test_loopback_netns_missing(host_ns: Netns, plugin_env: dict[str, str]) -> None:
    res = run_plugin(host_ns, "loopback", "ADD", lo_conf("1.0.0"), netns="/run/netns/nctest-absent",
                     ifname="lo", env=plugin_env)
    assert res.rc != 0 and res.json["code"] == 104 and "nctest-absent" in res.json["msg"]
    run_plugin(host_ns, "loopback", "DEL", lo_conf("1.0.0"), netns="/run/netns/nctest-absent",
               ifname="lo", env=plugin_env).ok()
    run_plugin(host_ns, "loopback", "DEL", lo_conf("1.0.0"), netns="", ifname="lo", env=plugin_env).ok()


def test_loopback_netns_not_a_namespace(host_ns: Netns, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-netns"
    bogus.write_text("")
    res = run_plugin(host_ns, "loopback", "ADD", lo_conf("1.0.0"), netns=str(bogus), ifname="lo")
    assert res.rc != 0 and res.json["code"] == 104 and "not a network namespace" in res.json["msg"]
    run_plugin(host_ns, "loopback", "DEL", lo_conf("1.0.0"), netns=str(bogus), ifname="lo").ok()


@pytest.mark.parametrize("env,code,word", [
    ({"CNI_IFNAME": "x" * 16}, 4, "CNI_IFNAME"),
    ({"CNI_CONTAINERID": "bad id"}, 4, "CNI_CONTAINERID"),
    ({"CNI_NETNS": ""}, 4, "CNI_NETNS"),
    ({"CNI_COMMAND": "FROB"}, 4, "CNI_COMMAND"),
])
def test_bad_env(env: dict, code: int, word: str, host_ns: Netns, ctr_ns: Netns,
                 plugin_env: dict[str, str]) -> None:
    res = run_plugin(host_ns, "loopback", "ADD", lo_conf("1.0.0"), netns=ctr_ns.path, ifname="lo",
                     env=plugin_env | env)
    assert res.rc != 0
    assert res.json["code"] == code and word in res.json["msg"]
    assert "Traceback" not in res.stderr


def test_bad_stdin_and_version(host_ns: Netns, ctr_ns: Netns, plugin_env: dict[str, str]) -> None:
    res = run_plugin(host_ns, "loopback", "ADD", b"{nope", netns=ctr_ns.path, ifname="lo", env=plugin_env)
    assert res.rc != 0 and res.json["code"] == 6
    res = run_plugin(host_ns, "loopback", "ADD", lo_conf("9.9.9"), netns=ctr_ns.path, ifname="lo",
                     env=plugin_env)
    assert res.rc != 0 and res.json["code"] == 1


def test_version_command(host_ns: Netns, plugin_env: dict[str, str]) -> None:
    for ptype in ("loopback", "host", "container"):
        res = run_plugin(host_ns, ptype, "VERSION", {"cniVersion": "1.1.0"}, env=plugin_env).ok().json
        assert res == {"cniVersion": "1.1.0", "supportedVersions": list(ALL_VERSIONS)}


def host_conf(version: str = "1.0.0") -> dict:
    return {"cniVersion": version, "name": "host", "type": "host"}


def test_host_plugin_reports_host_interfaces(host_ns: Netns, ctr_ns: Netns,
                                             plugin_env: dict[str, str]) -> None:
    # no dummy module on every kernel: a bridge is an interface that needs no peer
    host_ns.run(["ip", "link", "add", "dummy7", "type", "bridge"])
    host_ns.run(["ip", "addr", "add", "198.51.100.7/24", "dev", "dummy7"])
    res = run_plugin(host_ns, "host", "ADD", host_conf(), netns=host_ns.path, env=plugin_env).ok().json
    names = [i["name"] for i in res["interfaces"]]
    assert names == ["lo", "dummy7"]
    assert {"interface": 1, "address": "198.51.100.7/24"} in res["ips"]
    # any other namespace is refused
    bad = run_plugin(host_ns, "host", "ADD", host_conf(), netns=ctr_ns.path, env=plugin_env)
    assert bad.rc != 0 and bad.json["code"] == 104
    run_plugin(host_ns, "host", "CHECK", host_conf(), netns=host_ns.path, env=plugin_env).ok()
    run_plugin(host_ns, "host", "DEL", host_conf(), netns=host_ns.path, env=plugin_env).ok()
    assert "dummy7" in host_ns.run(["ip", "-br", "link"]).stdout


def join_conf(owner_ns: Netns, data_dir: Path, owner: str = "web1") -> dict:
    return {"cniVersion": "1.1.0", "name": "joined", "type": "container", "container": owner,
            "ownerNetns": owner_ns.path, "dataDir": str(data_dir)}


def test_container_plugin_join(host_ns: Netns, make_ns, tmp_path: Path,  # type: ignore[no-untyped-def]
                               plugin_env: dict[str, str]) -> None:
    owner, other = make_ns(), make_ns()
    owner.run(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"])
    owner.run(["ip", "addr", "add", "10.44.0.2/24", "dev", "eth0"])
    owner.run(["ip", "link", "set", "eth0", "up"])
    conf = join_conf(owner, tmp_path)
    res = run_plugin(host_ns, "container", "ADD", conf, container_id="joiner", netns=owner.path,
                     env=plugin_env).ok().json
    names = [i["name"] for i in res["interfaces"]]
    assert sorted(names) == ["eth0", "lo", "peer0"]
    assert {"interface": names.index("eth0"), "address": "10.44.0.2/24"} in res["ips"]
    record = tmp_path / "web1" / "joiner-eth0.json"
    assert json.loads(record.read_text())["owner"] == "web1"
    run_plugin(host_ns, "container", "CHECK", conf, container_id="joiner", netns=owner.path,
               env=plugin_env).ok()
    # joined twice: refused, record unchanged
    again = run_plugin(host_ns, "container", "ADD", conf, container_id="joiner", netns=owner.path,
                       env=plugin_env)
    assert again.rc != 0 and again.json["code"] == 106
    # a namespace that is not the owner's
    wrong = run_plugin(host_ns, "container", "ADD", conf, container_id="j2", netns=other.path,
                       env=plugin_env)
    assert wrong.rc != 0 and wrong.json["code"] == 104
    assert not (tmp_path / "web1" / "j2-eth0.json").exists()
    # DEL removes only the record: the owner's interface stays
    run_plugin(host_ns, "container", "DEL", conf, container_id="joiner", netns=owner.path,
               env=plugin_env).ok()
    assert not record.exists()
    assert "10.44.0.2/24" in owner.run(["ip", "-br", "addr", "show", "eth0"]).stdout
    run_plugin(host_ns, "container", "DEL", conf, container_id="joiner", netns=owner.path,
               env=plugin_env).ok()


def test_container_plugin_gc(host_ns: Netns, ctr_ns: Netns, tmp_path: Path) -> None:
    conf = join_conf(ctr_ns, tmp_path)
    for cid in ("keep", "drop"):
        run_plugin(host_ns, "container", "ADD", conf, container_id=cid, netns=ctr_ns.path).ok()
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]})
    run_plugin(host_ns, "container", "GC", gc).ok()
    assert sorted(p.name for p in (tmp_path / "web1").iterdir()) == ["keep-eth0.json"]


def test_container_plugin_bad_config(host_ns: Netns, ctr_ns: Netns, tmp_path: Path) -> None:
    conf = join_conf(ctr_ns, tmp_path)
    del conf["ownerNetns"]
    res = run_plugin(host_ns, "container", "ADD", conf, netns=ctr_ns.path)
    assert res.rc != 0 and res.json["code"] == 7 and "ownerNetns" in res.json["msg"]
