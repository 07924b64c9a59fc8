"""Unit tests of the portmap plugin never reach the kernel: each command gets the fake
host of portmap_fakes.py as its ``host`` argument."""

from __future__ import annotations

import pytest
from portmap_fakes import Host


@pytest.fixture
def host() -> Host:
    return Host()
