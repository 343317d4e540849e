"""The only module that imports `pynetbox`: one NetBox session with timeouts, retries and errors.

pynetbox holds the session (with a default timeout, so its own calls are bounded too) and answers
/api/status/; bulk reads and writes go through `NetBox.call` on that same session because hhsync
needs raw JSON,
`fields=` projections, a changelog message on every write (deletes included) and one place that
turns every failure into a sentence an operator can act on.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pynetbox
import requests
import urllib3
from requests.adapters import HTTPAdapter

from hhsync import __version__, logs
from hhsync.config import NetboxConfig, Secret
from hhsync.deadline import Deadline
from hhsync.errors import NetboxError

PAGE_SIZE = 1000  # NetBox's MAX_PAGE_SIZE
MAX_PAGES = 1000
MAX_BODY = 2_000_000  # NetBox rejects request bodies over 2.5 MB (DATA_UPLOAD_MAX_MEMORY_SIZE)
MAX_CHUNK = 500
CONNECT_TIMEOUT = 5.0
WRITE_SECONDS_PER_OBJECT = 0.25  # NetBox spends 40-60 ms of CPU per object written; leave room


class NetBox:
    """A NetBox REST API session; `requests` counts calls by HTTP method."""

    def __init__(self, cfg: NetboxConfig, token: Secret) -> None:
        self.url = display_url(cfg.url)  # for messages: never the URL's credentials
        self.base = cfg.url
        self.timeout = cfg.timeout
        logs.register([str(token), str(token).partition(".")[2], *_credentials(cfg.url)])
        self.api = pynetbox.api(cfg.url, token=str(token))
        session = _Session((CONNECT_TIMEOUT, cfg.timeout))
        session.trust_env = not _is_loopback(cfg.url)
        session.verify = str(cfg.ca_bundle) if cfg.ca_bundle else cfg.verify_tls
        if not cfg.verify_tls:  # the config warns once; urllib3 would warn on every request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        # Only idempotent reads are retried on 502/503/504; writes are never sent twice.
        retry = urllib3.Retry(
            total=3,
            connect=2,
            read=1,
            status=2,
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
            status_forcelist=(502, 503, 504),
            backoff_factor=0.5,
            raise_on_status=False,
            retry_after_max=10,
        )
        session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
        session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
        session.headers.update(
            {
                "Accept": "application/json",
                "User-Agent": f"hhsync/{__version__}",
                "Authorization": _authorization(token),
            }
        )
        self.api.http_session = session
        self.session = session
        self.requests: Counter[str] = Counter()
        self.branch: str | None = None  # the schema_id of the branch requests go to
        self._count = threading.Lock()  # reads run in parallel threads

    def close(self) -> None:
        self.session.close()

    def call(
        self,
        method: str,
        path: str,
        deadline: Deadline,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        read_timeout: float | None = None,
    ) -> Any:
        """One request to `/api/<path>`; returns the decoded JSON (None for 204)."""
        url = path if path.startswith("http") else f"{self.base}/api/{path}"
        what = f"{method} {urlsplit(url).path}"
        timeout = (
            deadline.timeout(CONNECT_TIMEOUT),
            deadline.timeout(read_timeout or self.timeout),
        )
        with self._count:
            self.requests[method] += 1
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                data=None if body is None else json.dumps(body),
                headers=self._headers(body),
                timeout=timeout,
            )
        except requests.exceptions.RequestException as e:
            raise self._clean(self._transport_error(e, what, timeout[1])) from None
        try:
            return self._decode(response, what)
        except NetboxError as e:  # NetBox's own words may echo what was sent
            raise self._clean(e) from None

    def _headers(self, body: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.branch is not None:
            headers["X-NetBox-Branch"] = self.branch
        return headers

    @contextmanager
    def in_branch(self, schema_id: str | None) -> Iterator[None]:
        """Send the requests made meanwhile into a branch (None: main)."""
        previous, self.branch = self.branch, schema_id
        try:
            yield
        finally:
            self.branch = previous

    def _clean(self, error: NetboxError) -> NetboxError:
        """The error without the token or URL credentials, whatever quoted them."""
        data = json.loads(logs.redact(json.dumps(error.data))) if error.data is not None else None
        return NetboxError(logs.redact(str(error)), data, error.status)

    def _transport_error(self, e: Exception, what: str, read: float) -> NetboxError:
        if isinstance(e, requests.exceptions.SSLError):
            return NetboxError(
                f"TLS verification of NetBox at {self.url} failed ({_reason(e)}): set [netbox] "
                "ca_bundle to the CA that signed its certificate"
            )
        if isinstance(e, requests.exceptions.ConnectTimeout):
            return NetboxError(f"cannot connect to NetBox at {self.url}: timed out ({what})")
        if isinstance(e, requests.exceptions.Timeout) or "Read timed out" in str(e):
            return self._timeout(what, read)
        if isinstance(e, requests.exceptions.ConnectionError):
            return NetboxError(
                f"cannot connect to NetBox at {self.url} ({_reason(e)}): is it running, "
                "and is [netbox] url right?"
            )
        return NetboxError(f"{what} to NetBox at {self.url} failed: {_reason(e)}")

    def _timeout(self, what: str, seconds: float) -> NetboxError:
        return NetboxError(f"NetBox at {self.url} did not answer {what} within {seconds:g}s")

    def _decode(self, response: requests.Response, what: str) -> Any:
        status = response.status_code
        if status == 204:
            return None
        kind = response.headers.get("Content-Type", "")
        try:
            data = response.json() if "json" in kind else _NOT_JSON
        except ValueError:
            data = _NOT_JSON
        if status < 300 and data is not _NOT_JSON:
            return data
        if data is _NOT_JSON:
            raise NetboxError(
                f"NetBox at {self.url} answered {what} with HTTP {status} and "
                f"{kind.split(';')[0] or 'no content type'} instead of JSON: is [netbox] url the "
                "NetBox address (not a proxy or login page), and is NetBox healthy?"
            )
        detail = _detail(data)
        if status in (401, 403) and "token" in detail.lower():
            raise NetboxError(
                f"token rejected by NetBox (HTTP {status}: {detail}): check [netbox] token_file "
                "or HHSYNC_NETBOX_TOKEN"
            )
        if status == 403:
            raise NetboxError(
                f"NetBox refused {what} (HTTP 403: {detail}): give the token's user permission "
                "for what hhsync writes (see hhsync check)"
            )
        raise NetboxError(f"NetBox answered {what} with HTTP {status}: {detail}", data, status)

    def status(self, deadline: Deadline) -> dict[str, Any]:
        """NetBox's /api/status/, through pynetbox (bounded by the session's default timeout)."""
        deadline.check()
        what = "GET /api/status/"
        self.requests["GET"] += 1
        try:
            data = self.api.status()
        except pynetbox.RequestError as e:
            try:
                self._decode(e.req, what)  # raises the matching NetboxError
            except NetboxError as error:
                raise self._clean(error) from None
            raise
        except ValueError:  # a 2xx answer that is not JSON (requests' JSONDecodeError)
            data = None
        except requests.exceptions.RequestException as e:
            raise self._clean(self._transport_error(e, what, self.timeout)) from None
        if not isinstance(data, dict) or "netbox-version" not in data:
            raise NetboxError(
                f"{self.url}/api/status/ did not answer like NetBox: is [netbox] url the "
                "NetBox address (not a proxy or login page)?"
            )
        return data

    def get_all(
        self, path: str, deadline: Deadline, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every object of a list endpoint, following `next` pages of 1,000."""
        results: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] | None = {**(params or {}), "limit": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            page = self.call("GET", url or path, deadline, params=query)
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise NetboxError(f"NetBox answered GET {path} with something that is not a list")
            results.extend(page["results"])
            url, query = page.get("next"), None  # `next` carries the whole query
            if not url:
                return results
        raise NetboxError(f"GET {path}: more than {MAX_PAGES} pages; giving up")

    def create(self, path: str, items: Sequence[dict[str, Any]], deadline: Deadline) -> list[Any]:
        return self._bulk("POST", path, items, deadline)

    def update(self, path: str, items: Sequence[dict[str, Any]], deadline: Deadline) -> list[Any]:
        return self._bulk("PATCH", path, items, deadline)

    def delete(self, path: str, items: Sequence[dict[str, Any]], deadline: Deadline) -> None:
        self._bulk("DELETE", path, items, deadline)

    def _bulk(
        self, method: str, path: str, items: Sequence[dict[str, Any]], deadline: Deadline
    ) -> list[Any]:
        results: list[Any] = []
        for chunk in chunks(items):
            deadline.check()
            read = self.timeout + WRITE_SECONDS_PER_OBJECT * len(chunk)
            answer = self.call(method, path, deadline, body=chunk, read_timeout=read)
            results.extend(answer or ())
        return results


_NOT_JSON = object()


def chunks(items: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Slices of at most MAX_CHUNK objects whose JSON stays under MAX_BODY bytes."""
    chunk: list[dict[str, Any]] = []
    size = 2
    for item in items:
        item_size = len(json.dumps(item)) + 1
        if chunk and (len(chunk) >= MAX_CHUNK or size + item_size > MAX_BODY):
            yield chunk
            chunk, size = [], 2
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


def _detail(data: Any) -> str:
    """NetBox's own words: its detail, and for bulk requests the first object's errors."""
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return f"{data['detail']} {json.dumps(errors[0])[:400]}"
        return str(data["detail"])
    return json.dumps(data)[:500]


def _reason(e: Exception) -> str:
    """The innermost cause, without urllib3's object reprs ("Connection refused")."""
    inner = e.args[0] if e.args and isinstance(e.args[0], Exception) else e
    text = str(getattr(inner, "reason", None) or inner)
    for marker in ("): ", ">: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    text = text.strip("'\" ")
    if text.startswith("(") and text.endswith(")"):  # not the ")" of "... (_ssl.c:1006)"
        text = text[1:-1].strip("'\" ")
    return text[:200]


class _Session(requests.Session):
    """A session whose requests always have a timeout, also those pynetbox sends."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = kwargs.get("timeout") or self.default_timeout
        return super().request(method, url, *args, **kwargs)


def display_url(url: str) -> str:
    """`url` without user and password, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=host).geturl()


def _credentials(url: str) -> tuple[str, ...]:
    parts = urlsplit(url)
    return tuple(s for s in (parts.password, parts.username) if s and len(s) > 3)


def _authorization(token: str) -> str:
    """v2 tokens (`nbt_<key>.<secret>`) are Bearer tokens; v1 tokens use the `Token` scheme."""
    if token.startswith("nbt_") and "." in token:
        return f"Bearer {token}"
    return f"Token {token}"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")
