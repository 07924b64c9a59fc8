#!/usr/bin/env python3
"""Side-by-side DNS benchmark: dnsd vs aardvark-dns vs dnsmasq (needs root).

Topology (throwaway namespaces only, removed at the end even on failure):
``nctest-bh-*`` plays the host, with bridge ``br0`` 10.99.0.1/24 (the gateway every
server listens on); ``nctest-bc-*`` is a container at 10.99.0.2 attached by veth, from
which dnsperf runs. Each server knows ``client`` (10.99.0.2) plus N names
``ctr0..ctr{N-1}``, and dnsperf asks for their A records in turn.

Per server and mode: queries/s, lost queries, average latency, latency p50/p99/max
(from dnsperf -v, one line per query: always in the paced run, in the closed loop only
with --verbose-closed since printing slows the client), and CPU per query (utime+stime of the server process from
/proc/<pid>/stat, divided by the answered queries). Modes: closed loop (``-q 100``
outstanding) and paced (``-Q 1000``). With ``--pin`` the server runs on CPU 0 and
dnsperf on CPU 1 (less run-to-run noise on a 2-CPU machine).

Also measured for dnsd: how long a configuration change takes to show in answers
(write_entry + control.reload, and write_entry alone relying on inotify).

    sudo .venv/bin/python bench/dns_bench.py [--duration 10] [--rounds 1] [--pin]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from nsutil import Netns, connect  # noqa: E402

from dnsd import config, control  # noqa: E402

GW = "10.99.0.1"
CLIENT = "10.99.0.2"
AARDVARK = "/usr/lib/podman/aardvark-dns"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    server: str
    mode: str
    qps: float
    sent: int
    completed: int
    lost: int
    avg_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_us_per_query: float
    #: 1-minute load average of the machine when the run started (other work competes)
    load: float = 0.0
    rcodes: dict[str, int] = field(default_factory=dict)


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        stat = fh.read()
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))
    return values[k]


def renice(pid: int, nice: int) -> None:
    """Set the nice value of every thread of ``pid`` (setpriority is per thread on Linux)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.setpriority(os.PRIO_PROCESS, int(tid), nice)


