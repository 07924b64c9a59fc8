"""The inotify watch sees config changes and ignores temp files and dnsd's own files."""

from __future__ import annotations

import os
from pathlib import Path

from dnsd import config, control
from dnsd.inotify import DirWatcher


def test_changes_are_seen_and_new_network_dirs_watched(tmp_path: Path) -> None:
    d = str(tmp_path)
    os.makedirs(tmp_path / "networks")
    os.makedirs(tmp_path / "entries")
    w = DirWatcher(d)
    try:
        assert w.read() is False
        config.write_network(d, "n1", ["10.0.0.1"], ["10.0.0.0/24"])
        assert w.read() is True
        config.write_entry(d, "n1", "abc", "eth0", ["x"], ["10.0.0.2"], [])  # creates entries/n1
        assert w.read() is True
        config.write_entry(d, "n1", "abc", "eth0", ["y"], ["10.0.0.2"], [])  # in the new dir
        assert w.read() is True
        (tmp_path / "entries" / "n1" / ".tmp-x.json").write_text("{}")
        control.write_pid(d, 12345)
        assert w.read() is False
        config.remove_network(d, "n1")
        assert w.read() is True
    finally:
        w.close()
