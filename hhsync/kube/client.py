"""The only module importing `kubernetes`: an isolated client per fabric, discovery, paged lists.

No global configuration is touched (`persist_config=False`, our own `Configuration`), every request
has a timeout bounded by the run deadline, retries are explicit and short, and a kind whose CRD is
not served is reported as absent by discovery, never listed as empty.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from hhsync import logs
from hhsync.deadline import Deadline
from hhsync.errors import HhsyncError, SourceError
from hhsync.kube.kinds import GROUPS, KINDS, Kind
from hhsync.kube.source import Absent, Obj

PAGE_SIZE = 500
MAX_PAGES = 1000  # 500,000 objects of one kind: far beyond any fabric, still a bound
MAX_RESTARTS = 3  # consecutive 410 Expired answers before giving up on a list
CONNECT_TIMEOUT = 5.0


class KubeSource:
    """A fabric's Kubernetes API, from its kubeconfig and optional context."""

    def __init__(
        self, kubeconfig: Path, context: str | None, namespace: str, timeout: float = 30.0
    ) -> None:
        self.namespace = namespace
        self.timeout = timeout
        user = _user(kubeconfig, context)
        cfg = client.Configuration()
        logs.register(_credentials(cfg, user))  # before an error could quote them
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig),
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as e:
            where = f"context {context!r} of " if context else ""
            raise SourceError(
                logs.redact(f"cannot use {where}kubeconfig {kubeconfig}: {e}")
            ) from None
        if _is_loopback(cfg.host):
            cfg.proxy = None  # the client takes proxies from the environment; never for loopback
        cfg.retries = urllib3.Retry(
            total=2,
            connect=2,
            read=1,
            status=2,
            status_forcelist=(429, 502, 503, 504),
            backoff_factor=0.5,
            raise_on_status=False,
            retry_after_max=10,
        )
        self.location = cfg.host
        self.uses_exec = "exec" in user
        logs.register(_credentials(cfg, user))
        refresh: Any = cfg.refresh_api_key_hook
        if refresh is not None:  # an exec plugin's or auth provider's next token is secret too

            def refreshed(c: client.Configuration) -> None:
                refresh(c)
                logs.register(_credentials(c, {}))

            cfg.refresh_api_key_hook = refreshed  # type: ignore[assignment]
        self.api = client.ApiClient(cfg)
        self.requests = 0

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def served(self, deadline: Deadline) -> dict[str, str]:
        groups = self._call("API discovery", deadline, client.ApisApi(self.api).get_api_versions)
        preferred = {
            g.name: g.preferred_version.group_version
            for g in groups.groups or ()
            if g.name in GROUPS and g.preferred_version
        }
        served: dict[str, str] = {}
        custom = client.CustomObjectsApi(self.api)
        for group, group_version in preferred.items():
            version = group_version.split("/", 1)[1]
            try:
                resources = self._call(
                    f"discovery of {group_version}",
                    deadline,
                    custom.get_api_resources,
                    group,
                    version,
                )
            except Absent:
                continue  # the group went away after /apis answered: its kinds are absent
            plurals = {r.name for r in resources.resources or ()}
            for kind in KINDS:
                if kind.group == group and kind.plural in plurals:
                    served[kind.kind] = group_version
        return served

    def list(self, kind: Kind, api_version: str, deadline: Deadline) -> list[Obj]:
        version = api_version.split("/", 1)[1]
        custom = client.CustomObjectsApi(self.api)
        what = f"listing {kind.plural} in namespace {self.namespace}"
        for _restart in range(MAX_RESTARTS + 1):
            items: list[Obj] = []
            token: str | None = None
            for _page in range(MAX_PAGES):
                deadline.check()
                try:
                    page = self._call(
                        what,
                        deadline,
                        custom.list_namespaced_custom_object,
                        kind.group,
                        version,
                        self.namespace,
                        kind.plural,
                        limit=PAGE_SIZE,
                        _continue=token,
                    )
                except _Expired:
                    break  # the snapshot expired mid-list: start over for a consistent view
                items.extend(_items(page, kind, self.location))
                token = (page.get("metadata") or {}).get("continue") or None
                if token is None:
                    return items
            else:
                raise SourceError(
                    f"{what} at {self.location}: more than {MAX_PAGES} pages; giving up"
                )
        raise SourceError(
            f"{what} at {self.location}: the list expired (HTTP 410) {MAX_RESTARTS + 1} times "
            "in a row; the API server compacts faster than hhsync can page"
        )

    def _call(self, what: str, deadline: Deadline, method: Any, *args: Any, **kwargs: Any) -> Any:
        timeout = (
            deadline.timeout(min(CONNECT_TIMEOUT, self.timeout)),
            deadline.timeout(self.timeout),
        )
        self.requests += 1
        try:
            return method(*args, _request_timeout=timeout, **kwargs)
        except ApiException as e:
            if e.status == 410:
                raise _Expired() from None
            if e.status == 404 and method.__name__.startswith(("list", "get_api_resources")):
                raise Absent(what) from None
            raise SourceError(logs.redact(self._api_error(what, e))) from None
        except urllib3.exceptions.HTTPError as e:
            deadline.check()  # a timeout cut short by the run deadline is the deadline's failure
            raise SourceError(self._transport_error(what, e, timeout[1])) from None
        except (ValueError, TypeError) as e:  # an answer that is not what Kubernetes sends
            raise SourceError(
                logs.redact(f"{what} at {self.location}: unexpected answer: {e}")
            ) from None

    def _api_error(self, what: str, e: ApiException) -> str:
        where = f"{what} at {self.location}"
        status = e.status or 0
        if status == 0:  # TLS and other transport failures when retries are off
            return f"{where}: {e.reason}"
        if status == 401:
            if self.uses_exec:
                return (
                    f"{where}: credentials rejected (HTTP 401); the kubeconfig's exec credential "
                    "plugin gave no usable token: run it by hand to see why"
                )
            return f"{where}: credentials rejected (HTTP 401): renew the kubeconfig's token"
        if status == 403:
            return (
                f"{where}: forbidden (HTTP 403): grant the kubeconfig's user get/list on "
                "Hedgehog resources in that namespace"
            )
        return f"{where}: HTTP {status} {_status_message(e)}".rstrip()

    def _transport_error(self, what: str, e: urllib3.exceptions.HTTPError, read: float) -> str:
        reason = getattr(e, "reason", None) or e
        where = f"{what} at {self.location}"
        if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
            return f"{where}: no answer within {round(read, 2):g}s (read timeout)"
        if isinstance(reason, urllib3.exceptions.SSLError):
            return (
                f"{where}: TLS verification failed ({_short(reason)}); check the kubeconfig's "
                "certificate-authority"
            )
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return f"{where}: cannot connect ({_short(reason)}); is the API server up?"
        if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):  # after its subclass above
            return f"{where}: connection timed out"
        if isinstance(reason, urllib3.exceptions.ResponseError):
            return f"{where}: gave up after retries ({_short(reason)})"
        return f"{where}: {_short(reason)}"


