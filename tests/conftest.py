"""Session-wide fixtures: the root-namespace guard and throwaway namespaces."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from nsutil import Netns, can_use_netns, root_netns_snapshot  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Integration tests need root and namespaces; on a machine without them they are skipped."""
    if can_use_netns():
        return
    skip = pytest.mark.skip(reason="needs root and network namespaces")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def attachment_lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Plugin calls made by tests keep their attachment locks (netplugins.cni.attlock) in a
    directory of the test run, not in the machine's /run/netctl."""
    path = str(tmp_path_factory.mktemp("locks"))
    old = os.environ.get("NETCTL_LOCK_DIR")
    os.environ["NETCTL_LOCK_DIR"] = path
    yield
    if old is None:
        os.environ.pop("NETCTL_LOCK_DIR", None)
    else:
        os.environ["NETCTL_LOCK_DIR"] = old


@pytest.fixture(scope="session", autouse=True)
def root_netns_guard() -> Iterator[None]:
    """Fail the run if the machine's own network namespace changed during the tests."""
    if not can_use_netns():
        yield
        return
    before = root_netns_snapshot()
    launchers_before = _launchers()
    yield
    leaked = _launchers() - launchers_before
    after = root_netns_snapshot()
    for pid in leaked:
        _kill_tree(pid)  # containers the tests started and did not remove: ours, by PID
    if leaked:
        pytest.fail(f"tests left {len(leaked)} container(s) running (launcher PIDs {sorted(leaked)})")
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    if changed:
        lines = []
        for key, (old, new) in changed.items():
            lines.append(f"--- {key} before:\n{old}\n+++ {key} after:\n{new}")
        pytest.fail("tests changed the machine's own network namespace:\n" + "\n".join(lines))


def _launchers() -> set[int]:
    """PIDs of container launchers (runtime/launch.py) of this checkout."""
    marker = str(ROOT / "runtime" / "launch.py").encode()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker in fh.read():
                        found.add(int(entry))
            except OSError:
                continue
    return found


def _kill_tree(pid: int) -> None:
    """SIGKILL a launcher's container process, then the launcher."""
    import signal

    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        children = []
    for victim in [*children, pid]:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(autouse=True)
def dev_null_guard() -> Iterator[None]:
    """Fail the test after which /dev/null is no longer the character device.

    Once during development something mounted a network namespace over /dev/null (a
    namespace path that fell back to a stdio default); every process on the machine then
    broke. This catches the test that does it and puts the device back.
    """
    import stat

    yield
    st = os.stat("/dev/null")
    if not stat.S_ISCHR(st.st_mode):
        import subprocess

        subprocess.run(["umount", "-l", "/dev/null"], check=False)
        pytest.fail("/dev/null was replaced by a mount during this test (unmounted again)")


@pytest.fixture
def host_ns() -> Iterator[Netns]:
    """A throwaway namespace that plays the host (plugins run inside it)."""
    ns = Netns.create("nctest-host")
    try:
        yield ns
    finally:
        ns.delete()


@pytest.fixture
def make_ns() -> Iterator[Callable[..., Netns]]:
    """Factory for more throwaway namespaces (containers, an 'outside' host); all removed."""
    made: list[Netns] = []

    def factory(prefix: str = "nctest-ctr") -> Netns:
        ns = Netns.create(prefix)
        made.append(ns)
        return ns

    try:
        yield factory
    finally:
        for ns in reversed(made):
            ns.delete()


@pytest.fixture
def ctr_ns(make_ns: Callable[..., Netns]) -> Netns:
    """One throwaway container namespace."""
    return make_ns()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A private state root for plugins, dnsd and netctl (NETCTL_ROOT)."""
    d = tmp_path / "netctl-root"
    d.mkdir()
    return d


@pytest.fixture
def python() -> str:
    """The interpreter that runs our executables."""
    return sys.executable


os.environ.setdefault("NETCTL_TEST", "1")
