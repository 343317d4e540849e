"""The fault-injecting reverse proxy, in front of a tiny stdlib upstream."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import requests

from tests.harness.fakekube import LoopbackServer
from tests.harness.proxy import FaultProxy

DEVICES = "/api/dcim/devices/"
SITES = "/api/dcim/sites/"


class Upstream(LoopbackServer):
    """Echoes each request as JSON and remembers (method, path, body, proxy-side port)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(handler)
        self.seen: list[tuple[str, str, bytes, int]] = []
        self.closed = threading.Event()  # a connection ended
        self.url = f"http://127.0.0.1:{self.port}"


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5.0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        cast(Upstream, self.server).seen.append(
            (self.command, self.path, body, self.client_address[1])
        )
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            return
        doc = {
            "method": self.command,
            "path": self.path,
            "body": body.decode(),
            "host": self.headers["Host"],
            "forwarded_host": self.headers.get("X-Forwarded-Host"),
            "authorization": self.headers.get("Authorization"),
        }
        data = json.dumps(doc).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Keep-Alive", "timeout=5")
        self.send_header("X-Upstream", "yes")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET


class QuickIdleHandler(EchoHandler):
    timeout = 0.2  # closes idle keep-alive connections fast, like a reloading gunicorn

    def finish(self) -> None:
        super().finish()
        cast(Upstream, self.server).closed.set()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream(EchoHandler)
    server.start("upstream")
    yield server
    server.stop()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url) as p:
        yield p


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # no proxies from the environment
        yield session


def netloc(url: str) -> str:
    return urlsplit(url).netloc


def test_forwards_everything_and_counts_by_method(
    upstream: Upstream, proxy: FaultProxy, http: requests.Session
) -> None:
    r = http.get(f"{proxy.url}{DEVICES}?limit=2&offset=0", headers={"Authorization": "Token t"})
    assert r.json() == {
        "method": "GET",
        "path": f"{DEVICES}?limit=2&offset=0",
        "body": "",
        "host": netloc(upstream.url),
        "forwarded_host": netloc(proxy.url),
        "authorization": "Token t",
    }
    assert (r.headers["X-Upstream"], r.headers["Content-Length"]) == ("yes", str(len(r.content)))
    assert "Keep-Alive" not in r.headers
    assert http.post(f"{proxy.url}{SITES}", json={"name": "a"}).json()["body"] == '{"name": "a"}'
    assert http.patch(f"{proxy.url}{SITES}1/", json={"x": 1}).status_code == 200
    assert http.put(f"{proxy.url}{SITES}1/", json={"x": 2}).status_code == 200
    assert http.delete(f"{proxy.url}{SITES}1/").status_code == 200
    assert proxy.counts() == Counter({"GET": 1, "POST": 1, "PATCH": 1, "PUT": 1, "DELETE": 1})
    assert [(w.method, w.path, w.query, w.status) for w in proxy.writes()] == [
        ("POST", SITES, "", 201),
        ("PATCH", f"{SITES}1/", "", 200),
        ("PUT", f"{SITES}1/", "", 200),
        ("DELETE", f"{SITES}1/", "", 200),
    ]
    first = proxy.log[0]
    assert (first.method, first.path, first.query, first.status) == (
        "GET",
        DEVICES,
        "limit=2&offset=0",
        200,
    )
    assert 0 < first.duration < 1
    assert len({port for *_rest, port in upstream.seen}) == 1  # one kept-alive upstream connection
    proxy.reset_log()
    assert (proxy.log, proxy.counts(), proxy.writes()) == ([], Counter(), [])


def test_chunked_upstream_answer_and_head(proxy: FaultProxy, http: requests.Session) -> None:
    r = http.get(f"{proxy.url}/chunked")
    assert (r.text, r.headers["Content-Length"]) == ("hello world", "11")
    assert "Transfer-Encoding" not in r.headers
    head = http.head(f"{proxy.url}{DEVICES}")
    get = http.get(f"{proxy.url}{DEVICES}")
    assert head.content == b""
    assert int(head.headers["Content-Length"]) == len(get.content) + 1  # "HEAD" is 1 longer


def test_status_fault_answers_once_by_default(
    upstream: Upstream, proxy: FaultProxy, http: requests.Session
) -> None:
    fault = proxy.fault(f"^{DEVICES}$", status=503, headers={"Retry-After": "3"})
    r = http.get(f"{proxy.url}{DEVICES}?limit=1")
    assert (r.status_code, r.json()) == (503, {"detail": "Service Unavailable"})
    assert (r.headers["Content-Type"], r.headers["Retry-After"]) == ("application/json", "3")
    assert http.get(f"{proxy.url}{DEVICES}").status_code == 200
    assert (fault.seen, fault.hits) == (2, 1)
    assert [(e.status, e.faulted) for e in proxy.log] == [(503, True), (200, False)]
    assert [s[:2] for s in upstream.seen] == [("GET", DEVICES)]


def test_html_fault(proxy: FaultProxy, http: requests.Session) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    proxy.fault("/api/", status=502, body=page, content_type="text/html")
    r = http.get(f"{proxy.url}{DEVICES}")
    assert (r.status_code, r.headers["Content-Type"], r.content) == (502, "text/html", page)


