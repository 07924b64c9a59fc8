"""Our host-local executable, run as a runtime runs it, side by side with the reference one.

host-local touches no network namespace (it only reads its config and writes its lease
database under tmp_path), so most of these run as plain processes without root; the
warm-daemon variant needs the throwaway host namespace the daemon lives in.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cniutil import REFERENCE_DIR, plugin_dir, run_plugin
from netaddr import IPAddress, IPNetwork
from nsutil import Netns

from ipam.sqlstore import SqliteStore

REFERENCE = f"{REFERENCE_DIR}/host-local"
needs_reference = pytest.mark.skipif(not os.path.exists(REFERENCE), reason="reference host-local not installed")


def netconf(data_dir: Path, version: str = "1.0.0", **ipam: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "type": "host-local", "dataDir": str(data_dir),
        "ranges": [[{"subnet": "10.40.0.0/24", "rangeStart": "10.40.0.10", "rangeEnd": "10.40.0.200"}],
                   [{"subnet": "fd40::/64"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16", "gw": "10.40.0.1"}],
    }
    section.update(ipam)
    return {"cniVersion": version, "name": "execnet", "type": "bridge", "ipam": section}


def test_version_and_about() -> None:
    res = run_plugin(None, "host-local", "VERSION", {"cniVersion": "1.1.0"}).ok().json
    assert res == {"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}
    about = subprocess.run([os.path.join(plugin_dir(), "host-local")], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"]})
    assert about.returncode == 0 and "host-local" in about.stderr


def test_lifecycle(tmp_path: Path) -> None:
    conf = netconf(tmp_path, "1.1.0")
    res = run_plugin(None, "host-local", "ADD", conf, netns="/run/netns/none").ok().json
    assert [ip["address"] for ip in res["ips"]] == ["10.40.0.10/24", "fd40::2/64"]
    run_plugin(None, "host-local", "CHECK", dict(conf, prevResult=res), netns="/run/netns/none").ok()
    dup = run_plugin(None, "host-local", "ADD", conf, netns="/run/netns/none")
    assert dup.rc == 1 and dup.json["code"] == 111
    assert "duplicate allocation is not allowed" in dup.json["msg"]
    run_plugin(None, "host-local", "STATUS", conf).ok()
    run_plugin(None, "host-local", "GC", dict(conf, **{"cni.dev/valid-attachments": [
        {"containerID": "ctr1", "ifname": "eth0"}]})).ok()
    assert len(SqliteStore(str(tmp_path / "execnet.db")).leases()) == 2
    # DEL without CNI_NETNS, twice
    run_plugin(None, "host-local", "DEL", conf).ok()
    run_plugin(None, "host-local", "DEL", conf).ok()
    assert SqliteStore(str(tmp_path / "execnet.db")).leases() == []
    bad = run_plugin(None, "host-local", "ADD", conf, netns="/run/netns/none", cni_args="IP=10.9.9.9")
    assert bad.rc == 1
    assert bad.json == {"cniVersion": "1.1.0", "code": 7,
                        "msg": "invalid address 10.9.9.9: it does not belong to any of this network's subnets"}
    assert "Traceback" not in bad.stderr


def shape(res: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between two host-local results for the same config."""
    return {
        "keys": sorted(res),
        "ip_keys": [sorted(ip) for ip in res["ips"]],
        "gateways": [ip.get("gateway") for ip in res["ips"]],
        "prefixes": [ip["address"].split("/")[1] for ip in res["ips"]],
        "versions": [ip.get("version") for ip in res["ips"]],
        "routes": res.get("routes"),
        "dns": res.get("dns"),
        "cniVersion": res["cniVersion"],
    }


@needs_reference
@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_same_shape_as_reference(tmp_path: Path, version: str) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.40.0.1\nsearch example.org\noptions ndots:2\n")
    ours = run_plugin(None, "host-local", "ADD", netconf(tmp_path / "ours", version, resolvConf=str(resolv)),
                      netns="/run/netns/none").ok().json
    ref = run_plugin(None, "host-local", "ADD", netconf(tmp_path / "ref", version, resolvConf=str(resolv)),
                     netns="/run/netns/none", exe=REFERENCE).ok().json
    assert shape(ours) == shape(ref)
    ranges = netconf(tmp_path)["ipam"]["ranges"]
    for a, b, rs in zip(ours["ips"], ref["ips"], ranges, strict=True):
        rng = rs[0]
        for addr in (IPAddress(a["address"].split("/")[0]), IPAddress(b["address"].split("/")[0])):
            assert addr in IPNetwork(rng["subnet"])
            if "rangeStart" in rng:
                assert IPAddress(rng["rangeStart"]) <= addr <= IPAddress(rng["rangeEnd"])
    # both refuse the same container and interface twice with the same words
    for exe, sub in ((None, "ours"), (REFERENCE, "ref")):
        dup = run_plugin(None, "host-local", "ADD", netconf(tmp_path / sub, version), netns="/run/netns/none",
                         exe=exe)
        assert dup.rc == 1 and "duplicate allocation is not allowed" in dup.json["msg"]


