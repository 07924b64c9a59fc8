"""dnsd: the embedded DNS server of netctl (one process for all networks).

Modules: ``config`` (directory layout, writers, readers), ``control`` (start/reload/stop),
``records`` (immutable snapshot + scoped lookups), ``wire`` (fast path), ``resolver``
(decisions), ``slowpath`` (dnslib), ``forward`` (upstreams), ``upstreams`` (resolv.conf),
``inotify`` and ``server`` (the process). ``config`` and ``control`` are cheap to import.
"""
