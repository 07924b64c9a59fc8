"""``netctl demo``: the seed scenario in a throwaway host namespace, then nothing left.

Safe on any machine: a new network namespace plays the host, netctl's state lives in a
temporary NETCTL_ROOT, and everything (containers, networks, namespaces, the plugin
daemon and dnsd it started) is removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import subprocess

from .sandbox import Sandbox


class Demo:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.ns = sb.ns
        self.root = sb.root
        self.env = sb.env

    def sh(self, argv: list[str], show: bool = True, check: bool = True) -> str:
        proc = subprocess.run(self.sb.argv(argv), env=self.env, capture_output=True, text=True)
        if show:
            print(f"$ {' '.join(argv)}")
            text = (proc.stdout + proc.stderr).rstrip()
            if text:
                print("  " + text.replace("\n", "\n  "))
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def netctl(self, *args: str, show: bool = True, check: bool = True) -> str:
        proc = subprocess.run(self.sb.netctl_argv(*args), env=self.env, capture_output=True, text=True)
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


def main() -> int:
    """Run the demo in a sandbox; everything it made is removed at the end.

    Raises:
        NetctlError: the sandbox cannot be made (not root).
    """
    with Sandbox("netctl-demo") as sb:
        try:
            return Demo(sb).run()
        finally:
            print(f"\n# removing {sb.ns} and {sb.root}: nothing is left")
