"""Integration fixtures: plugins run for real inside throwaway namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cniutil import plugin_mode
from nsutil import Netns


@pytest.fixture(params=["inproc", "daemon"])
def plugin_env(request: pytest.FixtureRequest, host_ns: Netns, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for plugin calls: once running in-process, once through the warm daemon."""
    with plugin_mode(request.param, host_ns, tmp_path) as env:
        yield env
