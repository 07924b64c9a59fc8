"""Time whole plugin processes (fork, exec, work, exit) and summarise the figures.

Every benchmark runs inside throwaway namespaces (tests/nsutil.py) and never touches the
machine's own network namespace.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def time_call(argv: Sequence[str], env: Mapping[str, str], stdin: bytes) -> tuple[float, int, bytes]:
    """Run one process; return (milliseconds, exit code, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), input=stdin, env=dict(env), capture_output=True)
    return (time.perf_counter() - t0) * 1e3, proc.returncode, proc.stdout


def summary(samples: Sequence[float]) -> dict[str, float]:
    """min / median / p95 / mean of millisecond samples."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "min": ordered[0], "median": statistics.median(ordered),
            "p95": p95, "mean": statistics.fmean(ordered)}


def fmt(name: str, samples: Sequence[float]) -> str:
    s = summary(samples)
    return (f"{name:<44} n={s['n']:<4} min={s['min']:7.2f}  median={s['median']:7.2f}  "
            f"p95={s['p95']:7.2f} ms")


def repeat(n: int, fn: Callable[[int], float]) -> list[float]:
    """Call ``fn(i)`` n times and collect what it returns (milliseconds)."""
    return [fn(i) for i in range(n)]


def base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
