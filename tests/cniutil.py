"""Run our real plugin executables as a runtime would, inside a throwaway host namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsutil import Netns, wait_for

ALL_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
REFERENCE_DIR = "/usr/lib/cni"


def plugin_dir() -> str:
    """Our executables (generated on first use)."""
    from netplugins.delivery import ensure_default_dir

    return ensure_default_dir()


@dataclass
class PluginRun:
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None

    def ok(self) -> PluginRun:
        assert self.rc == 0, f"plugin failed rc={self.rc}: {self.stdout} {self.stderr}"
        return self


def run_plugin(
    host: Netns | None,
    ptype: str,
    command: str,
    conf: Mapping[str, Any] | bytes,
    *,
    container_id: str = "ctr1",
    netns: str = "",
    ifname: str = "eth0",
    cni_args: str = "",
    path: str | None = None,
    env: Mapping[str, str] | None = None,
    exe: str | None = None,
) -> PluginRun:
    """Exec plugin ``ptype`` with CNI_COMMAND=``command``, in ``host``'s network namespace."""
    pdir = plugin_dir()
    full_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                "CNI_COMMAND": command, "CNI_PATH": path if path is not None else f"{pdir}:{REFERENCE_DIR}",
                "NETCTL_PLUGIND": "0", "NETCTL_LOCK_DIR": os.environ.get("NETCTL_LOCK_DIR", "")}
    if command not in ("VERSION", "GC", "STATUS"):
        full_env |= {"CNI_CONTAINERID": container_id, "CNI_IFNAME": ifname, "CNI_NETNS": netns}
    if cni_args:
        full_env["CNI_ARGS"] = cni_args
    if env:
        full_env |= dict(env)
    argv = [exe or os.path.join(pdir, ptype)]
    if host is not None:
        argv = host.cmd(argv)
    stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    proc = subprocess.run(argv, input=stdin, env=full_env, capture_output=True, timeout=120)
    return PluginRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def start_daemon(host: Netns, socket_path: str) -> subprocess.Popen[bytes]:
    """Start the agent (``netctl agent run``) inside ``host``, serving ``socket_path``,
    with its own state in a temporary directory (removed when the test run ends, so that
    tests which check their tmp_path for leftovers see none of the agent's files); wait
    until it listens."""
    import atexit
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="nctl-agent-")
    atexit.register(shutil.rmtree, root, True)
    proc = host.spawn([sys.executable, "-I", "-m", "runtime.agent", "run", "--socket", socket_path,
                       "--root-lib", os.path.join(root, "lib"), "--root-run", os.path.join(root, "run")],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for(lambda: os.path.exists(socket_path), timeout=30):
        raise RuntimeError("the agent did not start")
    return proc


@contextmanager
def plugin_mode(mode: str, host: Netns, tmp: Path) -> Iterator[dict[str, str]]:
    """Environment for plugin calls in ``mode``: 'inproc' (NETCTL_PLUGIND=0) or 'daemon'
    (a warm plugin daemon started inside ``host``, stopped afterwards)."""
    if mode == "inproc":
        yield {"NETCTL_PLUGIND": "0"}
        return
    sock = str(tmp / "plugind.sock")
    proc = start_daemon(host, sock)
    try:
        yield {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": sock}
    finally:
        proc.terminate()
        # the agent lets a busy worker finish its call (up to 30 s) and stops dnsd (up to
        # 5 s) before it exits; it usually takes ~30 ms, but once in a CI run 5 s were not
        # enough, so allow what its stop promises and kill it only after that
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
