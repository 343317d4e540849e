"""An HTTP reverse proxy for tests: counts requests and injects faults in front of a real server."""

from __future__ import annotations

import collections
import http
import http.client
import json
import re
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import urlsplit

from tests.harness.fakekube import LoopbackServer

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Not forwarded either: we set Host and Content-Length ourselves and answer `Expect` here.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect", "x-forwarded-host"}


@dataclass(frozen=True)
class ProxyRequest:
    """One request the proxy answered; status 0 means the connection was dropped."""

    method: str
    path: str
    query: str
    status: int
    duration: float
    faulted: bool = False


@dataclass(eq=False)
class Fault:
    """An injected answer; `seen` counts matching requests, `hits` the ones it answered."""

    path_regex: str
    method: str | None
    status: int | None
    body: bytes | None
    content_type: str
    headers: dict[str, str]
    delay: float
    times: int | None
    after: int
    drop: bool
    forward_first: bool
    hits: int = 0
    seen: int = 0
    # Set when a request it answers arrives (before any delay): tests wait on it, never sleep.
    arrived: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    _remove: Callable[[Fault], None] = field(default=lambda _f: None, repr=False, compare=False)

    def remove(self) -> None:
        self._remove(self)


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _read_chunked(rfile: Any) -> bytes:
    body = bytearray()
    while size := int(rfile.readline().split(b";")[0], 16):
        body += rfile.read(size)
        rfile.readline()
    while rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
        pass
    return bytes(body)


def _closed_while_idle(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection that is readable was closed by the upstream."""
    return conn.sock is not None and bool(select.select([conn.sock], [], [], 0)[0])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 600  # an idle keep-alive connection ends after this

    def setup(self) -> None:
        super().setup()
        self.upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.upstream is not None:
                self.upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _handle(self) -> None:
        proxy = cast(_Server, self.server).proxy
        with proxy._lock:
            proxy._in_flight += 1
        try:
            self._answer()
        finally:
            with proxy._lock:
                proxy._in_flight -= 1

    def _answer(self) -> None:
        server = cast(_Server, self.server)
        proxy = server.proxy
        started = time.monotonic()
        parts = urlsplit(self.path)
        body = self._read_body()
        fault = proxy._take_fault(self.command, parts.path)
        answer = self._forward(body) if fault is not None and fault.forward_first else None
        stopping = fault is not None and fault.delay > 0 and server.stopping.wait(fault.delay)
        if stopping or (fault is not None and fault.drop):
            answer = None
        elif fault is not None and (fault.status is not None or fault.body is not None):
            answer = self._fault_answer(fault)
        elif answer is None:
            answer = self._forward(body)
        # Logged before answering, so a client that got its answer also sees it in the log.
        status = answer.status if answer is not None else 0
        duration = time.monotonic() - started
        proxy._record(
            ProxyRequest(self.command, parts.path, parts.query, status, duration, fault is not None)
        )
        if answer is None:
            self.close_connection = True
        else:
            self._send(answer)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return _read_chunked(self.rfile)
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length is not None else None

    def _forward(self, body: bytes | None) -> _Answer:
        proxy = cast(_Server, self.server).proxy
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED]
        headers.append(("Host", proxy.upstream_netloc))
        if self.headers.get("Host"):
            # NetBox sets USE_X_FORWARDED_HOST, so the URLs it returns (`next`, `url`) point here.
            headers.append(("X-Forwarded-Host", self.headers["Host"]))
        if body is not None:
            headers.append(("Content-Length", str(len(body))))
        for attempt in (1, 2):
            conn = self.upstream
            if conn is not None and _closed_while_idle(conn):
                conn.close()
            if conn is None:
                conn = self.upstream = proxy._connect()
            fresh = conn.sock is None
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders(body)
                resp = conn.getresponse()
                return _Answer(resp.status, resp.reason, resp.getheaders(), resp.read())
            except (ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                self.upstream = None
                # The upstream closed the reused connection just as we sent: retry once on a
                # fresh one, unless that could repeat a write the upstream may have received.
                if fresh or attempt == 2 or self.command in WRITE_METHODS:
                    return _text_answer(502, f"upstream: {e!r}")
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                self.upstream = None
                return _text_answer(504 if isinstance(e, TimeoutError) else 502, repr(e))
        raise AssertionError("unreachable")

    @staticmethod
    def _fault_answer(fault: Fault) -> _Answer:
        status = fault.status or 200
        body = fault.body
        if body is None:
            phrase = http.HTTPStatus(status).phrase
            json_type = "json" in fault.content_type
            body = json.dumps({"detail": phrase}).encode() if json_type else phrase.encode()
        headers = [("Content-Type", fault.content_type), *fault.headers.items()]
        return _Answer(status, http.HTTPStatus(status).phrase, headers, body)

    def _send(self, answer: _Answer) -> None:
        self.send_response_only(answer.status, answer.reason)
        length = None
        for name, value in answer.headers:
            if name.lower() == "content-length":
                length = value
            elif name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if self.command == "HEAD":
            if length is not None:
                self.send_header("Content-Length", length)
        elif answer.status >= 200 and answer.status not in (204, 304):
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)


def _text_answer(status: int, text: str) -> _Answer:
    headers = [("Content-Type", "text/plain; charset=utf-8")]
    return _Answer(status, http.HTTPStatus(status).phrase, headers, text.encode())


class _Server(LoopbackServer):
    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(_Handler)
        self.proxy = proxy


class FaultProxy:
    """A reverse proxy on 127.0.0.1 that logs every request and can inject faults."""

    def __init__(self, upstream: str, *, timeout: float = 300.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream = upstream
        self.upstream_netloc = parts.netloc
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._timeout = timeout
        self.log: list[ProxyRequest] = []
        self._in_flight = 0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.port}"

    def start(self) -> FaultProxy:
        self._server.start(f"faultproxy:{self._server.port}")
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def counts(self) -> collections.Counter[str]:
        """Requests per method."""
        with self._lock:
            return collections.Counter(r.method for r in self.log)

    def writes(self) -> list[ProxyRequest]:
        with self._lock:
            return [r for r in self.log if r.method in WRITE_METHODS]

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until no request is in flight: one whose client died still reaches the upstream
        and gets its answer, as it would at a NetBox behind no proxy at all."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._in_flight:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"a request was still in flight after {timeout}s")
            time.sleep(0.02)

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    def fault(
        self,
        path_regex: str,
        *,
        method: str | None = None,
        status: int | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        after: int = 0,
        drop: bool = False,
        forward_first: bool = False,
    ) -> Fault:
        """Fault requests whose path matches `path_regex` (re.search, no query).

        The first `after` matches pass; the next `times` (None: all) are faulted. Order:
        forward upstream if `forward_first`; wait `delay` s; then close the connection (`drop`),
        or answer `status`/`body` (default body `{"detail": <phrase>}`), or the upstream's answer.
        """
        method = method.upper() if method else None
        fault = Fault(
            path_regex,
            method,
            status,
            body,
            content_type,
            headers or {},
            delay,
            times,
            after,
            drop,
            forward_first,
        )
        fault._remove = self._remove_fault
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _remove_fault(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, method) or not re.search(fault.path_regex, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.hits += 1
                fault.arrived.set()
                return fault
        return None

    def _record(self, entry: ProxyRequest) -> None:
        with self._lock:
            self.log.append(entry)

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            self._upstream_host, self._upstream_port, timeout=self._timeout
        )
