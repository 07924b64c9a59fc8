"""netctl's state on disk: one JSON file per network and per container, under a lock.

Every command that changes state holds an exclusive flock on ``<lib>/netctl.lock`` for
its whole read-modify-write, so two netctl commands at once cannot corrupt it. Files are
written to a temporary name and renamed: a killed netctl leaves either the old or the new
file, never half of one; what it left in the kernel is found by ``netctl gc``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import NotFound
from .models import Container, Network
from .paths import Paths

#: seconds of waiting for the state lock after which netctl says what it waits for
LOCK_NOTICE_AFTER = 2.0


def write_json(path: str, obj: object, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``obj`` as JSON.

    ``durable`` also fsyncs the data before the rename (~10 ms each here): for what must
    survive a power loss (networks, containers). Runtime facts that a reboot makes moot
    anyway (a PID, libcni's result cache, which libcni itself writes without a sync) skip it.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.rename(tmp, path)


def read_json(path: str) -> object:
    with open(path) as fh:
        return json.load(fh)


#: what may be used as a file name as it is (network names are validated the same way)
_SAFE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_FULL_ID = re.compile(r"^[0-9a-f]{64}$")


class State:
    """Networks and containers, read and written under the global lock."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    @contextmanager
    def locked(self, notice_after: float = LOCK_NOTICE_AFTER) -> Iterator[State]:
        """Hold the global lock for the block; say what we wait for after ``notice_after`` s."""
        self.paths.ensure()
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # another netctl is mid-command: usually milliseconds; past a moment, say
                # what this one waits for rather than look hung
                notice = threading.Timer(notice_after, lambda: print(
                    f"waiting for another netctl command to finish (it holds {self.paths.lock})",
                    file=sys.stderr, flush=True))
                notice.daemon = True
                notice.start()
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                finally:
                    notice.cancel()
            yield self
        finally:
            os.close(fd)

    # networks
    def _net_path(self, name: str) -> str:
        return os.path.join(self.paths.networks, f"{name}.json")

    def networks(self) -> list[Network]:
        out = []
        try:
            names = sorted(os.listdir(self.paths.networks))
        except FileNotFoundError:
            return []
        for fname in names:
            if fname.endswith(".json"):
                try:
                    out.append(Network.from_dict(read_json(os.path.join(self.paths.networks, fname))))  # type: ignore[arg-type]
                except (OSError, ValueError, TypeError):
                    continue
        return out

    def find_network(self, ref: str) -> Network | None:
        """By name, full ID or unique ID prefix (a name is one file read, the rest a scan)."""
        if _SAFE_NAME.fullmatch(ref):
            try:
                return Network.from_dict(read_json(self._net_path(ref)))  # type: ignore[arg-type]
            except (OSError, ValueError, TypeError):
                pass
        nets = self.networks()
        for net in nets:
            if net.name == ref or net.id == ref:
                return net
        matches = [n for n in nets if len(ref) >= 3 and n.id.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def network(self, ref: str) -> Network:
        net = self.find_network(ref)
        if net is None:
            raise NotFound(f"network {ref} not found")
        return net

    def save_network(self, net: Network) -> None:
        write_json(self._net_path(net.name), net.to_dict())

    def delete_network(self, name: str) -> None:
        try:
            os.unlink(self._net_path(name))
        except FileNotFoundError:
            pass

    # containers
    def _ctr_path(self, cid: str) -> str:
        return os.path.join(self.paths.container_dir(cid), "config.json")

    def containers(self) -> list[Container]:
        out = []
        try:
            ids = sorted(os.listdir(self.paths.containers))
        except FileNotFoundError:
            return []
        for cid in ids:
            try:
                out.append(Container.from_dict(read_json(self._ctr_path(cid))))  # type: ignore[arg-type]
            except (OSError, ValueError, TypeError):
                continue
        return sorted(out, key=lambda c: c.created)

    def find_container(self, ref: str) -> Container | None:
        """By name, full ID or unique ID prefix. A full ID is one file read (the verbs look a
        container up again by ID several times); a name or prefix is a scan of all records."""
        if _FULL_ID.fullmatch(ref):
            try:
                return Container.from_dict(read_json(self._ctr_path(ref)))  # type: ignore[arg-type]
            except (OSError, ValueError, TypeError):
                pass
        ctrs = self.containers()
        for c in ctrs:
            if c.name == ref or c.id == ref:
                return c
        matches = [c for c in ctrs if len(ref) >= 3 and c.id.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def container(self, ref: str) -> Container:
        c = self.find_container(ref)
        if c is None:
            raise NotFound(f"no such container: {ref}")
        return c

    def save_container(self, c: Container, durable: bool = True) -> None:
        """Write the record (``durable=False`` for runtime facts only, see :func:`write_json`)."""
        write_json(self._ctr_path(c.id), c.to_dict(), durable)

    def delete_container(self, cid: str) -> None:
        # lazy: ~2 ms of netctl start-up; only removal needs it
        import shutil

        shutil.rmtree(self.paths.container_dir(cid), ignore_errors=True)
