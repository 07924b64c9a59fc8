"""Integration fixtures: plugins run for real inside throwaway namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cniutil import start_daemon
from nsutil import Netns


@pytest.fixture(params=["inproc", "daemon"])
def plugin_env(request: pytest.FixtureRequest, host_ns: Netns, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for plugin calls: once running in-process, once through the warm daemon."""
    if request.param == "inproc":
        yield {"NETCTL_PLUGIND": "0"}
        return
    sock = str(tmp_path / "plugind.sock")
    proc = start_daemon(host_ns, sock)
    try:
        yield {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": sock}
    finally:
        proc.terminate()
        proc.wait(5)
