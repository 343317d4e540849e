"""A fake kube-apiserver for tests: discovery, custom-resource lists with paging, faults, TLS.

It speaks the real wire protocol over HTTP(S) on 127.0.0.1, so the official `kubernetes`
client talks to it unchanged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import enum
import http
import json
import re
import socket
import socketserver
import ssl
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import yaml

# (group, kind) -> plural of the Hedgehog kinds that `install_hedgehog_crds` installs.
HEDGEHOG_KINDS: dict[tuple[str, str], str] = {
    ("wiring.githedgehog.com", "Switch"): "switches",
    ("wiring.githedgehog.com", "Server"): "servers",
    ("wiring.githedgehog.com", "Connection"): "connections",
    ("wiring.githedgehog.com", "SwitchGroup"): "switchgroups",
    ("wiring.githedgehog.com", "SwitchProfile"): "switchprofiles",
    ("wiring.githedgehog.com", "ServerProfile"): "serverprofiles",
    ("wiring.githedgehog.com", "VLANNamespace"): "vlannamespaces",
    ("vpc.githedgehog.com", "IPv4Namespace"): "ipv4namespaces",
    ("vpc.githedgehog.com", "VPC"): "vpcs",
    ("vpc.githedgehog.com", "VPCAttachment"): "vpcattachments",
    ("vpc.githedgehog.com", "VPCPeering"): "vpcpeerings",
    ("vpc.githedgehog.com", "External"): "externals",
    ("vpc.githedgehog.com", "ExternalAttachment"): "externalattachments",
    ("vpc.githedgehog.com", "ExternalPeering"): "externalpeerings",
    ("agent.githedgehog.com", "Agent"): "agents",
    ("agent.githedgehog.com", "Catalog"): "catalogs",
    ("gateway.githedgehog.com", "Gateway"): "gateways",
}
# Groups that exist at one version only, whatever version the other groups are installed at.
HEDGEHOG_FIXED_VERSIONS: dict[str, str] = {"gateway.githedgehog.com": "v1alpha1"}

DEFAULT_TOKEN = "fake-token"
NOT_FOUND = "the server could not find the requested resource"
EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the provided "
    "token results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_CRD_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
_SELECTOR_TERM = re.compile(r"^(!?)([A-Za-z0-9./_-]+)(?:(==|=|!=)([A-Za-z0-9._-]*))?$")


class _Default(enum.Enum):
    TOKEN = "the server token"


@dataclass(frozen=True)
class Request:
    """One request as received (raw path, last query value wins, lower-case header names)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(eq=False)
class Fault:
    """An injected answer; `seen` counts matching requests, `hits` the ones it answered."""

    path_regex: str
    method: str | None
    status: int | None
    reason: str
    message: str
    delay: float
    times: int | None
    after: int
    headers: dict[str, str]
    body: bytes | None
    hits: int = 0
    seen: int = 0
    _remove: Callable[[Fault], None] = field(default=lambda _f: None, repr=False, compare=False)

    def remove(self) -> None:
        self._remove(self)


@dataclass(frozen=True)
class _Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str
    status: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


