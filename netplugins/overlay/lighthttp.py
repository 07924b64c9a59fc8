"""A minimal JSON-over-HTTP POST for the plugin's hot path (standard library only).

The plugin makes three to five unary requests per ADD. Importing etcd3gw (requests,
urllib3, futurist) costs ~180 ms in every plugin process or daemon worker, more than the
whole rest of an overlay ADD, so the plugin talks to etcd's JSON gateway with
``http.client`` instead; the sync process and netctl, where start-up does not count, use
etcd3gw (leases, watch). Both go through ``Store``, so the transactions are the same code.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlparse


class HttpError(Exception):
    """The server answered with an error status (``body`` holds its text)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Client:
    """One keep-alive connection to ``url``; reconnects once on a dropped connection."""

    def __init__(self, url: str, timeout: float) -> None:
        p = urlparse(url)
        self.host, self.port = p.hostname or "", p.port or 2379
        self.https = p.scheme == "https"
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Raises: HttpError, OSError (unreachable, time-out), ValueError (not JSON)."""
        body = json.dumps(payload).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request("POST", path, body, {"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
                continue
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise OSError(str(exc) or type(exc).__name__) from None
            if resp.status != 200:
                raise HttpError(resp.status, data.decode(errors="replace"))
            out: dict[str, Any] = json.loads(data)
            return out
        raise OSError("connection dropped")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
