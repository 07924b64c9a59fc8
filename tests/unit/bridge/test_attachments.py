"""Attachment records (netplugins/main/attachments.py): what a killed writer leaves goes
with the record."""

from __future__ import annotations

from pathlib import Path

from netplugins.main.attachments import Attachments


def test_remove_takes_a_killed_writers_partial_file_and_nothing_else(tmp_path: Path) -> None:
    att = Attachments(str(tmp_path), "net1")
    with att.locked():
        att.put("c1", "eth0", {"containerID": "c1", "ifname": "eth0"})
        att.put("c2", "eth0", {"containerID": "c2", "ifname": "eth0"})
    # a writer SIGKILLed between writing its temporary file and renaming it
    (tmp_path / "net1" / "c1-eth0.json.tmp").write_text('{"containerID": "c1"')
    (tmp_path / "net1" / "c2-eth0.json.tmp").write_text("{")
    with att.locked():
        att.remove("c1", "eth0")
    left = sorted(p.name for p in (tmp_path / "net1").iterdir())
    assert left == ["c2-eth0.json", "c2-eth0.json.tmp"]
    with att.locked():
        att.remove("c2", "eth0")
        att.remove("c2", "eth0")  # absent: still fine
    assert list((tmp_path / "net1").iterdir()) == []
    att.cleanup_dir()
    assert not (tmp_path / "net1").exists()
