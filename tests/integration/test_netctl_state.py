"""End-to-end: netctl's state under concurrency and under a netctl killed mid-``run``.

* Concurrent commands serialize on the global lock: 8 ``run -d`` at once on one network
  give 8 distinct addresses, all listed; 4 ``create`` at once give 4 distinct subnets.
* ``run`` is SIGKILLed at several points, each observed on disk (namespace made, lease
  taken, bridge record written, result cached, container recorded, process started);
  then ``netctl gc`` must leave no namespace mount, cached result, lease, bridge or DNS
  record that no container owns, and ``container rm -f`` must leave nothing at all (no
  container process either).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Callable

import pytest
from netctlutil import Netctl, netctl_fixture  # noqa: F401 - the netctl fixture
from nsutil import wait_for

pytestmark = pytest.mark.netns

NET = "my_net2"


@pytest.mark.parametrize("network", ["bridge", NET])
def test_concurrent_runs_get_distinct_addresses(netctl: Netctl, network: str) -> None:
    """On the default bridge the 8 commands are netctl's very first: they also race to
    create the default networks and to start the plugin daemon."""
    if network == NET:
        netctl("create", "--subnet", "172.22.16.0/24", NET)
    procs = [netctl.popen("run", "-d", "--name", f"par{i}", "--network", network, "--", "sleep", "600")
             for i in range(8)]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    obj = netctl.inspect(network)
    addrs = [c["IPv4Address"] for c in obj["Containers"].values()]
    assert len(addrs) == 8 and len(set(addrs)) == 8
    assert {c["Name"] for c in obj["Containers"].values()} == {f"par{i}" for i in range(8)}
    listed = netctl("ps", "--quiet").stdout.split()
    assert len(listed) == 8
    prefix = obj["IPAM"]["Config"][0]["Subnet"].split("/")[1]
    leases = [lease for lease in netctl.leases() if lease[0] == network]
    assert sorted(f"{a}/{prefix}" for _, a, _, _ in leases) == sorted(addrs)
    assert sorted(n.split(".")[0] for n in os.listdir(netctl.path("lib", "networks"))) == sorted(
        {"bridge", "host", "none", network})
    # the commands started together started one agent, not one each
    with open(netctl.path("run", "agent.log")) as fh:
        log = fh.read()
    assert "already serves" not in log and log.count("serving") == 1


def test_concurrent_creates_get_distinct_subnets(netctl: Netctl) -> None:
    netctl("ls")  # default networks first, so that the creates race only with each other
    procs = [netctl.popen("create", f"auto{i}") for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    subnets = [netctl.inspect(f"auto{i}")["IPAM"]["Config"][0]["Subnet"] for i in range(4)]
    assert len(set(subnets)) == 4
    assert "172.17.0.0/16" not in subnets


def test_ps_lists_in_creation_order(netctl: Netctl) -> None:
    for name in ("zz", "aa", "mm"):
        netctl.run_d(name, "--network", "none")
    rows = netctl("ps").stdout.splitlines()[1:]
    assert [r.split()[1] for r in rows] == ["zz", "aa", "mm"]


def test_gc_detaches_a_container_whose_process_died(netctl: Netctl) -> None:
    netctl("create", "--subnet", "172.22.16.0/24", NET)
    netctl.run_d("doomed", "--network", NET)
    netctl.run_d("fine", "--network", NET)
    pid = netctl.inspect("doomed")["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: netctl.inspect("doomed")["State"]["Running"] is False, timeout=10)
    report = netctl("gc").stdout
    assert "detached exited container doomed" in report
    assert netctl.inspect("doomed")["NetworkSettings"]["Networks"] == {}
    assert [c["Name"] for c in netctl.inspect(NET)["Containers"].values()] == ["fine"]
    assert_nothing_orphaned(netctl)
    assert netctl("gc").stdout == ""  # nothing left to do
    assert netctl("check", "fine").stdout.strip() == "ok"


# ---- SIGKILL in the middle of run

def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, session) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[3])
    except (OSError, IndexError, ValueError):
        return None


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid`` in its own session (plugin calls, not the detached launcher
    or the plugin daemon, which start sessions of their own)."""
    me = _stat(pid)
    if me is None:
        return []
    children: dict[int, list[int]] = {}
    sessions: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry))
                sessions[int(entry)] = st[1]
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if sessions.get(child) == me[1]:
                out.append(child)
                todo.append(child)
    return out


