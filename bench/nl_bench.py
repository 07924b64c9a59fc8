"""pyroute2 against our rtnetlink client (netplugins/nl/rtnl.py) on the bridge ADD's requests.

Both implementations of ``netplugins.nl.host.PluginNetlink`` run the very functions the
bridge plugin's ADD and DEL run (``netplugins.nl.bridge``: ensure_bridge, ensure_gateway,
create_veth, setup_host_port, configure_container_iface, delete_link), so the request set
is the same: 9 for an ADD on an existing bridge, 1 for a DEL.

"agent": a process with pyroute2 and the plugin modules imported forks one child per call,
as the agent does for every plugin call; the child opens its two sockets (host and
container namespace), runs the ADD, and reports its time; DEL likewise. The two
implementations alternate call by call, N >= 100 each, medians.

"import": what a plugin process started without the agent pays to import each one, in a
fresh ``python -IS`` (as the shims run), N=20 each, medians.

Everything runs in throwaway namespaces (``hnlb-...``), removed at the end. Run as root
from the project root: ``.venv/bin/python bench/nl_bench.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = next((ROOT / ".venv" / "lib").glob("python*/site-packages"))
BRIDGE, GATEWAY, ADDRESS = "hnlbr0", "10.77.0.1/24", "10.77.0.2/24"


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# --- the inner process: runs inside the throwaway host namespace -----------------------------

def _one_call(impl: str, cpath: str, what: str) -> float:
    """In a forked child: open the sockets and run ADD (or DEL); milliseconds."""
    from netplugins.nl import bridge as nlb
    from netplugins.nl.netns import entered, open_netns
    from netplugins.nl.pyroute import Pyroute
    from netplugins.nl.rtnl import Rtnl

    make = Pyroute if impl == "pyroute2" else Rtnl
    t0 = time.perf_counter()
    nl = make()
    if what == "del":
        nlb.delete_link(nl, "hnlveth0")
        nl.close()
        return (time.perf_counter() - t0) * 1e3
    cfd = open_netns(cpath)
    with entered(cpath):
        cnl = make()
    index, _mac = nlb.ensure_bridge(nl, BRIDGE, 0, False, "02:77:00:00:00:01")
    nlb.ensure_bridge_room(nl, BRIDGE, index, 1)
    nlb.ensure_gateway(nl, BRIDGE, index, GATEWAY, False)
    nlb.create_veth(nl, "hnlveth0", "02:77:00:00:00:02", "eth0", "02:77:00:00:00:03", cfd, 0, index, BRIDGE)
    nlb.setup_host_port(nl, "hnlveth0", False, False)
    nlb.configure_container_iface(cnl, "eth0", [(ADDRESS, "10.77.0.1")], [("0.0.0.0/0", "10.77.0.1")])
    elapsed = (time.perf_counter() - t0) * 1e3
    os.close(cfd)
    cnl.close()
    nl.close()
    return elapsed


def _forked(impl: str, cpath: str, what: str) -> float:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the agent's worker
        code = 0
        try:
            os.close(r)
            os.write(w, json.dumps(_one_call(impl, cpath, what)).encode())
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            os.write(w, json.dumps(str(exc)).encode())
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r) as fh:
        out = json.loads(fh.read() or '"no answer"')
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"{impl} {what} failed: {out}")
    return float(out)


def _inner(runs: int, cpath: str) -> None:
    """Prewarm as the agent does (imports), then alternate the implementations."""
    import pyroute2  # noqa: F401 - the agent has it imported

    from netplugins.nl import bridge, pyroute, rtnl  # noqa: F401

    samples: dict[str, dict[str, list[float]]] = {i: {"add": [], "del": []} for i in ("rtnl", "pyroute2")}
    for i in range(runs + 5):
        order = ("rtnl", "pyroute2") if i % 2 else ("pyroute2", "rtnl")
        for impl in order:
            add = _forked(impl, cpath, "add")
            dele = _forked(impl, cpath, "del")
            if i >= 5:  # the first calls warm the page cache and the kernel's objects
                samples[impl]["add"].append(add)
                samples[impl]["del"].append(dele)
    print(json.dumps(samples))


# --- the outer process --------------------------------------------------------------------

def _import_cost(module: str, runs: int) -> float:
    """Median milliseconds of ``import module`` in a fresh ``python -IS``."""
    code = (f"import sys, time; sys.path[:0] = [{str(ROOT)!r}, {str(SITE)!r}]; "
            f"t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1e3)")
    out = []
    for _ in range(runs):
        res = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True,
                             check=True, cwd="/")
        out.append(float(res.stdout))
    return _median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100, help="calls per implementation (default 100)")
    ap.add_argument("--imports", type=int, default=20, help="fresh processes per import (default 20)")
    ap.add_argument("--inner", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        sys.path[:0] = [str(ROOT)]
        _inner(args.runs, args.inner)
        return
    tag = uuid.uuid4().hex[:6]
    host, ctr = f"hnlb-h-{tag}", f"hnlb-c-{tag}"
    made = []
    try:
        for ns in (host, ctr):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
        res = subprocess.run(["nsenter", f"--net=/run/netns/{host}", sys.executable, "-I", str(Path(__file__).resolve()),
                              "--runs", str(args.runs), "--inner", f"/run/netns/{ctr}"],
                             capture_output=True, text=True, cwd="/")
        if res.returncode != 0:
            sys.exit(f"the measurement failed: {res.stderr.strip()[-2000:]}")
        samples = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)
    imports = {m: _import_cost(m, args.imports) for m in ("netplugins.nl.rtnl", "pyroute2", "netplugins.nl.pyroute")}
    load = os.getloadavg()[0]
    print(f"bridge ADD/DEL requests, forked worker per call (agent), N={args.runs} each, load {load:.1f}")
    print(f"{'':<10} {'ADD p50':>10} {'DEL p50':>10}")
    for impl in ("rtnl", "pyroute2"):
        print(f"{impl:<10} {_median(samples[impl]['add']):8.2f} ms {_median(samples[impl]['del']):8.2f} ms")
    extra = _median(samples["pyroute2"]["add"]) - _median(samples["rtnl"]["add"])
    print(f"pyroute2 - rtnl on ADD: {extra:+.2f} ms")
    print(f"import in a fresh python -IS, N={args.imports}, medians:")
    for m, ms in imports.items():
        print(f"  {m:<24} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