def run_dnsperf(ns: Netns, qfile: str, args: list[str], pin: bool, pid: int, server: str, mode: str,
                verbose: bool = True, nice: int = 0) -> Result:
    """One dnsperf run; ``verbose`` (-v, a line per query) gives percentiles but costs
    dnsperf CPU that a closed-loop run would rather spend on sending."""
    argv = ["dnsperf", "-s", GW, "-d", qfile, *(["-v"] if verbose else []), *args]
    if pin:
        argv = ["taskset", "-c", "1", *argv]
    if nice:
        argv = ["nice", "-n", str(nice), *argv]
    load = float(Path("/proc/loadavg").read_text().split()[0])
    before = cpu_ticks(pid)
    out = ns.run(argv, timeout=600).stdout
    after = cpu_ticks(pid)
    lat = []
    rcodes: dict[str, int] = {}
    for line in out.splitlines():
        if line.startswith("> "):
            parts = line.split()
            rcodes[parts[1]] = rcodes.get(parts[1], 0) + 1
            if parts[1] != "T":  # "T" = timed out (lost)
                lat.append(float(parts[-1]) * 1000)

    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else float("nan")

    completed = int(num(r"Queries completed:\s+(\d+)"))
    return Result(
        server=server,
        mode=mode,
        qps=num(r"Queries per second:\s+([\d.]+)"),
        sent=int(num(r"Queries sent:\s+(\d+)")),
        completed=completed,
        lost=int(num(r"Queries lost:\s+(\d+)")),
        avg_ms=num(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
        p50_ms=pct(lat, 50),
        p99_ms=pct(lat, 99),
        max_ms=max(lat) if lat else float("nan"),
        cpu_us_per_query=(after - before) / CLK_TCK / max(completed, 1) * 1e6,
        load=load,
        rcodes={k: v for k, v in rcodes.items() if k != "NOERROR"},
    )


class Bench:
    def __init__(self, names: int, work: Path, pin: bool) -> None:
        self.names = names
        self.work = work
        self.pin = pin
        self.host = Netns.create("nctest-bh")
        self.ctr = Netns.create("nctest-bc")
        h, c = self.host, self.ctr
        h.run(["ip", "link", "add", "br0", "type", "bridge"])
        h.run(["ip", "addr", "add", f"{GW}/24", "dev", "br0"])
        h.run(["ip", "link", "set", "br0", "up"])
        connect(h, c, "vbench0", "eth0")
        h.run(["ip", "link", "set", "vbench0", "master", "br0"])
        c.run(["ip", "addr", "add", f"{CLIENT}/24", "dev", "eth0"])
        self.qfile = str(work / "queries.txt")
        Path(self.qfile).write_text("".join(f"ctr{i} A\n" for i in range(names)))
        self.ips = [f"10.99.{(10 + i) // 250}.{(10 + i) % 250 + 3}" for i in range(names)]

    def close(self) -> None:
        self.ctr.delete()
        self.host.delete()

    def wait_answer(self, name: str, timeout: float = 10.0) -> float:
        """Seconds until ``name`` resolves from the client (polling with dig)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            r = self.ctr.run(
                ["dig", f"@{GW}", name, "+short", "+tries=1", "+timeout=1"], check=False
            )
            if r.returncode == 0 and r.stdout.strip():
                return time.monotonic() - start
            time.sleep(0.005)
        raise RuntimeError(f"{name} never resolved")

    def pin_server(self, pid: int) -> None:
        if self.pin:
            subprocess.run(["taskset", "-a", "-pc", "0", str(pid)], check=True, capture_output=True)

    # --- servers ---------------------------------------------------------------------

    def start_dnsd(self) -> int:
        d = str(self.work / "dnsd")
        config.write_network(d, "bench", [GW], ["10.99.0.0/16"])
        config.write_entry(d, "bench", secrets.token_hex(32), "eth0", ["client"], [CLIENT], [])
        for i, ip in enumerate(self.ips):
            config.write_entry(d, "bench", f"{i:064x}", "eth0", [f"ctr{i}"], [ip], [])
        code = f"from dnsd.control import ensure_running; print(ensure_running({d!r}))"
        pid = int(self.host.run([sys.executable, "-c", code]).stdout)
        return pid

    def stop_dnsd(self, pid: int) -> None:
        control.stop(str(self.work / "dnsd"))

    def start_aardvark(self) -> int:
        d = self.work / "aardvark"
        d.mkdir(exist_ok=True)
        lines = [GW, f"{secrets.token_hex(32)} {CLIENT}  client"]
        lines += [f"{secrets.token_hex(32)} {ip}  ctr{i}" for i, ip in enumerate(self.ips)]
        (d / "bench").write_text("\n".join(lines) + "\n")
        log = open(self.work / "aardvark.log", "ab")
        # "run" daemonises; the pid file in the config dir names the server process
        subprocess.run(
            self.host.cmd([AARDVARK, "--config", str(d), "-p", "53", "run"]),
            stdout=log, stderr=log, check=True, timeout=30,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                return int((d / "aardvark.pid").read_text().strip())
            except (OSError, ValueError):
                time.sleep(0.02)
        raise RuntimeError("aardvark-dns wrote no pid file")

    def stop_aardvark(self, pid: int) -> None:
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)

    def start_dnsmasq(self) -> int:
        hosts = self.work / "dnsmasq.hosts"
        hosts.write_text(f"{CLIENT} client\n" + "".join(f"{ip} ctr{i}\n" for i, ip in enumerate(self.ips)))
        log = open(self.work / "dnsmasq.log", "ab")
        proc = self.host.spawn(
            ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}",
             f"--listen-address={GW}", "--bind-interfaces", "--port=53", "--log-facility=-",
             f"--pid-file={self.work / 'dnsmasq.pid'}"],
            stdout=log, stderr=log,
        )
        return proc.pid  # nsenter execs dnsmasq: same pid

    def stop_dnsmasq(self, pid: int) -> None:
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)

    def measure(self, server: str, duration: int, outstanding: int, qps: int,
                verbose_closed: bool, nice_paced: int) -> list[Result]:
        pid = getattr(self, f"start_{server}")()
        try:
            self.pin_server(pid)
            self.wait_answer("ctr0")
            self.ctr.run(["dnsperf", "-s", GW, "-d", self.qfile, "-l", "1", "-q", "10"])  # warm-up
            closed = run_dnsperf(self.ctr, self.qfile, ["-l", str(duration), "-q", str(outstanding)],
                                 self.pin, pid, server, f"closed -q {outstanding}", verbose_closed)
            renice(pid, nice_paced)
            paced = run_dnsperf(self.ctr, self.qfile, ["-l", str(duration), "-Q", str(qps)],
                                self.pin, pid, server, f"paced -Q {qps}", nice=nice_paced)
            return [closed, paced]
        finally:
            getattr(self, f"stop_{server}")(pid)

    def reload_latency(self, samples: int) -> dict[str, list[float]]:
        """Seconds from a config write to the first answer carrying the new name.

        A poller in the client namespace asks every millisecond once told the name
        (right after the write), and reports the elapsed time.
        """
        d = str(self.work / "dnsd")
        pid = self.start_dnsd()
        poller = self.ctr.spawn([sys.executable, "-c", POLLER, GW], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert poller.stdin is not None and poller.stdout is not None
        out: dict[str, list[float]] = {"write + SIGHUP": [], "write only (inotify)": []}
        try:
            for i in range(samples):
                for how in out:
                    name = f"new{i}-{len(how)}"
                    config.write_entry(d, "bench", f"{i:060x}{len(how):04x}", "eth1", [name],
                                       ["10.99.9.9"], [])
                    if how.startswith("write +"):
                        control.reload(d)
                    poller.stdin.write(name + "\n")
                    poller.stdin.flush()
                    out[how].append(float(poller.stdout.readline()))
        finally:
            poller.kill()
            self.stop_dnsd(pid)
        return out


# polls GW for argv name until it has an answer; prints seconds elapsed (one line per name)
POLLER = r"""
import socket, sys, time
gw = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.05)
for line in sys.stdin:
    name = line.strip().encode()
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + bytes([len(name)]) + name + b"\x00\x00\x01\x00\x01"
    start = time.monotonic()
    while True:
        s.sendto(q, (gw, 53))
        try:
            r = s.recv(512)
        except socket.timeout:
            continue
        if r[7] > 0:
            break
        time.sleep(0.001)
    print(time.monotonic() - start, flush=True)
