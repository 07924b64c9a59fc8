"""The agent (``netctl agent``) in a throwaway host namespace: firewall repair after a flush
(nftables and iptables-legacy), dnsd restarts, adoption at start, ``netctl firewall reload``
without an agent, status/stop, socket activation.

Deadlines below are generous (15 s) so that a loaded CI machine does not fail them; the
time from a flush to restored rules and dnsd's restart time are measured in
bench/agent_bench.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from netctlutil import Netctl, netctl_fixture, no_answer, ping  # noqa: F401 - the netctl fixture
from nsutil import Netns, wait_for
from test_portmap_helpers import CLIENT_IP, HOST_IP, ask_tcp

pytestmark = pytest.mark.netns

SERVE = "socat TCP-LISTEN:{port},fork,reuseaddr 'SYSTEM:echo {word} $SOCAT_PEERADDR'"
DEADLINE = 15.0


def status(n: Netctl) -> dict:
    proc = n("agent", "status", "--json", check=False)
    data: dict = json.loads(proc.stdout)
    return data


def agent_running(n: Netctl) -> bool:
    return bool(status(n).get("running"))


def two_networks(n: Netctl) -> None:
    """web (a1 publishing 8080 -> 80, a2) and other (b1): isolation and a published port."""
    n("create", "--subnet", "172.30.1.0/24", "web")
    n("create", "--subnet", "172.30.2.0/24", "other")
    n.run_d("a1", "--network", "web", "-p", "8080:80",
            cmd=("sh", "-c", SERVE.format(port=80, word="a1")))
    assert wait_for(lambda: ":0050 " in n.exec("a1", "cat", "/proc/net/tcp").stdout, timeout=10)
    n.run_d("a2", "--network", "web")
    n.run_d("b1", "--network", "other")
    assert wait_for(lambda: agent_running(n), timeout=30)


def guarded(host: Netns) -> bool:
    """The 127.0.0.0/8 guard (moby#45610) is in place."""
    out = host.run(["nft", "list", "table", "inet", "netctl-ports"], check=False).stdout
    return "127.0.0.0/8" in out


def assert_policy_holds(n: Netctl, host: Netns, client: Netns) -> None:
    assert ask_tcp(client, HOST_IP, 8080) == f"a1 {CLIENT_IP}"
    assert no_answer(n, "a2", n.ip("b1", "other")), "isolation between networks is gone"
    assert ping(n, "a2", n.ip("a1", "web"))
    assert guarded(host)


def wait_restored(n: Netctl, check: Callable[[], bool]) -> float:
    t0 = time.monotonic()
    assert wait_for(check, timeout=DEADLINE), "not restored in time"
    return time.monotonic() - t0


def reload_check_clean(n: Netctl) -> bool:
    return n("firewall", "reload", "--check", check=False).returncode == 0 and \
        "in sync" in n("firewall", "reload", "--check", check=False).stdout


def test_flush_is_repaired_nft(netctl: Netctl, host_ns: Netns, client: Netns) -> None:
    two_networks(netctl)
    assert_policy_holds(netctl, host_ns, client)
    host_ns.run(["nft", "flush", "ruleset"])
    wait_restored(netctl, lambda: reload_check_clean(netctl))
    assert_policy_holds(netctl, host_ns, client)
    st = status(netctl)
    assert st["firewall"]["repairs_total"] >= 2
    assert any("table inet netctl" in r for r in st["firewall"]["recent_repairs"])
    # a foreign table is never touched: an admin's own table survives our repairs
    host_ns.run(["nft", "add", "table", "inet", "admin"])
    host_ns.run(["nft", "delete", "table", "inet", "netctl-ports"])
    wait_restored(netctl, lambda: guarded(host_ns))
    assert "table inet admin" in host_ns.run(["nft", "list", "tables"]).stdout


WATCH = r"""
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from runtime.agent.nftwatch import NftWatch
w = NftWatch()
mine = subprocess.Popen(["nft", "add", "table", "inet", "nctest_mine"]); mine.wait()
other = subprocess.Popen(["nft", "add", "table", "inet", "nctest_other"]); other.wait()
time.sleep(0.2)
print(w.drain(lambda pid: pid == mine.pid), w.pending)
"""


def test_the_kernels_notifications_name_the_process(host_ns: Netns) -> None:
    """Real NEWGEN messages: a transaction of a process we call ours counts for nothing,
    another one counts once (runtime/agent/nftwatch.py)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(host_ns.cmd([sys.executable, "-c", WATCH, root]), capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.split() == ["1", "0"], out.stdout + out.stderr


def test_own_changes_need_no_pass_foreign_ones_do(netctl: Netctl, host_ns: Netns) -> None:
    """The plugins' own nftables transactions (made by the agent's workers) start no
    reconcile pass; anyone else's starts one at once."""
    two_networks(netctl)
    assert wait_for(lambda: status(netctl)["firewall"]["passes"] >= 1, timeout=DEADLINE)
    time.sleep(1.0)
    before = status(netctl)["firewall"]["passes"]
    for i in range(3):  # each publishes a port: a portmap transaction apiece, and its DEL
        netctl.run_d(f"p{i}", "--network", "web", "-p", f"{9100 + i}:80")
        netctl("container", "rm", "-f", f"p{i}")
    time.sleep(1.0)
    # at most the periodic check (every 10 s) came in between; before, every call made one
    assert status(netctl)["firewall"]["passes"] - before <= 1
    mark = status(netctl)["firewall"]["passes"]
    host_ns.run(["nft", "add", "table", "inet", "admin"])
    assert wait_for(lambda: status(netctl)["firewall"]["passes"] > mark, timeout=DEADLINE)


