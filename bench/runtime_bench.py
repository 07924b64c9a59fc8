"""Benchmark: ``netctl`` end to end, in a throwaway host namespace with a private NETCTL_ROOT.

    sudo .venv/bin/python bench/runtime_bench.py [--runs 20] [--containers 200] [--bytecode-cache]

Workloads:
  * run-to-ping: ``netctl run -d`` on a user-defined network, timed from the start of the
    command to the first ICMP echo reply that the container sends to its gateway (the
    throwaway host). A probe process inside the host namespace starts netctl, waits
    (inotify) for the CNI result cache entry that gives the container's address (written
    right after the ADD chain) and then pings it every millisecond. Also reported: the
    time until ``netctl run`` itself returned, and ``netctl container rm -f`` of it.
  * many containers: N containers (``sleep``) on one network; the time of each ``run``
    (first ten and last ten), then ``netctl inspect NETWORK`` with N containers,
    ``inspect CONTAINER``, ``ps`` and ``ls``, then one ``container rm -f`` of all N.

Every netctl is a fresh process (interpreter start-up and imports included), run through
``nsenter --net=<host>``. ``--bytecode-cache`` lets Python keep compiled modules (in a
temporary PYTHONPYCACHEPREFIX) for the processes netctl starts; this environment sets
PYTHONDONTWRITEBYTECODE=1, which makes every process compile every module it imports.
Traffic goes only between the throwaway host and its containers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

from harness import fmt  # type: ignore[import-not-found]
from netctlutil import Netctl  # type: ignore[import-not-found]
from nsutil import Netns  # type: ignore[import-not-found]

NET = "benchnet"


# ---- the probe (runs inside the throwaway host namespace)

def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo_request(ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    payload = b"netctl-bench"
    return struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload


IN_MOVED_TO = 0x80
IN_CLOEXEC = 0o2000000


def _watch(directory: str) -> int:
    """An inotify fd that reports files renamed into ``directory`` (the result cache is
    written to a temporary name and renamed): waiting on it costs no CPU, which matters on
    a small machine where a polling probe would slow down the netctl it measures."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(fd, os.fsencode(directory), IN_MOVED_TO) < 0:
        raise OSError(ctypes.get_errno(), "inotify")
    return int(fd)


