"""A runtime that times out kills the plugin process mid-ADD, then sends DEL (the spec's
"ADD is always followed by DEL"). After that DEL returned 0 nothing of the attachment may
remain, and no address may be held by two live containers, whether the plugin ran
in-process or through the agent (where the killed process is only the thin shim and a
worker goes on: it must undo its ADD, and the DEL must wait for it).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cniutil import REFERENCE_DIR, plugin_dir, plugin_mode, start_daemon
from nsutil import Netns
from test_bridge_helpers import BridgeLab, addrs_of, link_names, make_lab

from netplugins.main.bridge_plan import host_veth_name

pytestmark = pytest.mark.netns

ROUNDS = 100


def _popen_add(lab: BridgeLab, conf: dict, ctr: Netns, cid: str) -> subprocess.Popen[bytes]:
    import json

    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": "ADD",
           "CNI_CONTAINERID": cid, "CNI_IFNAME": "eth0", "CNI_NETNS": ctr.path,
           "CNI_PATH": f"{plugin_dir()}:{REFERENCE_DIR}", "NETCTL_PLUGIND": "0",
           "NETCTL_LOCK_DIR": os.environ.get("NETCTL_LOCK_DIR", "")} | lab.env
    proc = subprocess.Popen(lab.host.cmd([os.path.join(plugin_dir(), "bridge")]), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    return proc


def _nothing_left(lab: BridgeLab, victim: Netns, cid: str, network: str) -> list[str]:
    left = []
    if host_veth_name(cid, "eth0") in link_names(lab.host):
        left.append("host veth")
    if "eth0" in link_names(victim):
        left.append(f"container eth0 {addrs_of(victim, 'eth0')}")
    if any(c == cid for _a, c, _i in lab.leases(network)):
        left.append("lease")
    if any(r.startswith(cid) for r in lab.records(network)):
        left.append("attachment record")
    return left


@pytest.mark.parametrize("mode", ["daemon", "inproc"])
def test_adds_killed_at_random_moments_leave_nothing(mode: str, host_ns: Netns,
                                                     make_ns: Callable[..., Netns],
                                                     tmp_path: Path) -> None:
    network = "killnet"
    with plugin_mode(mode, host_ns, tmp_path) as env:
        lab = make_lab(host_ns, tmp_path, env)
        conf = lab.conf(network, "10.77.0.0/24")
        # how long an ADD takes here: kills land anywhere from before its start to after
        # its end
        probe = make_ns("nctest-kp")
        t0 = time.monotonic()
        lab.add(conf, probe, "probe0001")
        span = (time.monotonic() - t0) * 1.3
        survivors: dict[str, tuple[Netns, str]] = {"probe0001": (probe, "")}
        victim = make_ns("nctest-kv")
        rng = random.Random(4711)
        completed = 0
        for i in range(ROUNDS):
            cid = f"victim{i:04d}"
            proc = _popen_add(lab, conf, victim, cid)
            time.sleep(rng.uniform(0, span))
            proc.send_signal(signal.SIGKILL)
            if proc.wait() == 0:
                completed += 1  # finished before the kill: the runtime saw success
            lab.delete(conf, victim, cid)
            left = _nothing_left(lab, victim, cid, network)
            assert not left, f"round {i}: DEL returned 0 but left {left}"
            if i % 10 == 9:
                ctr = make_ns("nctest-ks")
                res = lab.add(conf, ctr, f"alive{i:04d}")
                survivors[f"alive{i:04d}"] = (ctr, res["ips"][0]["address"])
        addresses = [addrs_of(ns, "eth0") for ns, _ in survivors.values()]
        flat = [a for s in addresses for a in s]
        assert len(flat) == len(set(flat)) == len(survivors), f"duplicate addresses: {addresses}"
        assert sorted(c for _a, c, _i in lab.leases(network)) == sorted(survivors)
        for cid, (ns, _addr) in survivors.items():
            lab.delete(conf, ns, cid)
        lab.assert_clean(network, expect_links=None)
        # some kills must have hit a running ADD, or the test proved nothing
        assert completed < ROUNDS, "every ADD finished before its kill"


def test_agent_killed_mid_add(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path) -> None:
    """SIGKILL of the agent while ADDs run through it: each call completes or fails cleanly
    (the shim reports code 11 when its worker died), later calls work in-process, and a new
    agent serves again."""

    sock = str(tmp_path / "plugind.sock")
    agent = start_daemon(host_ns, sock)
    env = {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": sock}
    lab = make_lab(host_ns, tmp_path, env)
    conf = lab.conf("agentkill", "10.78.0.0/24")
    ctrs = [make_ns("nctest-ak") for _ in range(6)]
    procs = [_popen_add(lab, conf, ctr, f"ak{i}") for i, ctr in enumerate(ctrs)]
    time.sleep(0.02)
    agent.kill()
    agent.wait()
    outcomes = []
    for i, (ctr, p) in enumerate(zip(ctrs, procs, strict=True)):
        p.wait(60)
        outcomes.append(p.returncode)
        if p.returncode == 0:
            # it completed: CHECK agrees with what is in the kernel
            assert "eth0" in link_names(ctr)
        lab.delete(conf, ctr, f"ak{i}")  # the runtime's DEL, as after any ADD
        assert _nothing_left(lab, ctr, f"ak{i}", "agentkill") == []
    # without an agent, calls run in-process
    res = lab.add(conf, ctrs[0], "after1")
    assert res["ips"][0]["address"].startswith("10.78.0.")
    # a new agent adopts: the same socket serves again
    os.unlink(sock)
    agent2 = start_daemon(host_ns, sock)
    try:
        lab.delete(conf, ctrs[0], "after1")
        res = lab.add(conf, ctrs[1], "after2")
        lab.delete(conf, ctrs[1], "after2")
        lab.assert_clean("agentkill", expect_links=None)
    finally:
        agent2.terminate()
        agent2.wait(30)

