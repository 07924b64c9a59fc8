"""Delivery of the plugin executables: `netctl plugins dir` and `netctl plugins install`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from netplugins.delivery import compile_packages, install
from netplugins.registry import PLUGINS, SHIM_MARKER, is_our_plugin

ROOT = Path(__file__).resolve().parents[3]


def test_install_writes_every_plugin_executable(tmp_path: Path) -> None:
    paths = install(str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths) == sorted(PLUGINS)
    for path in paths:
        assert os.access(path, os.X_OK)
        text = Path(path).read_text()
        assert text.startswith(f"#!{sys.executable} -IS\n")
        assert is_our_plugin(path) == os.path.basename(path)
    # written to a temporary name and renamed: nothing else is left in the directory
    assert sorted(os.listdir(tmp_path)) == sorted(PLUGINS)


def test_install_is_idempotent_and_replaces_stale_files(tmp_path: Path) -> None:
    install(str(tmp_path))
    stale = tmp_path / "bridge"
    stale.write_text("#!/bin/sh\necho old\n")
    install(str(tmp_path))
    assert is_our_plugin(str(stale)) == "bridge"
    assert f"{SHIM_MARKER} bridge" in stale.read_text()


def test_is_our_plugin_rejects_others(tmp_path: Path) -> None:
    other = tmp_path / "bridge"
    other.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 100)
    assert is_our_plugin(str(other)) is None
    assert is_our_plugin(str(tmp_path / "missing")) is None


def test_installed_executable_answers_version(tmp_path: Path) -> None:
    install(str(tmp_path))
    proc = subprocess.run([str(tmp_path / "loopback")], input=b'{"cniVersion": "0.4.0"}',
                          env={"CNI_COMMAND": "VERSION", "NETCTL_PLUGIND": "0"},
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"cniVersion": "0.4.0",
                                       "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}


def test_without_cni_command_it_prints_about_to_stderr(tmp_path: Path) -> None:
    install(str(tmp_path))
    proc = subprocess.run([str(tmp_path / "bridge")], input=b"", env={}, capture_output=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"CNI protocol versions supported" in proc.stderr


def test_netctl_plugins_commands(tmp_path: Path) -> None:
    env = dict(os.environ, NETCTL_ROOT=str(tmp_path / "root"), NETCTL_PLUGIND="0")
    out = subprocess.run([sys.executable, "-m", "runtime.cli", "plugins", "dir"], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert os.path.isabs(out) and is_our_plugin(os.path.join(out, "bridge")) == "bridge"
    dest = tmp_path / "opt-cni-bin"
    listed = subprocess.run([sys.executable, "-m", "runtime.cli", "plugins", "install", "--dir", str(dest)],
                            env=env, capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()
    assert sorted(os.path.basename(p) for p in listed) == sorted(PLUGINS)


def test_shim_version_answer_matches_the_plugins() -> None:
    import json as _json

    from netplugins.cni.shim import SUPPORTED_VERSIONS, answer_version, config_version
    from netplugins.cni.skel import PluginFuncs, run
    from netplugins.registry import load_funcs

    for ptype in PLUGINS:
        funcs: PluginFuncs = load_funcs(ptype)
        assert funcs.versions == SUPPORTED_VERSIONS, ptype
        for stdin in (b'{"cniVersion": "0.4.0"}', b'{"cniVersion":"1.1.0","name":"x"}',
                      b' {"name": "n", "cniVersion" : "1.0.0", "type": "bridge"}\n'):
            quick = answer_version(stdin)
            full = run(funcs, {"CNI_COMMAND": "VERSION"}, stdin)
            assert quick is not None and _json.loads(quick) == _json.loads(full.stdout)
    # anything unusual takes the full path
    for odd in (b"", b"[]", b'{"cniVersion": 1}', b'{"a": {"cniVersion": "1.0.0"}, "cniVersion": "0.4.0"}',
                b'{"cniVersion": "1.0.0"', b'{"cniVersion": "x\\"y"}'):
        assert config_version(odd) is None, odd


def test_install_compiles_the_bytecode_plugin_processes_import(tmp_path: Path) -> None:
    import importlib.util

    import ipam.owner

    pyc = Path(importlib.util.cache_from_source(ipam.owner.__file__))
    pyc.unlink(missing_ok=True)
    install(str(tmp_path / "bin"))  # a new directory: every executable is written
    assert pyc.exists()
    pyc.unlink()
    install(str(tmp_path / "bin"))  # nothing written: nothing compiled either
    assert not pyc.exists()
    compile_packages()
    assert pyc.exists()