def _start_locks_free(n: Netctl) -> bool:
    """No launcher still holds a container's start lock (it does until its pidfile is written)."""
    for cid in n.container_ids():
        try:
            fd = os.open(n.path("lib", "containers", cid, "starting.lock"), os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
    return True


def _kill_when(n: Netctl, proc: subprocess.Popen[str], seen: Callable[[], bool]) -> bool:
    """SIGKILL ``proc`` as soon as ``seen()`` holds; wait for the plugin calls and the
    launcher it had started (they finish their work, as they would after a real crash).
    Whether it was killed (False: it finished first)."""
    while proc.poll() is None:
        if seen():
            os.kill(proc.pid, signal.SIGSTOP)  # no new children from here on
            below = _descendants(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert wait_for(lambda: all(_stat(p) is None for p in below), timeout=60)  # noqa: B023
            assert wait_for(lambda: _start_locks_free(n), timeout=30)
            return True
    return False


def _count(path: str, suffix: str) -> int:
    try:
        return sum(name.endswith(suffix) for name in os.listdir(path))
    except FileNotFoundError:
        return 0


def _more(path: str, suffix: str = "") -> Callable[[], bool]:
    """True once ``path`` holds more entries (ending in ``suffix``) than it does now."""
    now = _count(path, suffix)
    return lambda: _count(path, suffix) > now


def _owned(n: Netctl) -> tuple[set[tuple[str, str]], set[str], dict[str, dict[str, object]]]:
    """What the recorded containers own: (container ID, ifname) pairs, namespace paths,
    and the records themselves."""
    pairs: set[tuple[str, str]] = set()
    namespaces: set[str] = set()
    records = {}
    for cid in n.container_ids():
        config = n.path("lib", "containers", cid, "config.json")
        assert os.path.exists(config), f"container directory {cid[:12]} without a record"
        with open(config) as fh:
            rec = json.load(fh)
        records[cid] = rec
        for ep in rec["endpoints"]:
            pairs.add((cid, ep["ifname"]))
        if rec["endpoints"] and rec["netns"].startswith(n.path("run", "netns")):
            namespaces.add(rec["netns"])
            pairs.add((cid, "lo"))  # a namespace of its own gets lo up through CNI too
    return pairs, namespaces, records


def assert_nothing_orphaned(n: Netctl) -> None:
    """Everything on disk and in the kernel belongs to a recorded container."""
    pairs, namespaces, records = _owned(n)
    ns_dir = n.path("run", "netns")
    assert {os.path.join(ns_dir, x) for x in os.listdir(ns_dir)} == namespaces
    assert {m for m in n.mounts() if m.startswith(ns_dir + "/")} == namespaces
    for name in os.listdir(n.path("lib", "cni", "results")):
        with open(n.path("lib", "cni", "results", name)) as fh:
            cached = json.load(fh)
        assert (cached["containerId"], cached["ifName"]) in pairs, f"orphan cached result {name}"
    for net, addr, cid, ifname in n.leases():
        assert (cid, ifname) in pairs, f"orphan lease {addr} on {net}"
    for sub in ("run/bridge", "run/dnsd/entries"):
        for dirpath, _dirs, files in os.walk(n.path(*sub.split("/"))):
            if os.path.basename(dirpath) == "_policy":
                # one firewall policy per network (for the agent), not per attachment: it
                # belongs to a network that still has attachments
                nets = {f[:-5] for f in files if f.endswith(".json")}
                assert all(os.listdir(n.path("run", "bridge", net)) for net in nets), \
                    f"policy of a network without attachments: {nets}"
                continue
            for f in files:
                if f.endswith(".json"):
                    cid, _, ifname = f[:-5].rpartition("-")
                    assert (cid, ifname) in pairs, f"orphan record {dirpath}/{f}"
    veths = json.loads(n.host.run(["ip", "-j", "link", "show", "type", "veth"]).stdout)
    assert len(veths) == sum(ifname.startswith("eth") for _, ifname in pairs), "orphan veth"
    for cid, rec in records.items():
        assert rec["state"] in ("running", "exited"), f"{cid[:12]} left in state {rec['state']}"
        if rec["state"] == "exited":
            assert rec["endpoints"] == []


def _processes_with(argv: list[str]) -> list[int]:
    found = []
    want = "\0".join(argv).encode() + b"\0"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if fh.read() == want:
                        found.append(int(entry))
            except OSError:
                pass
    return found


KILL_POINTS = ["netns", "lease", "bridge-record", "cached", "recorded", "started"]


def test_sigkill_during_run_then_gc(netctl: Netctl) -> None:
    netctl("create", "--subnet", "172.22.16.0/24", NET)
    netctl.run_d("survivor", "--network", NET)
    survivor_ip = netctl.ip("survivor", NET)
    # a command line no other process has, to find the containers' processes afterwards
    marker = ["sleep", f"{secrets.randbelow(10**6) + 10**6}.5"]
    killed = []
    for i, point in enumerate(KILL_POINTS):
        before_ids = set(netctl.container_ids())
        before_leases = len(netctl.leases())

        def new_container_file(name: str, before: set[str] = before_ids) -> Callable[[], bool]:
            def check() -> bool:
                return any(os.path.exists(netctl.path("lib", "containers", c, name))
                           for c in set(netctl.container_ids()) - before)
            return check

        def more_leases(before: int = before_leases) -> bool:
            return len(netctl.leases()) > before

        seen = {
            "netns": _more(netctl.path("run", "netns")),
            "lease": more_leases,
            "bridge-record": _more(netctl.path("run", "bridge", NET)),
            "cached": _more(netctl.path("lib", "cni", "results"), "-eth0"),
            "recorded": new_container_file("config.json"),
            "started": new_container_file("pid"),
        }[point]
        proc = netctl.popen("run", "-d", "--name", f"k{i}", "--network", NET, "--", *marker)
        if _kill_when(netctl, proc, seen):
            killed.append(point)
        else:
            proc.communicate()
        report = netctl("gc").stdout
        assert "Traceback" not in report
        assert_nothing_orphaned(netctl)
    # the kill points are seen on disk, so each one was hit before run finished
    assert killed == KILL_POINTS
    # the survivor was not disturbed
    assert netctl.ip("survivor", NET) == survivor_ip
    assert netctl("check", "survivor").stdout.strip() == "ok"
    # and everything goes with rm -f
    netctl("container", "rm", "-f", *netctl.container_ids())
    assert_nothing_orphaned(netctl)
    assert netctl.container_ids() == []
    assert netctl.leases() == []
    assert os.listdir(netctl.path("run", "netns")) == []
    assert wait_for(lambda: _processes_with(marker) == [], timeout=10), "a container process was left"