"""


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per dnsperf run")
    ap.add_argument("--outstanding", type=int, default=100, help="closed loop: -q")
    ap.add_argument("--qps", type=int, default=1000, help="paced: -Q")
    ap.add_argument("--names", type=int, default=100, help="container names")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole comparison")
    ap.add_argument("--servers", default="dnsd,aardvark,dnsmasq")
    ap.add_argument("--pin", action="store_true", help="server on CPU 0, dnsperf on CPU 1")
    ap.add_argument("--nice-paced", type=int, default=0,
                    help="paced runs only: nice value for server and dnsperf (e.g. -10), to shield "
                         "the latency figures from other load on a shared machine (~5%% CPU)")
    ap.add_argument("--verbose-closed", action="store_true",
                    help="dnsperf -v in the closed loop too (percentiles, but a slower client)")
    ap.add_argument("--reload-samples", type=int, default=20)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("dnsperf", "dig", "dnsmasq", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} not found", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="dnsbench-"))
    bench = Bench(args.names, work, args.pin)
    results: list[Result] = []
    try:
        for rnd in range(args.rounds):
            for server in args.servers.split(","):
                print(f"round {rnd + 1}: {server} ...", file=sys.stderr, flush=True)
                results += bench.measure(server, args.duration, args.outstanding, args.qps,
                                         args.verbose_closed, args.nice_paced)
        reload_times = bench.reload_latency(args.reload_samples) if "dnsd" in args.servers else {}
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.names} names, {args.duration}s per run, {args.rounds} round(s), "
          f"pinned={args.pin}, nice in paced runs={args.nice_paced}, {os.cpu_count()} CPUs")
    hdr = (f"{'server':9} {'mode':13} {'qps':>9} {'lost':>6} {'avg ms':>7} {'p50 ms':>7} {'p99 ms':>7} "
           f"{'max ms':>7} {'CPU us/q':>9} {'load':>5}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        extra = f"  rcodes {r.rcodes}" if r.rcodes else ""
        print(f"{r.server:9} {r.mode:13} {r.qps:9.0f} {r.lost:6d} {r.avg_ms:7.3f} {r.p50_ms:7.3f} "
              f"{r.p99_ms:7.3f} {r.max_ms:7.3f} {r.cpu_us_per_query:9.1f} {r.load:5.2f}{extra}")
    if args.rounds > 1:
        print("\nmedians over rounds:")
        for server in args.servers.split(","):
            for mode in sorted({r.mode for r in results}):
                rs = [r for r in results if r.server == server and r.mode == mode]
                print(f"{server:9} {mode:13} qps {statistics.median(r.qps for r in rs):9.0f}  "
                      f"avg {statistics.median(r.avg_ms for r in rs):.3f} ms  "
                      f"p50 {statistics.median(r.p50_ms for r in rs):.3f} ms  "
                      f"p99 {statistics.median(r.p99_ms for r in rs):.3f} ms  "
                      f"CPU {statistics.median(r.cpu_us_per_query for r in rs):.1f} us/q  "
                      f"lost {sum(r.lost for r in rs)}")
    for how, times in reload_times.items():
        ms = sorted(t * 1000 for t in times)
        print(f"dnsd config change -> answer, {how}: median {statistics.median(ms):.1f} ms, "
              f"max {ms[-1]:.1f} ms (n={len(ms)}, 1 ms polling)")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": [asdict(r) for r in results],
                                               "reload_s": reload_times}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
