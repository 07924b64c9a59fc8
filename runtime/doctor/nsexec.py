"""Run a command inside a network namespace (``nsenter --net``), for doctor and graph."""

from __future__ import annotations

import os
import subprocess

SBIN = "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"


def run_in(argv: list[str], netns: str | None = None, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (in ``netns`` when given); a missing tool becomes return code 127."""
    full = ["nsenter", f"--net={netns}", "--", *argv] if netns else argv
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":" + SBIN)
    try:
        return subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(full, 127, "", str(exc))
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(full, 124, "", f"{argv[0]} timed out")
