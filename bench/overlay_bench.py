"""Overlay networks across hosts against one local bridge, in the 3-host namespace lab.

    python bench/overlay_bench.py [--adds N] [--seconds S]

- ADD latency: the ``overlay`` plugin (etcd lease transaction + VXLAN device + bridge) on
  host 1 against the ``bridge`` + ``host-local`` plugins on a local bridge of the same host,
  both through the warm plugin daemon, N sequential ADDs (each followed by its DEL).
- propagation: from the end of an ADD on host 1 until host 3's VXLAN device has the new
  container's FDB entry (the other hosts' watch + reconcile).
- etcd writes per container start and stop: the store's revision before and after (every
  write bumps it by one; lease renewals do not).
- ping RTT and TCP throughput (iperf3, 3 s) between containers on hosts 1 and 3 over the
  overlay, against two containers on one local bridge of host 1.

Everything runs in throwaway namespaces (tests/overlaylab.py) and is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cniutil import run_plugin  # type: ignore[import-not-found]  # noqa: E402
from harness import fmt  # type: ignore[import-not-found]  # noqa: E402
from nsutil import Netns  # type: ignore[import-not-found]  # noqa: E402
from overlaylab import Host, Lab, in_netns  # type: ignore[import-not-found]  # noqa: E402


def _conf(host: Host, net: str) -> dict[str, object]:
    with open(host.netctl.path("lib", "net.d", f"{net}.conflist")) as fh:
        conf = dict(json.load(fh)["plugins"][0])
    conf.update({"cniVersion": "1.0.0", "name": net})
    return conf


def _env(host: Host) -> dict[str, str]:
    return {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": host.netctl.path("run", "plugind.sock")}


def _revision(url: str) -> int:
    from netplugins.overlay.store import Store

    return Store(url).snapshot().revision


def add_latency(lab: Lab, net: str, runs: int, measure_propagation: bool) -> tuple[list[float], list[float]]:
    h1, h3 = lab.hosts[0], lab.hosts[2]
    conf = _conf(h1, net)
    adds, props = [], []
    vni = h1.netctl.inspect(net)["Options"].get("vni")
    for i in range(runs):
        ns = Netns.create("nctest-b")
        cid = f"{i:04d}" * 16
        try:
            t0 = time.perf_counter()
            run = run_plugin(h1.ns, conf["type"], "ADD", conf, container_id=cid, netns=ns.path,  # type: ignore[arg-type]
                             env=_env(h1))
            adds.append((time.perf_counter() - t0) * 1e3)
            assert run.rc == 0, run.stdout + run.stderr
            if measure_propagation:
                mac = run.json["interfaces"][-1]["mac"] if run.json.get("interfaces") else ""
                mac = next((i["mac"] for i in run.json["interfaces"] if i.get("sandbox")), mac)
                t1 = time.perf_counter()
                while mac not in h3.ns.run(["bridge", "fdb", "show", "dev", f"ovvx{vni}"]).stdout:
                    if time.perf_counter() - t1 > 10:
                        raise RuntimeError("no propagation to host 3 in 10 s")
                    time.sleep(0.005)
                props.append((time.perf_counter() - t0) * 1e3 - adds[-1])
        finally:
            run_plugin(h1.ns, conf["type"], "DEL", conf, container_id=cid, netns=ns.path,  # type: ignore[arg-type]
                       env=_env(h1))
            ns.delete()
    return adds, props


def writes_per_container(lab: Lab, net: str) -> tuple[int, int]:
    h1 = lab.hosts[0]
    assert lab.etcd is not None
    url = lab.etcd.url
    conf = _conf(h1, net)
    ns = Netns.create("nctest-b")
    try:
        before = in_netns(h1.ns.path, _revision, url)
        run_plugin(h1.ns, "overlay", "ADD", conf, container_id="w" * 64, netns=ns.path, env=_env(h1))
        mid = in_netns(h1.ns.path, _revision, url)
        run_plugin(h1.ns, "overlay", "DEL", conf, container_id="w" * 64, netns=ns.path, env=_env(h1))
        after = in_netns(h1.ns.path, _revision, url)
    finally:
        ns.delete()
    return mid - before, after - mid


def ping_rtt(a: Host, ctr: str, target: str, count: int = 50) -> float:
    out = a.netctl.exec(ctr, "ping", "-q", "-c", str(count), "-i", "0.02", target).stdout
    line = next(ln for ln in out.splitlines() if "rtt" in ln)
    return float(line.split("=")[1].split("/")[1])


def iperf(client: Host, ctr: str, server_ip: str, seconds: int) -> float:
    out = client.netctl.exec(ctr, "iperf3", "-J", "-t", str(seconds), "-c", server_ip, timeout=seconds + 30).stdout
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adds", type=int, default=30)
    ap.add_argument("--seconds", type=int, default=3)
    opts = ap.parse_args()
    lab = Lab(3, ttl=10)
    try:
        h1, _h2, h3 = lab.hosts
        h1.run("create", "--driver", "overlay", "ovbench")
        h3.run("ls")
        h1.run("create", "--subnet", "172.30.9.0/24", "lbench")
        # a container on each side, so the first ADD does not pay for bridge/VXLAN creation
        h1.netctl.run_d("o1", "--network", "ovbench", cmd=("iperf3", "-s"))
        h3.netctl.run_d("o3", "--network", "ovbench", cmd=("iperf3", "-s"))
        h1.netctl.run_d("l1", "--network", "lbench", cmd=("iperf3", "-s"))
        h1.netctl.run_d("l2", "--network", "lbench", cmd=("iperf3", "-s"))
        ov_adds, props = add_latency(lab, "ovbench", opts.adds, True)
        br_adds, _ = add_latency(lab, "lbench", opts.adds, False)
        w_add, w_del = writes_per_container(lab, "ovbench")
        time.sleep(0.5)
        o3, l2 = h3.netctl.ip("o3", "ovbench"), h1.netctl.ip("l2", "lbench")
        rtt_ov, rtt_br = ping_rtt(h1, "o1", o3), ping_rtt(h1, "l1", l2)
        tput_ov = iperf(h1, "o1", o3, opts.seconds)
        tput_br = iperf(h1, "l1", l2, opts.seconds)
        print(fmt("overlay ADD (etcd lease + VXLAN + bridge)", ov_adds))
        print(fmt("local bridge ADD (bridge + host-local)", br_adds))
        print(f"ratio overlay/bridge ADD median: {statistics.median(ov_adds) / statistics.median(br_adds):.2f}x")
        print(fmt("propagation to host 3 (after ADD returns)", props))
        print(f"etcd writes per container: start {w_add}, stop {w_del}")
        print(f"ping RTT avg: overlay (host1->host3) {rtt_ov:.3f} ms, one bridge {rtt_br:.3f} ms")
        print(f"TCP (iperf3 {opts.seconds}s): overlay {tput_ov:.2f} Gbit/s, one bridge {tput_br:.2f} Gbit/s")
    finally:
        lab.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
