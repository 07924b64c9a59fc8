"""Benchmark: how fast the agent heals (netctl agent).

    sudo .venv/bin/python bench/agent_bench.py [--flushes 20] [--kills 10]

In a throwaway host namespace with its own NETCTL_ROOT, netctl creates two networks, a
container publishing a port (nft table ``inet netctl-ports``, with the 127.0.0.0/8 guard)
and one on each network; the agent runs as netctl starts it. Then:

  * flush -> restored: ``nft flush ruleset`` (what ``firewall-cmd --reload`` does to our
    tables), then poll every 2 ms until ``netctl firewall reload --check`` would find
    nothing to do, i.e. both our tables hold every rule, map element and the guard again
    (checked with the drivers' own check, in-process, so the poll itself costs ~5 ms);
  * dnsd restart: SIGKILL dnsd, then poll until a DNS query to the network's gateway
    (from inside a container) is answered again.

Figures: min / p50 / p99 / max in milliseconds. The serialisation cost of the attachment
lock on concurrent ADDs is measured by bench/bridge_bench.py --baseline (before/after in
one run), see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from harness import ROOT  # type: ignore[import-not-found]
from nsutil import Netns  # type: ignore[import-not-found]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(name: str, samples: list[float]) -> str:
    return (f"{name:<34} n={len(samples):<3} min={min(samples):7.1f}  p50={pct(samples, .5):7.1f}  "
            f"p99={pct(samples, .99):7.1f}  max={max(samples):7.1f} ms")


class Lab:
    def __init__(self) -> None:
        self.host = Netns.create("nctest-agbench")
        self.root = tempfile.mkdtemp(prefix="nctl-")
        with open(os.path.join(self.root, "resolv.conf"), "w") as fh:
            fh.write("search bench.test\n")
        self.env = dict(os.environ, NETCTL_ROOT=self.root,
                        NETCTL_HOST_RESOLV_CONF=os.path.join(self.root, "resolv.conf"))

    def netctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.host.cmd([sys.executable, "-m", "runtime.cli", *args]),
                              env=self.env, capture_output=True, text=True, check=check, timeout=120)

    def close(self) -> None:
        subprocess.run(self.host.cmd([sys.executable, "-m", "runtime.cli", "container", "rm", "-f",
                                      "a1", "a2", "b1"]), env=self.env, capture_output=True)
        for net in ("web", "other"):
            self.netctl("network", "rm", net, check=False)
        self.netctl("agent", "stop", check=False)
        self.host.delete()
        for mnt in sorted((ln.split()[4] for ln in open("/proc/self/mountinfo")
                           if ln.split()[4].startswith(self.root)), reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


CHECKER = """
import sys, time
from runtime.agent.reconcile import reconcile
state = sys.argv[1]
sys.stdout.write("ready\\n"); sys.stdout.flush()
for line in sys.stdin:
    t0 = time.perf_counter()
    deadline = t0 + 10
    while time.perf_counter() < deadline:
        r = reconcile(state, repair=False)
        if not r.repairs and not r.failures and r.networks == 2:
            break
        time.sleep(0.002)
    sys.stdout.write("%f\\n" % (time.perf_counter() - t0)); sys.stdout.flush()
"""


def bench_flush(lab: Lab, n: int) -> list[float]:
    checker = subprocess.Popen(lab.host.cmd([sys.executable, "-c", CHECKER,
                                             os.path.join(lab.root, "run", "bridge")]),
                               env=lab.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=str(ROOT))
    assert checker.stdin is not None and checker.stdout is not None
    assert checker.stdout.readline().strip() == "ready"
    out = []
    try:
        for _ in range(n):
            time.sleep(0.5)  # let the previous repair's notifications settle
            t0 = time.perf_counter()
            lab.host.run(["nft", "flush", "ruleset"])
            checker.stdin.write("go\n")
            checker.stdin.flush()
            float(checker.stdout.readline())
            out.append((time.perf_counter() - t0) * 1e3)
    finally:
        checker.kill()
        checker.wait()
    return out


def dns_query(name: str) -> bytes:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + qname + struct.pack("!HH", 1, 1)


PROBER = """
import socket, sys, time
gw, q = sys.argv[1], bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.005)
sys.stdout.write("ready\\n"); sys.stdout.flush()
for line in sys.stdin:
    t0 = time.perf_counter()
    while True:
        try:
            s.sendto(q, (gw, 53)); s.recv(512); break
        except OSError:
            time.sleep(0.002)
    sys.stdout.write("%f\\n" % (time.perf_counter() - t0)); sys.stdout.flush()
"""


def bench_dnsd(lab: Lab, n: int, netns_path: str, gateway: str) -> list[float]:
    prober = subprocess.Popen(["nsenter", f"--net={netns_path}", "--", sys.executable, "-c", PROBER,
                               gateway, dns_query("a2").hex()],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert prober.stdin is not None and prober.stdout is not None
    assert prober.stdout.readline().strip() == "ready"
    out = []
    try:
        for _ in range(n):
            time.sleep(2.5)  # longer than supervise.STABLE_AFTER: a kill, not a crash loop
            pid = int(open(os.path.join(lab.root, "run", "dnsd", "dnsd.pid")).read())
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            prober.stdin.write("go\n")
            prober.stdin.flush()
            float(prober.stdout.readline())
            out.append((time.perf_counter() - t0) * 1e3)
    finally:
        prober.kill()
        prober.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flushes", type=int, default=20)
    parser.add_argument("--kills", type=int, default=10)
    opts = parser.parse_args()
    lab = Lab()
    try:
        lab.netctl("create", "--subnet", "172.31.1.0/24", "web")
        lab.netctl("create", "--subnet", "172.31.2.0/24", "other")
        lab.netctl("run", "-d", "--name", "a1", "--network", "web", "-p", "8080:80", "-p",
                   "127.0.0.1:9090:80", "--", "sleep", "600")
        lab.netctl("run", "-d", "--name", "a2", "--network", "web", "--", "sleep", "600")
        lab.netctl("run", "-d", "--name", "b1", "--network", "other", "--", "sleep", "600")
        deadline = time.time() + 30
        while json.loads(lab.netctl("agent", "status", "--json", check=False).stdout).get(
                "dnsd", {}).get("state") != "running":
            if time.time() > deadline:
                raise SystemExit("agent/dnsd did not come up")
            time.sleep(0.1)
        ins = json.loads(lab.netctl("inspect", "a1").stdout)[0]
        sandbox = ins["NetworkSettings"].get("SandboxKey") or os.path.join(
            lab.root, "run", "netns", ins["Id"])
        gateway = ins["NetworkSettings"]["Networks"]["web"]["Gateway"]
        print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {socket.gethostname()}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        print(line("flush -> rules restored (nft)", bench_flush(lab, opts.flushes)))
        print(line("dnsd killed -> answers again", bench_dnsd(lab, opts.kills, sandbox, gateway)))
        st = json.loads(lab.netctl("agent", "status", "--json").stdout)
        print(f"# agent: {st['firewall']['repairs_total']} repairs, {st['firewall']['passes']} passes, "
              f"dnsd starts by the agent: {st['dnsd']['restarts']}")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