def _wait_result(fd: int, proc: subprocess.Popen[bytes]) -> str:
    """The name of the next ``<NET>-<id>-eth0`` entry renamed into the watched directory."""
    import select

    while True:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            if proc.poll() is not None and proc.returncode != 0:
                raise RuntimeError(f"netctl run failed: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            continue
        buf = os.read(fd, 65536)
        pos = 0
        while pos < len(buf):
            _, _, _, size = struct.unpack_from("iIII", buf, pos)
            name = buf[pos + 16:pos + 16 + size].rstrip(b"\0").decode()
            pos += 16 + size
            if name.startswith(f"{NET}-") and name.endswith("-eth0"):
                return name


def probe(argv: list[str], results: str) -> dict[str, float]:
    """Start ``argv`` (netctl run), ping the new container until it answers; milliseconds."""
    os.makedirs(results, exist_ok=True)
    watch = _watch(results)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(0.001)
    ident = os.getpid() & 0xFFFF
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(os.path.join(results, _wait_result(watch, proc))) as fh:
        addr = json.load(fh)["result"]["ips"][0]["address"].split("/")[0]
    os.close(watch)
    t_ping = t_exit = 0.0
    seq = 0
    while not t_ping:
        if not t_exit and proc.poll() is not None:
            t_exit = time.perf_counter()
            if proc.returncode != 0:
                raise RuntimeError(f"netctl run failed: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        seq += 1
        sock.sendto(_echo_request(ident, seq), (addr, 0))
        try:
            while True:
                data, src = sock.recvfrom(2048)
                ihl = (data[0] & 0x0F) * 4
                if src[0] == addr and data[ihl] == 0 and struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
                    t_ping = time.perf_counter()
                    break
        except TimeoutError:
            pass
        if time.perf_counter() - t0 > 60:
            raise RuntimeError("no answer within 60 s")
    proc.wait()
    if not t_exit:
        t_exit = time.perf_counter()
    return {"ping_ms": (t_ping - t0) * 1e3, "run_ms": (t_exit - t0) * 1e3}


# ---- the driver (runs in the machine's namespace, touches only the throwaway one)

def timed(n: Netctl, *args: str) -> float:
    t0 = time.perf_counter()
    n(*args)
    return (time.perf_counter() - t0) * 1e3


def run_to_ping(n: Netctl, runs: int) -> None:
    results = n.path("lib", "cni", "results")
    ping, ret, rm = [], [], []
    failures: list[str] = []
    for i in range(runs):
        argv = n.argv("run", "-d", "--name", f"p{i}", "--network", NET, "--", "sleep", "600")
        proc = subprocess.run(n.host.cmd([sys.executable, os.path.abspath(__file__), "--probe", results,
                                          "--", *argv]), env=n.env, capture_output=True, text=True)
        if proc.returncode != 0:
            # counted and shown, not hidden: the figures are over the runs that worked
            failures.append(proc.stderr.strip().splitlines()[-1])
            n("container", "rm", "-f", f"p{i}", check=False)
            continue
        got = json.loads(proc.stdout)
        ping.append(got["ping_ms"])
        ret.append(got["run_ms"])
        rm.append(timed(n, "container", "rm", "-f", f"p{i}"))
    print(fmt("run -d -> first ping answer from gateway", ping))
    print(fmt("run -d -> netctl returned", ret))
    print(fmt("container rm -f (one container)", rm))
    for f in failures:
        print(f"# failed run: {f}")


def many(n: Netctl, count: int) -> None:
    n("create", "--subnet", "10.200.0.0/16", "big")
    runs = [timed(n, "run", "-d", "--name", f"m{i}", "--network", "big", "--", "sleep", "600")
            for i in range(count)]
    print(fmt(f"run -d, containers 1-10 of {count}", runs[:10]))
    print(fmt(f"run -d, containers {count - 9}-{count}", runs[-10:]))
    obj = json.loads(n("inspect", "big").stdout)[0]
    assert len(obj["Containers"]) == count, len(obj["Containers"])
    print(fmt(f"inspect network with {count} containers", [timed(n, "inspect", "big") for _ in range(10)]))
    print(fmt(f"inspect -f (range) with {count}", [
        timed(n, "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "big") for _ in range(10)]))
    print(fmt(f"inspect one container (of {count})", [timed(n, "inspect", f"m{count // 2}") for _ in range(10)]))
    print(fmt(f"ps with {count} containers", [timed(n, "ps") for _ in range(5)]))
    print(fmt("ls --no-status", [timed(n, "ls", "--no-status") for _ in range(5)]))
    total = timed(n, "container", "rm", "-f", *[f"m{i}" for i in range(count)])
    print(f"{'container rm -f of all ' + str(count):<44} total={total / 1e3:7.2f} s  "
          f"per container={total / count:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--bytecode-cache", action="store_true")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd, args.probe)))
        return
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    host = Netns.create("nctest-bench")
    n = Netctl(host)
    cache = tempfile.mkdtemp(prefix="nctl-pyc-") if args.bytecode_cache else ""
    if cache:
        n.extra_env.update({"PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": ""})
    try:
        print(f"# throwaway host namespace {host.name}, NETCTL_ROOT {n.root}, "
              f"bytecode cache {'on' if cache else 'off (PYTHONDONTWRITEBYTECODE)'}")
        n("create", "--subnet", "172.22.16.0/24", NET)
        # warm up: plugin daemon, dnsd, the bridge, the bytecode cache
        n("run", "-d", "--name", "warm", "--network", NET, "--", "sleep", "600")
        n("container", "rm", "-f", "warm")
        if args.runs:
            run_to_ping(n, args.runs)
        if args.containers:
            many(n, args.containers)
    finally:
        problems = n.cleanup()
        host.delete()
        if cache:
            subprocess.run(["rm", "-rf", cache], check=False)
        for p in problems:
            print(f"# cleanup: {p}")


if __name__ == "__main__":
    main()
