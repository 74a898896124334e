"""A client that requests one page at a steady pace while something else happens (issue 16).

It records every request: when it was sent, how long it took, its status, and whether a failed
one got our maintenance page (503 with the page's marker) or a connection error. Used by the
reconfigure figure in bench/ and by the e2e tests that apply changes under load.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAINTENANCE_MARK = 'id="omerowizard-maintenance"'


@dataclass
class Request:
    sent: float  # seconds since the load started
    seconds: float
    status: int | None  # None: no HTTP answer at all
    maintenance: bool = False  # a 503 with our maintenance page
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Summary:
    made: int
    failed: int
    maintenance: int  # failed requests that got our maintenance page
    connection_errors: int  # failed requests with no HTTP answer
    other: int  # failed requests with another status
    longest_gap: float  # longest time between two successful answers (s)
    seconds: float

    def as_dict(self) -> dict:
        return {"made": self.made, "failed": self.failed, "maintenance": self.maintenance,
                "connection_errors": self.connection_errors, "other": self.other,
                "longest_gap_s": round(self.longest_gap, 3), "seconds": round(self.seconds, 2)}

    def __str__(self) -> str:
        return (f"{self.made} requests, {self.failed} failed ({self.maintenance} maintenance page, "
                f"{self.connection_errors} connection errors, {self.other} other), longest gap "
                f"{self.longest_gap:.2f} s")


@dataclass
class Load:
    """Requests ``url`` every ``interval`` seconds in a thread, from ``start()`` to ``stop()``,
    at most ``limit`` requests (a bounded loop on loopback)."""

    url: str
    interval: float = 0.05
    timeout: float = 10
    limit: int = 5000
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._more = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = 0.0

    def start(self) -> "Load":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> Summary:
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return self.summary()

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        parts = urlsplit(self.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for _ in range(self.limit):
            if self._stop.is_set():
                return
            sent = time.monotonic()
            r = self._one(parts.hostname or "127.0.0.1", parts.port or 80, path, sent)
            with self._more:
                self.requests.append(r)
                self._more.notify_all()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - sent)))

    def wait_for(self, n: int, until=None, timeout: float = 60) -> None:
        """Wait until ``n`` more requests were made (and ``until(last request)`` holds, if given)."""
        target = len(self.requests) + n
        with self._more:
            self._more.wait_for(lambda: len(self.requests) >= target and (until is None or until(self.requests[-1]))
                                or not self._thread.is_alive(), timeout)

    def _one(self, host: str, port: int, path: str, sent: float) -> Request:
        conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close", **self.headers})
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace")
            return Request(sent - self._t0, time.monotonic() - sent, r.status,
                           maintenance=r.status == 503 and MAINTENANCE_MARK in body)
        except (OSError, http.client.HTTPException) as exc:
            return Request(sent - self._t0, time.monotonic() - sent, None, error=f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def summary(self) -> Summary:
        reqs = list(self.requests)
        failed = [r for r in reqs if not r.ok]
        gap, last = 0.0, 0.0
        for r in reqs:
            if r.ok:
                done = r.sent + r.seconds
                gap = max(gap, done - last)
                last = done
        end = max((r.sent + r.seconds for r in reqs), default=0.0)
        if failed and failed[-1].sent > last:
            gap = max(gap, end - last)
        return Summary(len(reqs), len(failed), sum(r.maintenance for r in failed),
                       sum(r.status is None for r in failed),
                       sum(r.status is not None and not r.maintenance for r in failed), gap, end)
