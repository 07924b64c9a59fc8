"""Benchmark: VERSION and loopback ADD+DEL as whole processes, ours against the reference.

    sudo .venv/bin/python bench/core_bench.py [--runs 100]

Ours is measured twice: in-process (NETCTL_PLUGIND=0: interpreter start-up plus pyroute2
import on every call) and through the warm plugin daemon (the default when it runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from harness import base_env, fmt, time_call  # type: ignore[import-not-found]
from nsutil import netns, wait_for  # type: ignore[import-not-found]

REF = "/usr/lib/cni/loopback"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    opts = parser.parse_args()
    from netplugins.delivery import ensure_default_dir

    ours = os.path.join(ensure_default_dir(), "loopback")
    conf = json.dumps({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}).encode()
    with netns("nctest-bhost") as host, netns("nctest-bctr") as ctr, tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "plugind.sock")
        host.spawn([sys.executable, "-m", "netplugins.daemon", "--socket", sock])
        if not wait_for(lambda: os.path.exists(sock), timeout=20):
            raise SystemExit("plugin daemon did not start")
        variants = [("ours in-process", ours, {"NETCTL_PLUGIND": "0"}),
                    ("ours via warm daemon", ours, {"NETCTL_PLUGIND_SOCKET": sock})]
        if os.path.exists(REF):
            variants.append(("reference (containernetworking-plugins)", REF, {}))
        print(f"runs per figure: {opts.runs}")
        for label, exe, extra in variants:
            env = base_env() | extra | {"CNI_PATH": os.path.dirname(exe)}
            version = [time_call(host.cmd([exe]), env | {"CNI_COMMAND": "VERSION"}, conf)[0]
                       for _ in range(opts.runs)]
            att = env | {"CNI_CONTAINERID": "bench", "CNI_NETNS": ctr.path, "CNI_IFNAME": "lo"}
            adddel = []
            for _ in range(opts.runs):
                ms_add, rc1, _ = time_call(host.cmd([exe]), att | {"CNI_COMMAND": "ADD"}, conf)
                ms_del, rc2, _ = time_call(host.cmd([exe]), att | {"CNI_COMMAND": "DEL"}, conf)
                if rc1 or rc2:
                    raise SystemExit(f"{label}: ADD/DEL failed")
                adddel.append(ms_add + ms_del)
            print(fmt(f"VERSION  {label}", version))
            print(fmt(f"ADD+DEL  {label}", adddel))
        print("(each figure includes nsenter's exec into the host namespace, the same for all)")


if __name__ == "__main__":
    main()
