"""Benchmark: the bridge plugin (with host-local IPAM), ours against the reference.

    sudo .venv/bin/python bench/bridge_bench.py [--containers 50] [--concurrent 20] [--rounds 3]

Workloads, for each variant in its own throwaway host namespace:
  * sequential: ADD of N containers one after the other (each its own namespace) on one
    network, then their N DELs; latency per call (min / median / p95);
  * concurrent: M ADDs started at once (separate processes) on a new bridge; the wall time
    from the first start to the last exit; then their M DELs at once. Repeated ``--rounds``
    times (a new bridge each round); the median round is printed.

The variants take turns call by call (the container namespaces are shared, each variant
uses its own interface name), so that a change in the machine's load during the run
affects them alike.

Variants (same config: isGateway, ipMasq, host-local on a /16, data under one temp dir,
``--tmp`` chooses where: a disk-backed dir costs our SQLite leases fsyncs on checkpoint):
  * ours in-process   - our executable with NETCTL_PLUGIND=0 (interpreter start-up and
                        imports on every call: the fallback when no daemon runs);
  * ours warm daemon  - our executable forwarding to ``python -m netplugins.daemon``, started
                        inside the throwaway host namespace;
  * reference         - /usr/lib/cni/bridge + /usr/lib/cni/host-local (Go);
  * baseline daemon   - with ``--baseline DIR``: another checkout of this project (e.g. the
                        previous commit) through its own warm daemon, for before/after figures
                        from one run.

Every call runs through ``nsenter --net=<host>`` (the same cost for all variants). Our
firewall driver is the detected one (nftables on this host); the reference masquerades
with per-container iptables chains.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from harness import base_env, fmt, summary, time_call  # type: ignore[import-not-found]
from nsutil import Netns, netns, wait_for  # type: ignore[import-not-found]

REF_DIR = "/usr/lib/cni"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def net_conf(name: str, bridge: str, subnet: str, tmp: str, ours: bool) -> bytes:
    conf: dict[str, object] = {
        "cniVersion": "1.0.0", "name": name, "type": "bridge", "bridge": bridge,
        "isGateway": True, "ipMasq": True,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                 "dataDir": os.path.join(tmp, "ipam")},
    }
    if ours:
        conf["stateDir"] = os.path.join(tmp, "state")
    return json.dumps(conf).encode()


@dataclass
class Variant:
    label: str
    exe: str
    env: dict[str, str]
    ours: bool
    ifname: str = "eth0"
    #: the checkout whose daemon serves this variant (None: this one)
    root: str | None = None
    host: Netns | None = None
    daemon: subprocess.Popen[bytes] | None = None
    tmp: str = ""
    adds: list[float] = field(default_factory=list)
    dels: list[float] = field(default_factory=list)
    par_adds: list[float] = field(default_factory=list)
    par_dels: list[float] = field(default_factory=list)


def attachment(v: Variant, command: str, cid: str, ns: Netns) -> dict[str, str]:
    return v.env | {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_IFNAME": v.ifname,
                    "CNI_NETNS": ns.path}


def call(v: Variant, command: str, cid: str, ctr: Netns, conf: bytes) -> float:
    assert v.host is not None
    ms, rc, out = time_call(v.host.cmd([v.exe]), attachment(v, command, cid, ctr), conf)
    if rc:
        raise SystemExit(f"{v.label}: {command} failed: {out.decode(errors='replace')}")
    return ms


def at_once(v: Variant, ctrs: list[Netns], conf: bytes, command: str, tag: str) -> float:
    """Start one process per container at the same moment; wall time until all exited (ms)."""
    assert v.host is not None
    t0 = time.perf_counter()
    procs = [subprocess.Popen(v.host.cmd([v.exe]), env=attachment(v, command, f"{tag}{i}", ctr),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i, ctr in enumerate(ctrs)]
    outs = [p.communicate(conf) for p in procs]
    wall = (time.perf_counter() - t0) * 1e3
    failed = [o[0].decode(errors="replace") for p, o in zip(procs, outs, strict=True) if p.returncode]
    if failed:
        raise SystemExit(f"{v.label}: {len(failed)} concurrent {command}s failed: {failed[0]}")
    return wall


def start(v: Variant, stack: ExitStack, tmp_root: str | None) -> None:
    """The variant's throwaway host namespace, temp dir and (for the daemon) daemon."""
    v.host = stack.enter_context(netns("nctest-bhost"))
    v.tmp = stack.enter_context(tempfile.TemporaryDirectory(dir=tmp_root))
    v.env = base_env() | v.env
    if "daemon" in v.label:
        sock = os.path.join(v.tmp, "plugind.sock")
        root = v.root or str(ROOT)
        log = open(os.path.join(v.tmp, "plugind.log"), "wb")  # lives as long as the daemon
        if os.path.exists(os.path.join(root, "runtime", "agent", "service.py")):
            # the agent (pool + dnsd supervision + firewall reconciler), as a host runs it
            code = (f"import sys; sys.path.insert(0, {root!r}); from runtime.agent.__main__ import main; "
                    "sys.exit(main(sys.argv[1:]))")
            argv = [sys.executable, "-c", code, "run", "--socket", sock, "--root-lib",
                    os.path.join(v.tmp, "agent", "lib"), "--root-run", os.path.join(v.tmp, "agent", "run")]
        else:  # an older checkout: its plugin daemon
            code = f"import sys; sys.path.insert(0, {root!r}); from netplugins.daemon import main; main()"
            argv = [sys.executable, "-c", code, "--socket", sock]
        v.daemon = v.host.spawn(argv, stdout=log, stderr=log)
        if not wait_for(lambda: os.path.exists(sock), timeout=20):
            raise SystemExit("plugin daemon did not start")
        v.env["NETCTL_PLUGIND_SOCKET"] = sock


