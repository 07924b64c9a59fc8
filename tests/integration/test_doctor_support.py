"""Helpers for the doctor and graph integration tests (no tests here).

``NetctlHost`` runs netctl inside ``host_ns`` with its own NETCTL_ROOT, can add an
"outside" namespace behind an uplink, and tears down what netctl made: every
container removed, anything mounted under the root lazily unmounted. The ``host_ns``
fixture then deletes the namespace (and kills dnsd left inside it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from nsutil import Netns, connect

REPO = Path(__file__).resolve().parents[2]
OUTSIDE_HOST, OUTSIDE_PEER = "10.99.0.1", "10.99.0.2"
SLEEPER = ("sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait')


class NetctlHost:
    """netctl driven inside a throwaway host namespace."""

    def __init__(self, ns: Netns, root: Path) -> None:
        self.ns = ns
        self.root = root
        # netctl starts its warm plugin daemon inside the namespace; host_ns kills it
        self.env = dict(os.environ, NETCTL_ROOT=str(root),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``netctl ARGS`` in the host namespace."""
        res = subprocess.run(self.ns.cmd([sys.executable, "-m", "runtime.cli", *args]), env=self.env,
                             capture_output=True, text=True, timeout=120)
        if check and res.returncode != 0:
            raise AssertionError(f"netctl {' '.join(args)} failed ({res.returncode}): {res.stderr}{res.stdout}")
        return res

    def netctl(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def without_agent(self) -> None:
        """Stop the agent and keep netctl from starting another: a host where nothing
        repairs the firewall by itself (what doctor must then diagnose)."""
        self.netctl("agent", "stop")
        self.env["NETCTL_PLUGIND"] = "0"

    def sleeper(self, name: str, *opts: str) -> None:
        """A container that just sleeps; as PID 1 of its PID namespace it must trap SIGTERM
        itself, or ``rm -f`` would wait for its SIGKILL fallback."""
        self.netctl("run", "-d", "--name", name, *opts, "--", *SLEEPER)

    def ip(self, name: str) -> str:
        """The container's first IPv4 address."""
        out = self.netctl("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name)
        return out.split()[0]

    def exec(self, name: str, *cmd: str) -> None:
        self.netctl("exec", name, "--", *cmd)

    def doctor(self, source: str, target: str, *opts: str) -> tuple[int, dict[str, Any]]:
        """(exit status, JSON report) of ``netctl doctor``; its trace table must be gone."""
        res = self.run("doctor", source, target, "--json", *opts, check=False)
        assert res.returncode in (0, 3), f"doctor failed ({res.returncode}): {res.stderr}"
        assert self.trace_tables() == [], "doctor left its trace table behind"
        return res.returncode, json.loads(res.stdout)

    def trace_tables(self) -> list[str]:
        """doctor's temporary trace tables in the host namespace (``netctl_doctor_*``)."""
        out = self.ns.run(["nft", "list", "tables"]).stdout
        return [line for line in out.splitlines() if "netctl_doctor_" in line]

    def outside(self, make_ns: Any) -> Netns:
        """An "outside" namespace joined to the host by a veth: host out0 10.99.0.1, outside 10.99.0.2."""
        out: Netns = make_ns("nctest-out")
        connect(self.ns, out, "out0", "eth0")
        self.ns.run(["ip", "addr", "add", f"{OUTSIDE_HOST}/24", "dev", "out0"])
        out.run(["ip", "addr", "add", f"{OUTSIDE_PEER}/24", "dev", "eth0"])
        return out

    def teardown(self) -> None:
        """Remove every container, then lazily unmount anything left under the root."""
        # several passes: a container whose namespace another one joined can only go after
        # its joiners (netctl refuses to pull a namespace from under a running joiner)
        for _ in range(4):
            left = self.run("ps", "-a", "-q", check=False).stdout.split()
            if not left:
                break
            for cid in left:
                self.run("container", "rm", "-f", cid, check=False)
        assert not self.run("ps", "-a", "-q", check=False).stdout.split(), "containers left behind"
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split()[4] for line in fh if str(self.root) in line]
        for mnt in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True)


def failed(report: dict[str, Any]) -> list[str]:
    """Names of the ✘ hops."""
    return [h["name"] for h in report["hops"] if h["status"] == "fail"]


def hop(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [h for h in report["hops"] if h["name"] == name]
    assert found, f"no {name} hop in {[h['name'] for h in report['hops']]}"
    return found[0]