@needs_reference
def test_same_requested_address_and_legacy_config_as_reference(tmp_path: Path) -> None:
    def legacy(d: Path) -> dict[str, Any]:
        return {"cniVersion": "0.4.0", "name": "legacy", "type": "bridge",
                "ipam": {"type": "host-local", "dataDir": str(d), "subnet": "10.41.0.0/16",
                         "gateway": "10.41.0.254", "routes": [{"dst": "0.0.0.0/0"}]}}

    args = "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.41.3.4"
    ours = run_plugin(None, "host-local", "ADD", legacy(tmp_path / "o"), netns="/x", cni_args=args).ok().json
    ref = run_plugin(None, "host-local", "ADD", legacy(tmp_path / "r"), netns="/x", cni_args=args,
                     exe=REFERENCE).ok().json
    assert ours == ref


def test_50_concurrent_executables(tmp_path: Path) -> None:
    conf = json.dumps(netconf(tmp_path)).encode()
    exe = os.path.join(plugin_dir(), "host-local")
    procs = []
    for i in range(50):
        env = {"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"c{i}",
               "CNI_IFNAME": "eth0", "CNI_NETNS": "/run/netns/none", "CNI_PATH": plugin_dir(),
               "NETCTL_PLUGIND": "0"}
        p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        procs.append(p)
    for p in procs:  # everyone gets its stdin only now: they start allocating together
        assert p.stdin is not None
        p.stdin.write(conf)
        p.stdin.close()
    outs = []
    for p in procs:
        assert p.stdout is not None
        out = p.stdout.read()
        assert p.wait(60) == 0, out
        outs.append(json.loads(out))
    v4 = [r["ips"][0]["address"] for r in outs]
    v6 = [r["ips"][1]["address"] for r in outs]
    assert len(set(v4)) == 50 and len(set(v6)) == 50
    stored = SqliteStore(str(tmp_path / "execnet.db")).leases()
    assert len(stored) == 100 and not any(le.pending for le in stored)


def test_sigkill_executables_at_random_delays(tmp_path: Path) -> None:
    """Kill real ADD/DEL processes at random points; the store stays consistent throughout."""
    conf = json.dumps(netconf(tmp_path)).encode()
    exe = os.path.join(plugin_dir(), "host-local")
    rnd = random.Random(7)
    completed: dict[str, set[str]] = {}
    deleted: set[str] = set()

    def start(command: str, cid: str) -> subprocess.Popen[bytes]:
        env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_CONTAINERID": cid,
               "CNI_IFNAME": "eth0", "CNI_NETNS": "/run/netns/none", "NETCTL_PLUGIND": "0"}
        p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env=env)
        assert p.stdin is not None
        p.stdin.write(conf)
        p.stdin.close()
        return p

    for i in range(40):
        command = "DEL" if completed and rnd.random() < 0.3 else "ADD"
        cid = rnd.choice(sorted(completed)) if command == "DEL" else f"k{i}"
        p = start(command, cid)
        time.sleep(rnd.uniform(0.0, 0.25))
        p.send_signal(signal.SIGKILL)
        assert p.stdout is not None
        out = p.stdout.read()
        rc = p.wait()
        if rc == 0 and command == "ADD":
            completed[cid] = {ip["address"].split("/")[0] for ip in json.loads(out)["ips"]}
        elif command == "DEL":
            completed.pop(cid)  # released or not: no longer asserted
            deleted.add(cid)
        db = tmp_path / "execnet.db"
        if not db.exists():
            continue
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        held: dict[str, set[str]] = {}
        for le in SqliteStore(str(db)).leases():
            held.setdefault(le.container_id, set()).add(str(le.address))
        for c, addrs in completed.items():
            assert held.get(c) == addrs, (c, held.get(c), addrs)
        assert all(len(a) == 2 for a in held.values())  # all or nothing per attachment
    assert completed, "no ADD ever completed: the delays are too short to test anything"


@pytest.mark.netns
def test_through_the_warm_daemon(host_ns: Netns, tmp_path: Path, plugin_env: dict[str, str]) -> None:
    conf = netconf(tmp_path, "1.1.0")
    res = run_plugin(host_ns, "host-local", "ADD", conf, netns="/run/netns/none", env=plugin_env).ok().json
    assert [ip["address"] for ip in res["ips"]] == ["10.40.0.10/24", "fd40::2/64"]
    run_plugin(host_ns, "host-local", "CHECK", dict(conf, prevResult=res), netns="/run/netns/none",
               env=plugin_env).ok()
    dup = run_plugin(host_ns, "host-local", "ADD", conf, netns="/run/netns/none", env=plugin_env)
    assert dup.json["code"] == 111
    run_plugin(host_ns, "host-local", "DEL", conf, env=plugin_env).ok()
    assert SqliteStore(str(tmp_path / "execnet.db")).leases() == []