def run(variants: list[Variant], ctrs: list[Netns], concurrent: int, rounds: int) -> None:
    confs = {v.label: net_conf("benchseq", "brseq0", "10.77.0.0/16", v.tmp, v.ours) for v in variants}
    for i, ctr in enumerate(ctrs):
        for v in variants[i % len(variants):] + variants[:i % len(variants)]:
            v.adds.append(call(v, "ADD", f"seq{i}", ctr, confs[v.label]))
    for i, ctr in enumerate(ctrs):
        for v in variants[i % len(variants):] + variants[:i % len(variants)]:
            v.dels.append(call(v, "DEL", f"seq{i}", ctr, confs[v.label]))
    for r in range(rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            conf = net_conf(f"benchpar{r}", f"brpar{r}", f"10.{80 + r}.0.0/16", v.tmp, v.ours)
            v.par_adds.append(at_once(v, ctrs[:concurrent], conf, "ADD", f"par{r}-"))
            v.par_dels.append(at_once(v, ctrs[:concurrent], conf, "DEL", f"par{r}-"))
    for v in variants:
        # the shim runs the plugin itself when no daemon answers: figures would be mislabelled
        if v.daemon is not None and v.daemon.poll() is not None:
            with open(os.path.join(v.tmp, "plugind.log"), errors="replace") as fh:
                tail = fh.read()[-2000:]
            raise SystemExit(f"{v.label}: the daemon exited (status {v.daemon.returncode}) during the run;"
                             f" its figures are not the daemon's. Log tail:\n{tail}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["inproc", "daemon", "reference"], action="append")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also measure the checkout in DIR (its netplugins/bin/bridge) through its own daemon")
    parser.add_argument("--tmp", help="where the IPAM data and state directories go (default: the"
                        " system temp dir; /dev/shm is a tmpfs like /run on most hosts)")
    opts = parser.parse_args()
    from netplugins.delivery import ensure_default_dir

    pdir = ensure_default_dir()
    ours = os.path.join(pdir, "bridge")
    catalog = {
        "inproc": Variant("ours in-process", ours, {"NETCTL_PLUGIND": "0", "CNI_PATH": pdir}, True),
        "daemon": Variant("ours warm daemon", ours, {"CNI_PATH": pdir}, True),
        "reference": Variant("reference", f"{REF_DIR}/bridge", {"CNI_PATH": REF_DIR}, False),
    }
    if opts.baseline:
        bdir = os.path.join(os.path.abspath(opts.baseline), "netplugins", "bin")
        catalog["baseline"] = Variant("baseline warm daemon", os.path.join(bdir, "bridge"), {"CNI_PATH": bdir},
                                      True, root=os.path.abspath(opts.baseline))
    chosen = [k for k in (opts.only or list(catalog))
              if k != "reference" or os.path.exists(f"{REF_DIR}/bridge")]
    if opts.baseline and "baseline" not in chosen:
        chosen.append("baseline")
    variants = [catalog[k] for k in chosen]
    for n, v in enumerate(variants):
        v.ifname = f"eth{n}"
    with ExitStack() as stack:
        ctrs = [stack.enter_context(netns("nctest-bctr")) for _ in range(max(opts.containers, opts.concurrent))]
        for v in variants:
            start(v, stack, opts.tmp)
        run(variants, ctrs[:opts.containers], opts.concurrent, opts.rounds)
    print(f"bridge + host-local: {opts.containers} sequential containers; {opts.concurrent} concurrent,"
          f" median of {opts.rounds} rounds; data under {opts.tmp or tempfile.gettempdir()}")
    for v in variants:
        print(fmt(f"ADD {v.label}", v.adds))
        print(fmt(f"DEL {v.label}", v.dels))
        for what, walls in (("ADD", v.par_adds), ("DEL", v.par_dels)):
            print(f"{f'concurrent {what} x{opts.concurrent} {v.label}':<44} "
                  f"wall={statistics.median(walls):8.1f} ms  (rounds: {', '.join(f'{w:.0f}' for w in walls)})")
    ref = catalog["reference"] if "reference" in chosen else None
    if ref is not None:
        for v in variants:
            if v is ref:
                continue
            add = summary(v.adds)["median"] / summary(ref.adds)["median"]
            dele = summary(v.dels)["median"] / summary(ref.dels)["median"]
            par = statistics.median(v.par_adds) / statistics.median(ref.par_adds)
            print(f"{v.label}: median ADD {add:.2f}x, DEL {dele:.2f}x the reference; concurrent ADD {par:.2f}x")
    print("(each call includes nsenter's exec into the host namespace, the same for all variants)")


if __name__ == "__main__":
    main()