class ApiError(Exception):
    """A Kubernetes `Status` failure to send back."""

    def __init__(self, code: int, message: str, reason: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.body = status_body(code, reason, message, **extra)


def status_body(code: int, reason: str = "", message: str = "", **extra: Any) -> dict[str, Any]:
    """The `Status` document the apiserver sends with an error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message or http.HTTPStatus(code).phrase,
        "reason": reason or _REASONS.get(code, ""),
        "code": code,
    }
    body.update(extra)
    return body


def _version_key(version: str) -> tuple[int, int, int, str]:
    # Kubernetes' version priority: GA > beta > alpha, higher numbers first, others by name.
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (level, -int(m.group(1)), -int(m.group(3) or 0), version)


def _read_yaml(path_or_text: str | Path) -> list[Any]:
    """All documents of YAML text (a str with a newline) or of a file (a Path or a one-line str)."""
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        return list(yaml.safe_load_all(path_or_text))
    return list(yaml.safe_load_all(Path(path_or_text).read_text()))


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP(S) server on 127.0.0.1; `stop()` also ends open keep-alive connections."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        if ssl_context is not None:
            # The handshake runs in the connection's thread, so a stuck client can't block accept().
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.stopping = threading.Event()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        self._serve_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a DNS lookup that can be slow in containers.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.port

    def start(self, name: str) -> None:
        self._serve_thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )
        self._serve_thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self.stopping.set()
        if self._serve_thread is not None:
            self.shutdown()
            self._serve_thread.join()
            self._serve_thread = None
        self.server_close()
        with self._conns_lock:
            conns = list(self._conns.items())
        for sock, _thread in conns:
            # The plain-socket shutdown also wakes a thread blocked inside an SSL read.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for _sock, thread in conns:
            thread.join(timeout)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Headers and body go out in separate writes; Nagle + delayed ACK would add 40 ms each.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            request.do_handshake()
        super().finish_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns[request] = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conns_lock:
                self._conns.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Disconnects and failed TLS handshakes are normal in fault tests; real bugs still print.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection ends after this

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        server = cast(_Server, self.server)
        fake = server.fake
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake._record(Request(self.command, parts.path, query, headers))
        fault = fake._take_fault(self.command, path)
        if fault is not None:
            if fault.delay and server.stopping.wait(fault.delay):
                self.close_connection = True
                return
            if fault.status is not None or fault.body is not None:
                code = fault.status or 200
                body = fault.body
                if body is None:
                    doc = status_body(code, fault.reason, fault.message)
                    body = json.dumps(doc).encode()
                self._send(code, body, fault.headers)
                return
        try:
            doc = fake._answer(self.command, path, query, self.headers.get("Authorization"))
            code = 200
        except ApiError as e:
            code, doc = e.code, e.body
        self._send(code, json.dumps(doc).encode(), {})

    def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(code)
        merged = {"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        merged.update(headers)
        merged["Content-Length"] = str(len(body))
        for name, value in merged.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(LoopbackServer):
    def __init__(self, fake: FakeKube, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__(_Handler, ssl_context)
        self.fake = fake


class FakeKube:
    """A fake kube-apiserver serving installed CRDs and their objects; use as a context manager."""

    def __init__(self, *, token: str | None = DEFAULT_TOKEN, tls: bool = False) -> None:
        self.token = token
        self.ca_pem: bytes | None = None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str, str], _Resource] = {}  # (group, version, plural)
        # (group, plural) -> {(namespace, name): object}; shared by all versions, like etcd.
        self._store: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._faults: list[Fault] = []
        self._rv = 1000
        self._compacted_rv = 0
        ssl_context = None
        if tls:
            import trustme

            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert.configure_cert(ssl_context)
            self.ca_pem = ca.cert_pem.bytes()
        self._server = _Server(self, ssl_context)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeKube:
        self._server.start(f"fakekube:{self._server.port}")
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- CRDs --------------------------------------------------------------------------------

    def install_crd(
        self, group: str, version: str, plural: str, kind: str, namespaced: bool = True
    ) -> None:
        self._install(_Resource(group, version, plural, kind, namespaced, kind.lower()))

    def install_crd_manifest(self, path_or_dict: str | Path | dict[str, Any]) -> None:
        """Install every served version of an apiextensions.k8s.io/v1 CustomResourceDefinition."""
        crd = path_or_dict if isinstance(path_or_dict, dict) else _read_yaml(path_or_dict)[0]
        if (crd.get("apiVersion"), crd.get("kind")) != (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
        ):
            raise ValueError("not an apiextensions.k8s.io/v1 CustomResourceDefinition")
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            resource = _Resource(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                status="status" in (version.get("subresources") or {}),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
            )
            self._install(resource)

    def install_hedgehog_crds(self, version: str = "v1beta1") -> None:
        for (group, kind), plural in HEDGEHOG_KINDS.items():
            self.install_crd(group, HEDGEHOG_FIXED_VERSIONS.get(group, version), plural, kind)

    def remove_crd(self, group: str, plural: str) -> None:
        """Uninstall every version of a CRD and delete its objects, like `kubectl delete crd`."""
        with self._lock:
            keys = [k for k in self._resources if (k[0], k[2]) == (group, plural)]
            if not keys:
                raise KeyError(f"no CRD {plural}.{group}")
            for key in keys:
                del self._resources[key]
            self._store.pop((group, plural), None)

    def _install(self, resource: _Resource) -> None:
        with self._lock:
            self._resources[(resource.group, resource.version, resource.plural)] = resource
            self._store.setdefault((resource.group, resource.plural), {})

    # -- objects -----------------------------------------------------------------------------

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object, stamping namespace, resourceVersion, uid, generation, creation time."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError("metadata.name is required")
        with self._lock:
            resource = self._resource_for(obj)
            key = self._key(resource, meta)
            objects = self._store[(resource.group, resource.plural)]
            if key in objects:
                raise ValueError(f"{resource.plural}.{resource.group} {key} already exists")
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            meta["uid"] = str(uuid.UUID(int=self._rv))
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            objects[key] = obj
            return copy.deepcopy(obj)

    def replace(self, obj: dict[str, Any]) -> None:
        """Update an object: new resourceVersion; generation + 1 when `spec` changed."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        with self._lock:
            resource = self._resource_for(obj)
            key = self._key(resource, meta)
            objects = self._store[(resource.group, resource.plural)]
            old = objects[key]
            old_meta = old["metadata"]
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            meta["uid"] = old_meta["uid"]
            meta["creationTimestamp"] = old_meta["creationTimestamp"]
            bump = obj.get("spec") != old.get("spec")
            meta["generation"] = old_meta["generation"] + (1 if bump else 0)
            objects[key] = obj

    def remove(self, kind: str, name: str, namespace: str = "default") -> None:
        with self._lock:
            store_key, resource = self._kind(kind)
            key = (namespace if resource.namespaced else "", name)
            del self._store[store_key][key]
            self._rv += 1

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """Copies of the stored objects of `kind`, sorted by namespace and name."""
        with self._lock:
            store_key, _resource = self._kind(kind)
            items = sorted(self._store[store_key].items())
            return [copy.deepcopy(obj) for _key, obj in items]

    def load_yaml(self, path_or_text: str | Path, *, install: bool = False) -> list[dict[str, Any]]:
        """Add every object of a multi-document YAML (a `kind: List` adds its items).

        With `install=True`, a Hedgehog kind without an installed CRD gets one from
        `HEDGEHOG_KINDS` at the object's apiVersion; otherwise such an object raises ValueError.
        """
        objs: list[dict[str, Any]] = []
        for doc in _read_yaml(path_or_text):
            if doc is None:
                continue
            objs.extend((doc.get("items") or []) if doc.get("kind") == "List" else [doc])
        added = []
        for obj in objs:
            group, version = _split_api_version(obj.get("apiVersion", ""))
            plural = HEDGEHOG_KINDS.get((group, obj.get("kind", "")))
            if install and plural is not None and not self._has_crd(group, version, obj["kind"]):
                self.install_crd(group, version, plural, obj["kind"])
            added.append(self.add(obj))
        return added

    def _has_crd(self, group: str, version: str, kind: str) -> bool:
        with self._lock:
            return any(
                (r.group, r.version, r.kind) == (group, version, kind)
                for r in self._resources.values()
            )

    def _resource_for(self, obj: dict[str, Any]) -> _Resource:
        group, version = _split_api_version(obj.get("apiVersion", ""))
        for r in self._resources.values():
            if (r.group, r.version, r.kind) == (group, version, obj.get("kind")):
                return r
        raise ValueError(f"no CRD installed for {obj.get('apiVersion')} {obj.get('kind')}")

    @staticmethod
    def _key(resource: _Resource, meta: dict[str, Any]) -> tuple[str, str]:
        """The store key; defaults (or, for cluster-scoped kinds, drops) metadata.namespace."""
        if resource.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        return (meta.get("namespace", ""), meta.get("name", ""))

    def _kind(self, kind: str) -> tuple[tuple[str, str], _Resource]:
        found = {(r.group, r.plural): r for r in self._resources.values() if r.kind == kind}
        if len(found) != 1:
            raise KeyError(f"{len(found)} installed CRDs have kind {kind!r}")
        return next(iter(found.items()))

    # -- faults ------------------------------------------------------------------------------

    def fault(
        self,
        path_regex: str,
        *,
        status: int | None = None,
        reason: str = "",
        message: str = "",
        delay: float = 0.0,
        times: int | None = None,
        after: int = 0,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        method: str | None = "GET",
    ) -> Fault:
        """Answer requests whose path matches `path_regex` (re.search, no query) with a fault.

        The first `after` matches pass; the next `times` (None: all) are answered: after `delay`
        seconds, with a `Status` (or `body`) when `status` or `body` is set, else normally.
        `method=None` matches every method.
        """
        method = method.upper() if method else None
        fault = Fault(
            path_regex, method, status, reason, message, delay, times, after, headers or {}, body
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
                return fault
        return None

    # -- paging ------------------------------------------------------------------------------

    def compact(self) -> None:
        """Expire every continue token issued so far (the next use gets 410 Expired)."""
        with self._lock:
            self._compacted_rv = self._rv
            self._rv += 1  # tokens issued from now on carry a newer resourceVersion

    @staticmethod
    def _token(rv: int, start: str) -> str:
        doc = {"v": "meta.k8s.io/v1", "rv": rv, "start": start}
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()

    @staticmethod
    def _parse_token(token: str) -> tuple[int, str]:
        try:
            doc = json.loads(base64.urlsafe_b64decode(token.encode()))
            if doc["v"] != "meta.k8s.io/v1" or not isinstance(doc["rv"], int):
                raise ValueError("wrong version")
            return doc["rv"], str(doc["start"])
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise ApiError(400, f"continue key is not valid: {e}") from None

    # -- serving -----------------------------------------------------------------------------

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _answer(
        self, method: str, path: str, query: dict[str, str], authorization: str | None
    ) -> dict[str, Any]:
        if self.token is not None and authorization != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized")
        if method != "GET":
            raise ApiError(405, f"the fake apiserver serves GET only, not {method}")
        parts = path.strip("/").split("/")
        with self._lock:
            match parts:
                case ["version"]:
                    return {
                        "major": "1",
                        "minor": "33",
                        "gitVersion": "v1.33.0-fake",
                        "gitCommit": "0" * 40,
                        "gitTreeState": "clean",
                        "buildDate": "2026-01-01T00:00:00Z",
                        "goVersion": "go1.24.0",
                        "compiler": "gc",
                        "platform": "linux/amd64",
                    }
                case ["api"]:
                    address = {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("/")[-1]}
                    return {
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [address],
                    }
                case ["api", "v1"]:
                    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": []}
                case ["apis"]:
                    groups = [self._group_doc(g) for g in sorted(self._groups())]
                    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
                case ["apis", group] if group in self._groups():
                    return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group)}
                case ["apis", group, version] if version in self._groups().get(group, []):
                    return self._resource_list(group, version)
                case ["apis", group, version, "namespaces", ns, plural, *rest]:
                    return self._read(group, version, plural, ns, rest, query)
                case ["apis", group, version, plural, *rest]:
                    return self._read(group, version, plural, None, rest, query)
        raise ApiError(404, NOT_FOUND)

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, set[str]] = {}
        for r in self._resources.values():
            groups.setdefault(r.group, set()).add(r.version)
        return {g: sorted(vs, key=_version_key) for g, vs in groups.items()}

    def _group_doc(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self._groups()[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for r in sorted(self._resources.values(), key=lambda r: r.plural):
            if (r.group, r.version) != (group, version):
                continue
            doc: dict[str, Any] = {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": _CRD_VERBS,
            }
            if r.short_names:
                doc["shortNames"] = list(r.short_names)
            if r.categories:
                doc["categories"] = list(r.categories)
            resources.append(doc)
            if r.status:
                resources.append(
                    {
                        "name": f"{r.plural}/status",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}",
            "resources": resources,
        }

    def _read(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        rest: list[str],
        query: dict[str, str],
    ) -> dict[str, Any]:
        resource = self._resources.get((group, version, plural))
        if resource is None or (namespace is not None and not resource.namespaced):
            raise ApiError(404, NOT_FOUND)
        if not rest:
            return self._list(resource, namespace, query)
        if len(rest) > 2 or (len(rest) == 2 and not (rest[1] == "status" and resource.status)):
            raise ApiError(404, NOT_FOUND)
        if resource.namespaced and namespace is None:
            raise ApiError(404, NOT_FOUND)
        obj = self._store[(group, plural)].get((namespace or "", rest[0]))
        if obj is None:
            details = {"name": rest[0], "group": group, "kind": plural}
            message = f'{plural}.{group} "{rest[0]}" not found'
            raise ApiError(404, message, details=details)
        return self._as_version(obj, resource)

    def _list(
        self, resource: _Resource, namespace: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        rv, start = self._rv, None
        if query.get("continue"):
            rv, start = self._parse_token(query["continue"])
            if rv <= self._compacted_rv:
                fresh = self._token(self._rv, start)
                raise ApiError(410, EXPIRED, "Expired", metadata={"continue": fresh})
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise ApiError(400, f"invalid limit {query['limit']!r}") from None
        selector = self._selector(query.get("labelSelector", ""))
        items = [
            (f"{ns}/{name}" if ns else name, obj)
            for (ns, name), obj in sorted(self._store[(resource.group, resource.plural)].items())
            if namespace in (None, ns) and selector(obj.get("metadata", {}).get("labels") or {})
        ]
        if start is not None:
            start_key = tuple(start.rpartition("/")[::2])
            items = [(k, o) for k, o in items if tuple(k.rpartition("/")[::2]) > start_key]
        page, remaining = (items[:limit], items[limit:]) if limit > 0 else (items, [])
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if remaining:
            meta["continue"] = self._token(rv, page[-1][0])
            if not query.get("labelSelector"):  # the real server omits it for filtered lists
                meta["remainingItemCount"] = len(remaining)
        return {
            "apiVersion": f"{resource.group}/{resource.version}",
            "kind": f"{resource.kind}List",
            "metadata": meta,
            "items": [self._as_version(obj, resource) for _key, obj in page],
        }

    @staticmethod
    def _as_version(obj: dict[str, Any], resource: _Resource) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = f"{resource.group}/{resource.version}"
        return out

    @staticmethod
    def _selector(text: str) -> Callable[[dict[str, str]], bool]:
        terms = []
        for term in filter(None, (t.strip() for t in text.split(","))):
            m = _SELECTOR_TERM.match(term)
            if not m or (m.group(1) and m.group(3)):
                raise ApiError(400, f"unable to parse requirement: {term!r}")
            terms.append((m.group(1) == "!", m.group(2), m.group(3), m.group(4)))

        def matches(labels: dict[str, str]) -> bool:
            for negated, key, op, value in terms:
                if op is None and (key in labels) == negated:
                    return False
                if op in ("=", "==") and labels.get(key) != value:
                    return False
                if op == "!=" and labels.get(key) == value:
                    return False
            return True

        return matches

    # -- kubeconfig --------------------------------------------------------------------------

    def write_kubeconfig(
        self,
        path: str | Path,
        *,
        context: str = "fake",
        token: str | _Default | None = _Default.TOKEN,
        exec_command: list[str] | None = None,
        extra_contexts: dict[str, str] | None = None,
        ca: bool = True,
    ) -> Path:
        """Write a kubeconfig whose `context` points here; `extra_contexts` maps names to URLs.

        All contexts share one user: `exec_command` (an ExecCredential plugin) when given,
        else `token` (default: the server's token; None: no credentials).
        """
        user: dict[str, Any] = {}
        if exec_command:
            user["exec"] = {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": exec_command[0],
                "args": exec_command[1:],
                "interactiveMode": "Never",
            }
        else:
            value = self.token if token is _Default.TOKEN else token
            if value is not None:
                user["token"] = value
        clusters, contexts = [], []
        for name, url in {context: self.url, **(extra_contexts or {})}.items():
            cluster: dict[str, Any] = {"server": url}
            if ca and self.ca_pem is not None and url.startswith("https:"):
                cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
            clusters.append({"name": name, "cluster": cluster})
            ctx = {"cluster": name, "user": "fake-user", "namespace": "default"}
            contexts.append({"name": name, "context": ctx})
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": clusters,
            "users": [{"name": "fake-user", "user": user}],
            "contexts": contexts,
            "current-context": context,
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path
