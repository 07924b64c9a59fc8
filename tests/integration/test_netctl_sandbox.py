"""``netctl sandbox`` (and ``netctl demo``, which runs in one): a throwaway host that
leaves nothing behind, whatever was left running inside it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.netns

SCRIPT = r"""
set -e
echo "root=$NETCTL_ROOT"
echo "ns=$(ip netns identify)"
netctl create --subnet 172.22.44.0/24 sbnet >/dev/null
netctl run -d --name s1 --network sbnet -- sleep 600 >/dev/null
netctl run -d --name s2 --network sbnet -- sleep 600 >/dev/null
netctl exec s1 -- ping -c 1 -W 2 s2 >/dev/null
netctl inspect -f '{{(index .NetworkSettings.Networks "sbnet").IPAddress}}' s2
exit 7
"""


def netns_names() -> set[str]:
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


def test_sandbox_runs_netctl_and_removes_everything() -> None:
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "sandbox", "--", "bash", "-c", SCRIPT],
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 7, proc.stderr  # the command's own status
    lines = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert proc.stdout.splitlines()[-1] == "172.22.44.3"
    root, ns = lines["root"], lines["ns"]
    assert ns.startswith("netctl-sandbox-")
    # the containers were left running: the sandbox removed them, their namespaces, the
    # plugin daemon and dnsd, the mounts and the state
    assert not os.path.exists(root)
    assert ns not in netns_names()
    with open("/proc/self/mountinfo") as fh:
        assert root not in fh.read()
    # no process of the sandbox is left (by its environment: NETCTL_ROOT=<root>)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                assert f"NETCTL_ROOT={root}".encode() not in fh.read().split(b"\0")
        except OSError:
            continue


def test_sandbox_without_root_says_why() -> None:
    if os.geteuid() != 0:
        proc = subprocess.run([sys.executable, "-m", "runtime.cli", "sandbox", "--", "true"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "needs root" in proc.stderr
    else:
        # as another user: drop to nobody for the one check
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               sys.executable, "-I", "-c",
                               f"import sys; sys.path.insert(0, {os.getcwd()!r}); "
                               "from runtime.cli import main; main(['sandbox', '--', 'true'])"],
                              capture_output=True, text=True, timeout=60, cwd="/")
        assert proc.returncode == 1 and "needs root" in proc.stderr, proc.stderr


def test_demo_runs_and_leaves_nothing() -> None:
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "demo"], capture_output=True,
                          text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "web2" in proc.stdout and "nothing is left" in proc.stdout
    ns = next(w for w in proc.stdout.split() if w.startswith("netctl-demo-"))
    assert ns not in netns_names()


def test_sandbox_namespace_has_lo_up_and_close_removes_it() -> None:
    """The sandbox makes its namespace with runtime.netns (a bind mount under /run/netns, so
    ``ip netns`` sees it by name) and sets lo up through the netlink boundary."""
    from netplugins.nl.pyroute import open_host
    from runtime.netns import is_mounted
    from runtime.sandbox import Sandbox

    sb = Sandbox(prefix="nctest-sb")
    with sb:
        assert sb.ns in netns_names() and is_mounted(sb.ns_path)
        with open_host(sb.ns_path) as nl:
            lo = nl.get_link("lo")
            assert lo is not None and lo.up
            assert {a.cidr for a in nl.addresses(lo.index)} >= {"127.0.0.1/8"}
        # the name works for iproute2 too (the README's walkthrough uses it)
        out = subprocess.run(["ip", "-n", sb.ns, "-o", "link", "show", "lo"], capture_output=True,
                             text=True, check=True).stdout
        assert "state UNKNOWN" in out or ",UP" in out
        assert os.path.isdir(sb.root)
    assert sb.ns not in netns_names()
    assert not is_mounted(sb.ns_path) and not os.path.lexists(sb.ns_path)
    assert not os.path.exists(sb.root)
    sb.close()  # twice: nothing left to do, no error
