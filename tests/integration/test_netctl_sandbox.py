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
