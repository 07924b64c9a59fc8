"""Time setup_network / teardown_network of each firewall driver (prints min/median/p95).

Run as root: ``.venv/bin/python bench/firewall_bench.py [--rounds 30] [--others 20]``.
The script creates a throwaway network namespace, re-runs itself inside it with
``nsenter``, and deletes the namespace at the end; it never touches the machine's own
namespace. Three figures per driver and operation:

- ``in-process``: the call alone, python and its imports already loaded;
- ``in-process, N others``: the same with N other networks' rules present;
- ``fresh process``: a new interpreter that imports the firewall package and makes one
  call, i.e. what a CNI plugin invocation pays (interpreter start included).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ONE_CALL = """
import sys
from netplugins.firewall import NetworkPolicy, get_driver
drv = get_driver(sys.argv[1], lock_path=sys.argv[2])
if sys.argv[3] == "setup":
    drv.setup_network(NetworkPolicy("bench", "brbench", ("10.77.0.0/24", "fd77::/64")))
else:
    drv.teardown_network("bench")
"""


def stats(label: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"  {label:<38} n={len(ms):<3} min {ms[0]:7.1f}  median {statistics.median(ms):7.1f}  p95 {p95:7.1f} ms"
    )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def inside(rounds: int, others: int) -> None:
    """The measurements; runs in the throwaway namespace."""
    from netplugins.firewall import NetworkPolicy, get_driver

    lock = os.path.join(tempfile.mkdtemp(prefix="fwbench-"), "fw.lock")
    policy = NetworkPolicy("bench", "brbench", ("10.77.0.0/24", "fd77::/64"))
    for name in ("nftables", "iptables"):
        drv = get_driver(name, lock_path=lock)
        print(f"{name}: (dual-stack network: IPv4 + IPv6 rules)")
        t_first = timed(lambda: drv.setup_network(policy))  # noqa: B023  (loads the backend)
        drv.teardown_network("bench")
        for label, count in (("in-process", 0), (f"in-process, {others} others", others)):
            extra = [
                NetworkPolicy(f"other{i}", f"bro{i}", (f"10.78.{i}.0/24",)) for i in range(count)
            ]
            for p in extra:
                drv.setup_network(p)
            ups, downs = [], []
            for _ in range(rounds):
                ups.append(timed(lambda: drv.setup_network(policy)))  # noqa: B023
                downs.append(timed(lambda: drv.teardown_network("bench")))  # noqa: B023
            stats(f"setup_network    {label}", ups)
            stats(f"teardown_network {label}", downs)
            for p in extra:
                drv.teardown_network(p.name)
        ups, downs = [], []
        for _ in range(max(5, rounds // 3)):
            argv = [sys.executable, "-c", ONE_CALL, name, lock]
            ups.append(timed(lambda: subprocess.run([*argv, "setup"], check=True)))  # noqa: B023
            downs.append(timed(lambda: subprocess.run([*argv, "teardown"], check=True)))  # noqa: B023
        stats("setup_network    fresh process", ups)
        stats("teardown_network fresh process", downs)
        print(f"  first setup_network in this process (loads the backend): {t_first * 1000:.1f} ms")
    interp = [
        timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)) for _ in range(10)
    ]
    stats("bare interpreter start (reference)", interp)
    leftovers = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert leftovers == "", f"bench left nft rules behind:\n{leftovers}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--others", type=int, default=20)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args.rounds, args.others)
        return
    if os.geteuid() != 0:
        sys.exit("firewall_bench: needs root (it creates a throwaway network namespace)")
    ns = f"nctest-fwbench-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cmd = [
            "nsenter",
            f"--net=/run/netns/{ns}",
            "--",
            sys.executable,
            os.path.abspath(__file__),
            "--inside",
        ]
        subprocess.run(
            [*cmd, "--rounds", str(args.rounds), "--others", str(args.others)], check=True
        )
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


if __name__ == "__main__":
    main()
