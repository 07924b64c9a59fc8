"""``ipam.resolvConf``: a resolv.conf whose settings become the result's ``dns``.

Same reading as the reference (``plugins/ipam/host-local/dns.go``): ``nameserver`` lines
add a server, ``domain`` sets the domain (last one wins), ``search`` and ``options``
append their words; comments (# or ;), blank lines and other keywords are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ReadError

#: more than any real resolv.conf (glibc reads 3 servers, 6 search domains)
MAX_SIZE = 64 * 1024


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> ResolvConf:
    """Parse resolv.conf text (pure)."""
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    domain = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver":
            servers.append(values[0])
        elif key == "domain":
            domain = values[0]
        elif key == "search":
            search.extend(values)
        elif key == "options":
            options.extend(values)
    return ResolvConf(tuple(servers), domain, tuple(search), tuple(options))


def load_resolv_conf(path: str) -> ResolvConf:
    """Read and parse the file at ``path``.

    Raises:
        ReadError: when it cannot be read (code 5), naming the path.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            # bounded: a resolvConf of /dev/zero must not exhaust memory
            return parse_resolv_conf(fh.read(MAX_SIZE))
    except OSError as exc:
        raise ReadError(f"failed to read resolvConf {path}", exc.strerror or str(exc)) from None
