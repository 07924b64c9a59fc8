"""systemd units for the agent: a socket unit that owns the plugin socket (socket
activation: the first plugin call starts the service, and the socket stays while the
service restarts) and the service that accepts it through ``LISTEN_FDS``."""

from __future__ import annotations

import os
import sys

SOCKET_UNIT = "netctl-agent.socket"
SERVICE_UNIT = "netctl-agent.service"
DEFAULT_SOCKET = "/run/netctl/plugind.sock"


def render_units(python: str = sys.executable, socket_path: str = DEFAULT_SOCKET) -> dict[str, str]:
    """The two unit files for an installation whose interpreter is ``python`` (pure)."""
    socket_unit = f"""[Unit]
Description=netctl agent plugin socket (CNI plugin calls are served warm through it)
Documentation=https://github.com/netctl/netctl/blob/main/docs/agent.md

[Socket]
ListenStream={socket_path}
SocketMode=0600
DirectoryMode=0700
# the plugins check the caller's uid again (SO_PEERCRED): only root may drive them

[Install]
WantedBy=sockets.target
"""
    service_unit = f"""[Unit]
Description=netctl agent: warm CNI plugin calls, dnsd supervision, firewall repair
Documentation=https://github.com/netctl/netctl/blob/main/docs/agent.md
Requires={SOCKET_UNIT}
After={SOCKET_UNIT} network-pre.target
# firewalld flushes nftables on reload; the agent restores our tables right after
After=firewalld.service

[Service]
Type=simple
# -I: isolated mode, cwd /: a root service imports nothing from a directory or PYTHONPATH
ExecStart={python} -I -m runtime.agent run --socket {socket_path}
WorkingDirectory=/
# SIGTERM to the agent only: it lets busy plugin workers finish and stops dnsd itself
KillMode=mixed
TimeoutStopSec=45
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
Also={SOCKET_UNIT}
"""
    return {SOCKET_UNIT: socket_unit, SERVICE_UNIT: service_unit}


def write_units(directory: str, python: str = sys.executable) -> list[str]:
    """Write both units into ``directory``; their paths.

    Raises:
        OSError: when the directory cannot be written.
    """
    os.makedirs(directory, exist_ok=True)
    out = []
    for name, text in render_units(python).items():
        path = os.path.join(directory, name)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        out.append(path)
    return out
