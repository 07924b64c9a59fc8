"""``netctl demo``: the seed scenario in a throwaway host namespace, then nothing left.

Safe on any machine: a new network namespace plays the host, netctl's state lives in a
temporary NETCTL_ROOT, and everything (containers, networks, namespaces, the plugin
daemon and dnsd it started) is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile


def _pids_in(ns_path: str) -> list[int]:
    target = os.stat(ns_path)
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                st = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                out.append(int(entry))
    return out


class Demo:
    def __init__(self) -> None:
        self.ns = f"netctl-demo-{secrets.token_hex(3)}"
        self.root = tempfile.mkdtemp(prefix="netctl-demo-")
        self.env = dict(os.environ, NETCTL_ROOT=self.root)
        pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg, self.env.get("PYTHONPATH")]))

    def sh(self, argv: list[str], show: bool = True, check: bool = True) -> str:
        full = ["nsenter", f"--net=/run/netns/{self.ns}", "--", *argv]
        proc = subprocess.run(full, env=self.env, capture_output=True, text=True)
        if show:
            print(f"$ {' '.join(argv)}")
            text = (proc.stdout + proc.stderr).rstrip()
            if text:
                print("  " + text.replace("\n", "\n  "))
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def netctl(self, *args: str, show: bool = True, check: bool = True) -> str:
        full = ["nsenter", f"--net=/run/netns/{self.ns}", "--", sys.executable, "-m", "runtime.cli", *args]
        proc = subprocess.run(full, env=self.env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"netctl {' '.join(args)} failed: {proc.stderr.strip()}")
        out = proc.stdout.strip()
        if show:
            print(f"$ netctl {' '.join(args)}")
            if out:
                print("  " + out.replace("\n", "\n  "))
            if proc.returncode != 0:
                print(f"  (exit status {proc.returncode}{': ' + proc.stderr.strip() if proc.stderr.strip() else ''})")
        return out

    def run(self) -> int:
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        try:
            self.sh(["ip", "link", "set", "lo", "up"], show=False)
            print(f"# a throwaway namespace {self.ns} plays the host; state in {self.root}\n")
            self.netctl("create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1", "my_net2")
            self.netctl("run", "-d", "--name", "web1", "--network", "my_net2", "--", "sleep", "600")
            self.netctl("run", "-d", "--name", "web2", "--network", "my_net2", "--alias", "db",
                        "--", "sleep", "600")
            self.netctl("run", "-d", "--name", "other", "--", "sleep", "600")
            self.netctl("ps")
            print()
            for name in ("web1", "web2", "other"):
                ip = self.netctl("inspect", "-f",
                                 "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name, show=False)
                print(f"{name}: {ip}")
            print("\n# web1 and web2 talk by name through the embedded DNS (dnsd on the gateway)")
            self.netctl("exec", "web1", "--", "getent", "hosts", "web2")
            self.netctl("exec", "web1", "--", "getent", "hosts", "db")
            self.netctl("exec", "web1", "--", "ping", "-c", "2", "-W", "1", "web2")
            print("\n# 'other' is on the default bridge: no route to my_net2, no DNS for its names")
            self.netctl("exec", "other", "--", "ping", "-c", "1", "-W", "1", "172.22.16.2", check=False)
            self.netctl("exec", "other", "--", "getent", "hosts", "web1", check=False)
            print("\n# connect it to my_net2 and it can")
            self.netctl("connect", "my_net2", "other")
            self.netctl("exec", "other", "--", "ping", "-c", "1", "-W", "1", "web1")
            print("\n# clean up")
            for name in ("web1", "web2", "other"):
                self.netctl("container", "rm", "-f", name, show=False)
            self.netctl("rm", "my_net2")
            return 0
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        path = f"/run/netns/{self.ns}"
        for pid in _pids_in(path) if os.path.exists(path) else []:
            try:
                os.kill(pid, signal.SIGKILL)  # what the demo started inside its namespace
            except ProcessLookupError:
                pass
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split()[4] for line in fh if self.root in line]
        for mnt in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        subprocess.run(["ip", "netns", "delete", self.ns], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        print(f"\n# removed {self.ns} and {self.root}: nothing is left")


def main() -> int:
    if os.geteuid() != 0:
        print("Error: the demo needs root (network namespaces)", file=sys.stderr)
        return 1
    return Demo().run()