class _Expired(HhsyncError):
    """HTTP 410 on a continue token."""


def _items(page: Any, kind: Kind, location: str) -> list[Obj]:
    items = page.get("items") if isinstance(page, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SourceError(f"listing {kind.plural} at {location}: the answer has no list of items")
    return items


def _status_message(e: ApiException) -> str:
    try:
        body = json.loads(e.body or "")
    except ValueError:
        return str(e.reason or "")
    return str(body.get("message") or e.reason or "") if isinstance(body, dict) else ""


def _short(error: object) -> str:
    text = str(error)
    # urllib3 prefixes messages with object reprs ("HTTPConnection(host=...): Failed to ...").
    for marker in ("): ", ">: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    text = text.strip("'\" ")
    if text.startswith("(") and text.endswith(")"):  # not the ")" of "... (_ssl.c:1006)"
        text = text[1:-1].strip("'\" ")
    return text[:200]


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _user(kubeconfig: Path, context: str | None) -> dict[str, Any]:
    """The kubeconfig's user entry for `context` (empty when it cannot be read)."""
    try:
        doc = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        name = context or doc["current-context"]
        user = next(c["context"]["user"] for c in doc["contexts"] if c["name"] == name)
        found = next(u.get("user") or {} for u in doc["users"] if u["name"] == user)
        return found if isinstance(found, dict) else {}
    except Exception:
        return {}


def _read(path: Any) -> str:
    try:
        return Path(str(path)).read_text(encoding="utf-8") if path else ""
    except (OSError, UnicodeDecodeError):
        return ""


def _decoded(data: Any) -> str:
    try:
        return base64.b64decode(str(data)).decode() if data else ""
    except (ValueError, UnicodeDecodeError):
        return ""


def _credentials(cfg: client.Configuration, user: dict[str, Any]) -> list[str]:
    """Every secret the kubeconfig gave: tokens (also an exec plugin's output, which the client
    keeps as api_key), a basic-auth password, and the client key, as written and as loaded."""
    found: list[Any] = [str(v) for v in (cfg.api_key or {}).values()]
    found += [v.partition(" ")[2] for v in found]  # "Bearer <token>"
    found += [cfg.password, user.get("token"), user.get("password"), user.get("client-key-data")]
    keys = [
        _read(cfg.key_file),
        _read(user.get("client-key")),
        _decoded(user.get("client-key-data")),
    ]
    for key in keys:
        found += [key.strip(), *(line for line in key.splitlines() if len(line) >= 16)]
    return [s for s in found if isinstance(s, str) and s]
