"""Waiting for the state lock says what it waits for (runtime/state.py)."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from runtime.paths import Paths
from runtime.state import State


def test_a_long_wait_for_the_lock_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = State(Paths.from_env({"NETCTL_ROOT": str(tmp_path)}))
    st.paths.ensure()
    # another open file description holds it, as another netctl process would
    other = os.open(st.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(other, fcntl.LOCK_EX)
    release = threading.Timer(0.5, lambda: os.close(other))
    release.start()
    with st.locked(notice_after=0.05):
        pass
    release.join()
    assert "waiting for another netctl command to finish" in capsys.readouterr().err


def test_an_uncontended_lock_is_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = State(Paths.from_env({"NETCTL_ROOT": str(tmp_path)}))
    with st.locked():
        pass
    assert capsys.readouterr().err == ""
