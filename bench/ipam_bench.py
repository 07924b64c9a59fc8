"""Benchmark: host-local, ours against the reference, side by side in one run.

    sudo .venv/bin/python bench/ipam_bench.py [--adds 1000] [--concurrent 50]

Workloads, each on a fresh data directory:
  * sequential: N ADDs (distinct containers) in a /16, then the N DELs;
  * concurrent: 50 ADDs started at once (one process or worker each) on a fresh network.

Variants:
  * ours, cold process   - our executable with NETCTL_PLUGIND=0: interpreter start-up and imports
                            on every call (the fallback when no daemon runs);
  * ours, warm daemon    - our executable forwarding to the plugin daemon (the default path);
  * reference            - /usr/lib/cni/host-local (Go; one file per lease, flock);
  * ours, in-process     - skel.run(FUNCS, env, stdin) in this process: the work itself, what a
                            warm daemon worker spends besides fork and the socket round trip.

Processes run inside a throwaway namespace through nsenter (the same cost for all variants);
host-local touches no network state, only its data directory under a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from harness import base_env, summary, time_call  # type: ignore[import-not-found]
from nsutil import Netns, netns, wait_for  # type: ignore[import-not-found]

REF = "/usr/lib/cni/host-local"


def conf(data_dir: str, subnet: str) -> bytes:
    return json.dumps({"cniVersion": "1.0.0", "name": "bench", "type": "bridge",
                       "ipam": {"type": "host-local", "dataDir": data_dir,
                                "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]}}).encode()


def attachment(command: str, cid: str) -> dict[str, str]:
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_IFNAME": "eth0",
            "CNI_NETNS": "/run/netns/bench"}


Call = Callable[[Mapping[str, str], bytes], tuple[float, int]]


def process_caller(host: Netns, exe: str, extra: Mapping[str, str]) -> Call:
    env0 = base_env() | dict(extra) | {"CNI_PATH": os.path.dirname(exe)}

    def call(env: Mapping[str, str], stdin: bytes) -> tuple[float, int]:
        ms, rc, _ = time_call(host.cmd([exe]), env0 | dict(env), stdin)
        return ms, rc
    return call


def inprocess_caller() -> Call:
    from netplugins.cni.skel import run
    from netplugins.ipam.hostlocal import FUNCS

    def call(env: Mapping[str, str], stdin: bytes) -> tuple[float, int]:
        t0 = time.perf_counter()
        out = run(FUNCS, dict(env) | {"CNI_PATH": "/nonexistent"}, stdin)
        return (time.perf_counter() - t0) * 1e3, out.exit_code
    return call


def sequential(call: Call, n: int, tmp: str) -> tuple[dict[str, float], dict[str, float], float]:
    stdin = conf(tempfile.mkdtemp(dir=tmp), "10.60.0.0/16")
    t0 = time.perf_counter()
    adds, dels = [], []
    for i in range(n):
        ms, rc = call(attachment("ADD", f"c{i}"), stdin)
        if rc:
            raise SystemExit(f"ADD {i} failed")
        adds.append(ms)
    for i in range(n):
        ms, rc = call(attachment("DEL", f"c{i}"), stdin)
        if rc:
            raise SystemExit(f"DEL {i} failed")
        dels.append(ms)
    return summary(adds), summary(dels), time.perf_counter() - t0


def concurrent_threads(call: Call, n: int, tmp: str) -> tuple[dict[str, float], float]:
    """n processes at once: a thread per process, released together by a barrier."""
    stdin = conf(tempfile.mkdtemp(dir=tmp), "10.61.0.0/24")
    barrier = threading.Barrier(n)

    def one(i: int) -> tuple[float, int]:
        barrier.wait()
        return call(attachment("ADD", f"k{i}"), stdin)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    if any(rc for _, rc in results):
        raise SystemExit("a concurrent ADD failed")
    return summary([ms for ms, _ in results]), wall


def _worker(stdin: bytes, cid: str, barrier: object, out: object) -> None:
    call = inprocess_caller()
    barrier.wait()  # type: ignore[attr-defined]
    out.put(call(attachment("ADD", cid), stdin))  # type: ignore[attr-defined]


def concurrent_forked(n: int, tmp: str) -> tuple[dict[str, float], float]:
    """n forked workers calling the function at once (the daemon forks a worker per call)."""
    ctx = multiprocessing.get_context("fork")
    stdin = conf(tempfile.mkdtemp(dir=tmp), "10.61.0.0/24")
    barrier, out = ctx.Barrier(n + 1), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(stdin, f"k{i}", barrier, out)) for i in range(n)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    results = [out.get(timeout=120) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    if any(rc for _, rc in results):
        raise SystemExit("a concurrent ADD failed")
    return summary([ms for ms, _ in results]), wall


def line(label: str, what: str, s: dict[str, float]) -> str:
    return f"  {label:<22} {what:<4} median={s['median']:8.2f} ms  p95={s['p95']:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adds", type=int, default=1000)
    parser.add_argument("--concurrent", type=int, default=50)
    opts = parser.parse_args()
    from netplugins.delivery import ensure_default_dir

    ours = os.path.join(ensure_default_dir(), "host-local")
    with netns("nctest-bipam") as host, tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "plugind.sock")
        host.spawn([sys.executable, "-m", "netplugins.daemon", "--socket", sock])
        if not wait_for(lambda: os.path.exists(sock), timeout=20):
            raise SystemExit("plugin daemon did not start")
        variants: list[tuple[str, Call]] = [
            ("ours, cold process", process_caller(host, ours, {"NETCTL_PLUGIND": "0"})),
            ("ours, warm daemon", process_caller(host, ours, {"NETCTL_PLUGIND_SOCKET": sock})),
        ]
        if os.path.exists(REF):
            variants.append(("reference", process_caller(host, REF, {})))
        variants.append(("ours, in-process", inprocess_caller()))

        print(f"sequential: {opts.adds} ADDs then {opts.adds} DELs in a /16 (per call)")
        for label, call in variants:
            adds, dels, wall = sequential(call, opts.adds, tmp)
            print(line(label, "ADD", adds))
            print(line(label, "DEL", dels))
            print(f"  {label:<22} total wall time for {2 * opts.adds} calls: {wall:.2f} s")
        print(f"\nconcurrent: {opts.concurrent} ADDs started at once on a fresh network (per ADD)")
        for label, call in variants:
            if label == "ours, in-process":
                adds, wall = concurrent_forked(opts.concurrent, tmp)
                label = "ours, in-process(fork)"
            else:
                adds, wall = concurrent_threads(call, opts.concurrent, tmp)
            print(line(label, "ADD", adds) + f"   wall={wall * 1e3:8.1f} ms")
        print("\n(process figures include nsenter's exec into the throwaway namespace, the same for all)")


if __name__ == "__main__":
    main()