def test_delay_slows_the_answer_and_beats_a_client_timeout(
    proxy: FaultProxy, http: requests.Session
) -> None:
    proxy.fault(DEVICES, delay=0.3)
    started = time.monotonic()
    assert http.get(f"{proxy.url}{DEVICES}").status_code == 200
    assert 0.3 <= time.monotonic() - started < 1.5
    assert 0.3 <= proxy.log[0].duration < 1.5
    proxy.fault(DEVICES, delay=60)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        http.get(f"{proxy.url}{DEVICES}", timeout=(1, 0.2))
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    proxy.stop()  # must not wait for the 60 s delay
    assert time.monotonic() - started < 1.5


def test_a_request_whose_client_gave_up_still_lands_and_wait_idle_waits_for_it(
    upstream: Upstream, proxy: FaultProxy, http: requests.Session
) -> None:
    proxy.fault(SITES, method="post", delay=0.5)
    with pytest.raises(requests.ReadTimeout):
        http.post(f"{proxy.url}{SITES}", data=b"{}", timeout=(1, 0.1))
    assert upstream.seen == []
    started = time.monotonic()
    proxy.wait_idle()
    assert 0.3 <= time.monotonic() - started < 1.5
    assert [(m, p) for m, p, _, _ in upstream.seen] == [("POST", SITES)]
    assert [(r.method, r.status) for r in proxy.log] == [("POST", 201)]
    slow = proxy.fault(SITES, delay=1)
    client = threading.Thread(target=lambda: http.get(f"{proxy.url}{SITES}", timeout=10))
    client.start()
    assert slow.arrived.wait(5)
    with pytest.raises(TimeoutError, match=r"a request was still in flight after 0\.2s"):
        proxy.wait_idle(timeout=0.2)
    client.join()


def test_drop_closes_the_connection_without_an_answer(
    upstream: Upstream, proxy: FaultProxy, http: requests.Session
) -> None:
    proxy.fault(SITES, method="post", drop=True)
    with pytest.raises(requests.ConnectionError):
        http.post(f"{proxy.url}{SITES}", json={"name": "a"})
    assert http.post(f"{proxy.url}{SITES}", json={"name": "b"}).status_code == 201
    assert [(e.method, e.status, e.faulted) for e in proxy.log] == [
        ("POST", 0, True),
        ("POST", 201, False),
    ]
    assert [s[2] for s in upstream.seen] == [b'{"name": "b"}']


def test_forward_first_applies_the_write_then_fails(
    upstream: Upstream, proxy: FaultProxy, http: requests.Session
) -> None:
    proxy.fault(SITES, method="POST", status=500, forward_first=True)
    r = http.post(f"{proxy.url}{SITES}", json={"name": "a"})
    assert (r.status_code, r.json()) == (500, {"detail": "Internal Server Error"})
    proxy.fault(SITES, method="POST", drop=True, forward_first=True)
    with pytest.raises(requests.ConnectionError):
        http.post(f"{proxy.url}{SITES}", json={"name": "b"})
    assert [(s[0], s[2]) for s in upstream.seen] == [
        ("POST", b'{"name": "a"}'),
        ("POST", b'{"name": "b"}'),
    ]
    assert [(w.status, w.faulted) for w in proxy.writes()] == [(500, True), (0, True)]


def test_after_and_times(proxy: FaultProxy, http: requests.Session) -> None:
    fault = proxy.fault(DEVICES, status=500, after=1, times=2)
    statuses = [http.get(f"{proxy.url}{DEVICES}").status_code for _ in range(4)]
    assert statuses == [200, 500, 500, 200]
    assert (fault.seen, fault.hits) == (4, 2)
    forever = proxy.fault(SITES, status=429, times=None)
    assert [http.get(f"{proxy.url}{SITES}").status_code for _ in range(3)] == [429, 429, 429]
    assert forever.hits == 3


def test_method_filter_remove_and_clear(proxy: FaultProxy, http: requests.Session) -> None:
    conflict = proxy.fault(SITES, method="PATCH", status=409, times=None)
    assert http.get(f"{proxy.url}{SITES}").status_code == 200
    assert http.patch(f"{proxy.url}{SITES}1/", json={}).status_code == 409
    conflict.remove()
    assert http.patch(f"{proxy.url}{SITES}1/", json={}).status_code == 200
    proxy.fault(SITES, status=500, times=None)
    proxy.clear_faults()
    assert http.get(f"{proxy.url}{SITES}").status_code == 200
    assert (conflict.seen, conflict.hits) == (1, 1)


def test_reconnects_when_the_upstream_closed_an_idle_connection(http: requests.Session) -> None:
    server = Upstream(QuickIdleHandler)
    server.start("upstream-quick-idle")
    try:
        with FaultProxy(server.url) as proxy:
            assert http.post(f"{proxy.url}{SITES}", json={"n": 1}).status_code == 201
            assert server.closed.wait(5)  # the upstream closed the idle connection
            assert http.post(f"{proxy.url}{SITES}", json={"n": 2}).status_code == 201
        assert [s[2] for s in server.seen] == [b'{"n": 1}', b'{"n": 2}']
        assert len({s[3] for s in server.seen}) == 2
    finally:
        server.stop()


def test_unreachable_upstream_is_502(http: requests.Session) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with FaultProxy(f"http://127.0.0.1:{port}") as proxy:
        r = http.get(f"{proxy.url}{DEVICES}")
    assert r.status_code == 502
    assert "ConnectionRefusedError" in r.text
    with pytest.raises(ValueError, match="http:// URL"):
        FaultProxy("https://127.0.0.1:1")
