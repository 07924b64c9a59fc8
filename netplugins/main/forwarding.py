"""The host's forwarding posture: who turned IP forwarding on, and turning it back off.

A gateway needs ``net.ipv4.ip_forward`` (``net.ipv6.conf.all.forwarding``) on. A host
that forwarded already keeps its behaviour: nothing is recorded, nothing is guarded, and
nothing is turned off later. When the plugin is the one that turns a family on (it was
0), it records that in ``<stateDir>/forwarding.record`` (JSON), and every network's firewall
policy then carries that family in ``guard_forwarding``: forwarded packets that neither
enter nor leave a netctl bridge are dropped (firewall/plan.py, the forwarding guard), so
the host does not start routing between its other interfaces. When the last attachment
of the last network under ``stateDir`` goes (its rules, the guard included, go with it),
the recorded families are turned back off and the record removed.

``locked()`` (``<stateDir>/forwarding.lock``) serialises this with the records: ADD holds
it from turning forwarding on until its attachment is recorded, DEL from removing the
record until forwarding is off again, so a DEL never turns off what an ADD just needs.
Lock order: this lock, then a network's (``Attachments.locked``).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ..nl import sysctl

#: JSON, but not named *.json: those are attachment records (tests and tools walk them)
RECORD = "forwarding.record"
LOCK = "forwarding.lock"
KEYS = {4: "net/ipv4/ip_forward", 6: "net/ipv6/conf/all/forwarding"}


def plan_enable(current: dict[int, str | None], wanted: Iterable[int],
                recorded: Iterable[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(families to switch on, the record afterwards) for a gateway of ``wanted`` families.

    Only a family that was off (``"0"``) becomes netctl's; one that was on stays the
    host's, and a family netctl turned on earlier stays netctl's (pure).
    """
    writes = tuple(sorted(f for f in set(wanted) if current.get(f) != "1"))
    record = set(recorded) | {f for f in writes if current.get(f) == "0"}
    return writes, tuple(sorted(record))


class Forwarding:
    """The forwarding record of one state directory (one host namespace)."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the forwarding lock for the block.

        Raises:
            OSError: the state directory cannot be created or the lock file opened.
        """
        os.makedirs(self.state_dir, mode=0o755, exist_ok=True)
        fd = os.open(os.path.join(self.state_dir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def recorded(self) -> tuple[int, ...]:
        """Families netctl turned on (``[]`` when the record is absent or unreadable)."""
        try:
            with open(os.path.join(self.state_dir, RECORD)) as fh:
                fams = json.load(fh).get("enabledByNetctl", [])
        except (OSError, ValueError, AttributeError):
            return ()
        return tuple(sorted(f for f in fams if f in KEYS))

    def enable(self, families: Iterable[int]) -> tuple[int, ...]:
        """Turn forwarding on for ``families``; the families to guard (the record). Call
        with the lock held.

        Raises:
            OSError: a sysctl or the record cannot be written.
        """
        wanted = set(families)
        current = {f: sysctl.read(KEYS[f]) for f in wanted}
        writes, record = plan_enable(current, wanted, self.recorded())
        if record != self.recorded():
            # the record first: a crash between the two leaves a guard too many, not a
            # host routing everything with nobody knowing netctl did it
            self._write(record)
        for fam in writes:
            sysctl.write(KEYS[fam], "1")
        return record

    def release_if_idle(self) -> None:
        """Turn off what netctl turned on once no network under the state directory has
        an attachment. Call with the lock held.

        Raises:
            OSError: a sysctl cannot be written or the record removed.
        """
        record = self.recorded()
        if not record or self._in_use():
            return
        for fam in record:
            sysctl.write(KEYS[fam], "0")
        try:
            os.unlink(os.path.join(self.state_dir, RECORD))
        except FileNotFoundError:
            pass

    def _in_use(self) -> bool:
        """Whether any network has an attachment record (a directory with a record)."""
        try:
            entries = list(os.scandir(self.state_dir))
        except FileNotFoundError:
            return False
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                try:
                    if any(n.endswith(".json") for n in os.listdir(entry.path)):
                        return True
                except OSError:
                    continue
        return False

    def _write(self, record: tuple[int, ...]) -> None:
        path = os.path.join(self.state_dir, RECORD)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            json.dump({"enabledByNetctl": list(record)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path)
