"""Make the dnsd test helpers importable and offer the standard topology."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dnsd_fixtures import write_topology  # noqa: E402

from dnsd.records import Records, load_records  # noqa: E402


@pytest.fixture
def topo_dir(tmp_path: Path) -> str:
    return write_topology(tmp_path / "dns")


@pytest.fixture
def records(topo_dir: str) -> Records:
    return load_records(topo_dir)
