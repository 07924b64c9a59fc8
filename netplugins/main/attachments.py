"""Records of a network's attachments, so that DEL, CHECK and GC work without the namespace
and so that the last DEL of a network can remove the network's firewall rules.

One small JSON file per attachment under ``<stateDir>/<network>/``; an flock on
``<stateDir>/<network>.lock`` serialises "add record + first-attachment setup" against
"remove record + last-attachment teardown" across concurrent plugin processes. Files are
written to a temporary name and renamed, so a killed plugin leaves either no record or a
whole one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    from typing import Any



class Attachments:
    """The attachment records of one network."""

    def __init__(self, state_dir: str, network: str) -> None:
        self.state_dir = state_dir
        self.network = network
        self.dir = os.path.join(state_dir, network)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the network's lock for the block.

        Raises:
            OSError: when the state directory cannot be created.
        """
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.state_dir, f"{self.network}.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _path(self, container_id: str, ifname: str) -> str:
        return os.path.join(self.dir, f"{container_id}-{ifname}.json")

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))
        except FileNotFoundError:
            return []

    def put(self, container_id: str, ifname: str, record: dict[str, Any]) -> None:
        """Write (or replace) a record. Call with the lock held.

        Raises:
            OSError: when it cannot be written.
        """
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        path = self._path(container_id, ifname)
        # one temporary name per record: writers of one attachment hold the lock in turn
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(record, fh)
        os.rename(tmp, path)

    def get(self, container_id: str, ifname: str) -> dict[str, Any] | None:
        """The record, or None when there is none (or it is unreadable)."""
        try:
            with open(self._path(container_id, ifname)) as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def remove(self, container_id: str, ifname: str) -> None:
        """Delete a record, and what a writer killed before its rename left of it (its
        ``.tmp`` file); absence is success. Call with the lock held."""
        path = self._path(container_id, ifname)
        for name in (path, f"{path}.tmp"):
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass

    def count(self) -> int:
        """How many records there are (one directory scan, nothing sorted or read)."""
        try:
            with os.scandir(self.dir) as it:
                return sum(1 for e in it if e.name.endswith(".json"))
        except FileNotFoundError:
            return 0

    def empty(self) -> bool:
        """True when there is no record; stops at the first one (the network's first ADD and
        last DEL ask this on every call, so it must not cost more as the network grows)."""
        try:
            with os.scandir(self.dir) as it:
                return not any(e.name.endswith(".json") for e in it)
        except FileNotFoundError:
            return True

    def all(self) -> list[dict[str, Any]]:
        out = []
        for name in self.names():
            try:
                with open(os.path.join(self.dir, name)) as fh:
                    rec = json.load(fh)
                if isinstance(rec, dict):
                    out.append(rec)
            except (OSError, ValueError):
                continue
        return out

    def cleanup_dir(self) -> None:
        """Remove the empty records directory (the lock file stays: others may hold it)."""
        try:
            os.rmdir(self.dir)
        except OSError:
            pass