def test_flush_is_repaired_iptables(netctl: Netctl, host_ns: Netns, client: Netns) -> None:
    netctl.extra_env["NETCTL_FIREWALL_DRIVER"] = "iptables"
    two_networks(netctl)
    assert ask_tcp(client, HOST_IP, 8080) == f"a1 {CLIENT_IP}"
    assert no_answer(netctl, "a2", netctl.ip("b1", "other"))
    before = status(netctl)["firewall"]["repairs_total"]
    for table in ("filter", "nat", "raw"):
        host_ns.run(["iptables-legacy", "-t", table, "-F"])
    # iptables-legacy announces nothing: the agent's periodic check finds and repairs it
    wait_restored(netctl, lambda: status(netctl)["firewall"]["repairs_total"] > before)
    wait_restored(netctl, lambda: reload_check_clean(netctl))
    assert ask_tcp(client, HOST_IP, 8080) == f"a1 {CLIENT_IP}"
    assert no_answer(netctl, "a2", netctl.ip("b1", "other"))
    assert status(netctl)["firewall"]["repairs_total"] >= 1


def test_dnsd_is_restarted_and_check_reports_it_down(netctl: Netctl) -> None:
    netctl("create", "--subnet", "172.30.3.0/24", "dnsnet")
    netctl.run_d("c1", "--network", "dnsnet")
    netctl.run_d("c2", "--network", "dnsnet")
    assert wait_for(lambda: agent_running(netctl), timeout=30)
    assert wait_for(lambda: status(netctl)["dnsd"]["state"] == "running", timeout=DEADLINE)
    pid = status(netctl)["dnsd"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_restored(netctl, lambda: netctl.exec("c1", "getent", "hosts", "c2", check=False).returncode == 0)
    # the status file is rewritten at most once a second
    assert wait_for(lambda: status(netctl)["dnsd"]["pid"] not in (None, pid), timeout=DEADLINE)
    assert status(netctl)["dnsd"]["restarts"] >= 1
    # without an agent a dead dnsd stays dead, and `netctl check` says so
    netctl("agent", "stop")
    netctl.extra_env["NETCTL_PLUGIND"] = "0"  # keep netctl from starting a new agent
    proc = netctl("check", "c1", check=False)
    assert proc.returncode != 0 and "embedded DNS of network 'dnsnet' is down" in proc.stdout
    del netctl.extra_env["NETCTL_PLUGIND"]
    netctl("agent", "start")
    assert wait_for(lambda: netctl("check", "c1", check=False).returncode == 0, timeout=DEADLINE)


def test_agent_adopts_state_at_start_and_reload_works_without_it(netctl: Netctl, host_ns: Netns,
                                                                  client: Netns) -> None:
    two_networks(netctl)
    netctl("agent", "stop")
    assert not agent_running(netctl)
    netctl.extra_env["NETCTL_PLUGIND"] = "0"
    host_ns.run(["nft", "flush", "ruleset"])
    time.sleep(0.5)
    assert not guarded(host_ns)  # nothing repairs it without an agent ...
    check = netctl("firewall", "reload", "--check", check=False)
    assert check.returncode == 1 and "needs repair" in check.stdout and "in sync" not in check.stdout
    out = netctl("firewall", "reload")  # ... but the one-shot reload does
    assert "rules restored" in out.stdout and "restored (nftables)" in out.stdout
    assert_policy_holds(netctl, host_ns, client)
    host_ns.run(["nft", "flush", "ruleset"])
    del netctl.extra_env["NETCTL_PLUGIND"]
    netctl("agent", "start")  # a new agent checks everything once at start
    wait_restored(netctl, lambda: guarded(host_ns))
    assert_policy_holds(netctl, host_ns, client)


def test_status_stop_and_what_runs(netctl: Netctl, host_ns: Netns) -> None:
    proc = netctl("agent", "status", check=False)
    assert proc.returncode == 3 and "not running" in proc.stdout
    netctl("agent", "start")
    st = status(netctl)
    assert st["running"] and st["socket"] == netctl.path("run", "plugind.sock")
    assert st["workers"]["spare"] == 4
    pid = st["pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        argv = fh.read().split(b"\0")
    assert argv[1:4] == [b"-I", b"-m", b"runtime.agent"]
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    text = netctl("agent", "status").stdout
    assert f"pid {pid}" in text and "firewall: watching nftables notifications" in text
    assert "already running" in netctl("agent", "start").stdout
    out = netctl("agent", "stop").stdout
    assert f"agent (pid {pid}) stopped" in out
    assert not os.path.exists(f"/proc/{pid}") or not agent_running(netctl)
    assert not os.path.exists(netctl.path("run", "plugind.sock"))


def test_socket_activation(host_ns: Netns) -> None:
    """systemd's way: the listening socket arrives as fd 3 with LISTEN_FDS/LISTEN_PID."""
    import tempfile

    root = tempfile.mkdtemp(prefix="nctl-")
    sock_path = os.path.join(root, "act.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(sock_path)
    lsock.listen(16)
    env = dict(os.environ, NETCTL_ROOT=root, LISTEN_FDS="1")
    # what systemd does between fork and exec: the socket on fd 3, LISTEN_PID = own pid
    as_systemd = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
                  "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[2], sys.argv[2:])")
    proc = subprocess.Popen(
        host_ns.cmd([sys.executable, "-c", as_systemd, str(lsock.fileno()), sys.executable, "-I",
                     "-m", "runtime.agent", "run", "--socket", sock_path]),
        env=env, pass_fds=(lsock.fileno(),), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        lsock.close()
        paths_run = os.path.join(root, "run")
        assert wait_for(lambda: os.path.exists(os.path.join(paths_run, "agent.json")), timeout=30)
        with open(os.path.join(paths_run, "agent.json")) as fh:
            st = json.load(fh)
        assert st["activation"] == "systemd" and st["socket"] == sock_path
        # a plugin call through the passed socket
        from cniutil import plugin_dir

        res = host_ns.run([os.path.join(plugin_dir(), "loopback")], check=False,
                          env={"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x1", "CNI_IFNAME": "lo",
                               "CNI_NETNS": host_ns.path, "CNI_PATH": plugin_dir(),
                               "NETCTL_PLUGIND_SOCKET": sock_path, "NETCTL_LOCK_DIR": root},
                          input='{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}')
        assert res.returncode == 0, res.stdout + res.stderr
        assert wait_for(lambda: _served(paths_run) >= 1, timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        # systemd owns the socket file: the agent leaves it where it was
        assert os.path.exists(sock_path)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def _served(run_dir: str) -> int:
    try:
        with open(os.path.join(run_dir, "agent.json")) as fh:
            return int(json.load(fh)["workers"]["calls_served"])
    except (OSError, ValueError, KeyError):
        return 0
