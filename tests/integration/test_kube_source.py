"""The Kubernetes edge: `KubeSource` and `discover` against the fake apiserver (no NetBox)."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from kubernetes import client

from hhsync.deadline import Deadline, unlimited
from hhsync.errors import DeadlineExceeded, SourceError
from hhsync.kube.client import KubeSource
from hhsync.kube.kinds import BY_NAME, KINDS
from hhsync.kube.source import Inventory, discover
from tests.harness.fakekube import HEDGEHOG_KINDS, FakeKube, Request

ROOT = Path(__file__).resolve().parents[2]
WIRING = "wiring.githedgehog.com"
VPC = "vpc.githedgehog.com"
GATEWAY = "gateway.githedgehog.com"
SWITCHES = f"/apis/{WIRING}/v1beta1/namespaces/default/switches"
ALL_SERVED = {k.kind: f"{k.group}/{'v1alpha1' if k.group == GATEWAY else 'v1beta1'}" for k in KINDS}
FORBIDDEN = "forbidden (HTTP 403): grant the kubeconfig's user get/list on Hedgehog resources"


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as k:
        k.install_hedgehog_crds()
        yield k


@contextmanager
def kube_source(
    kube: FakeKube,
    tmp_path: Path,
    *,
    context: str | None = None,
    namespace: str = "default",
    timeout: float = 5.0,
    **kubeconfig: Any,
) -> Iterator[KubeSource]:
    path = kube.write_kubeconfig(tmp_path / "kubeconfig", **kubeconfig)
    source = KubeSource(path, context, namespace, timeout)
    try:
        yield source
    finally:
        source.close()


def run(kube: FakeKube, tmp_path: Path, **options: Any) -> Inventory:
    with kube_source(kube, tmp_path, **options) as source:
        return discover(source, unlimited())


def failure(kube: FakeKube, tmp_path: Path, **options: Any) -> str:
    with pytest.raises(SourceError) as info:
        run(kube, tmp_path, **options)
    return str(info.value)


def obj(
    kind: str, name: str, namespace: str = "default", version: str = "v1beta1"
) -> dict[str, Any]:
    group = BY_NAME[kind].group
    metadata = {"name": name, "namespace": namespace}
    return {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": metadata, "spec": {}}


def add_switches(kube: FakeKube, count: int) -> list[str]:
    created = [f"sw-{i:04d}" for i in range(count)]
    for name in created:
        kube.add(obj("Switch", name))
    return created


def names(objects: Any) -> list[str]:
    return [o["metadata"]["name"] for o in objects]


def requests_to(kube: FakeKube, path: str) -> list[Request]:
    return [r for r in kube.requests if r.path == path]


def token(encoded: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.urlsafe_b64decode(encoded))
    return doc


def compact_before_continues(
    kube: FakeKube, monkeypatch: pytest.MonkeyPatch, times: int | None
) -> None:
    """A hook: compact the store when a continued list arrives, so its token gets a real 410."""
    record = kube._record
    done = 0

    def hook(request: Request) -> None:
        nonlocal done
        record(request)
        if "continue" in request.query and (times is None or done < times):
            done += 1
            kube.compact()

    monkeypatch.setattr(kube, "_record", hook)


# -- discovery -------------------------------------------------------------------------------


def test_versions_come_from_discovery(tmp_path: Path) -> None:
    with FakeKube() as kube:
        for (group, kind), plural in HEDGEHOG_KINDS.items():
            if group in (WIRING, VPC):
                kube.install_crd(group, "v1beta2" if group == WIRING else "v1beta1", plural, kind)
        kube.add(obj("Switch", "leaf-01", version="v1beta2"))
        inventory = run(kube, tmp_path)
    expected = {k: v for k, v in ALL_SERVED.items() if k not in ("Agent", "Gateway")}
    expected.update({k.kind: f"{WIRING}/v1beta2" for k in KINDS if k.group == WIRING})
    assert inventory.served == expected
    assert inventory.items("Switch")[0]["apiVersion"] == f"{WIRING}/v1beta2"
    assert names(inventory.items("Switch")) == ["leaf-01"]
    assert [r.path for r in kube.requests] == [
        "/apis/",
        f"/apis/{VPC}/v1beta1",
        f"/apis/{WIRING}/v1beta2",
        *(f"/apis/{v}/namespaces/default/{BY_NAME[k].plural}" for k, v in expected.items()),
    ]
    assert inventory.absent == ["Agent", "Gateway"]
    assert inventory.missing == []


def test_absent_kind_is_not_empty_and_empty_kind_is_complete(
    kube: FakeKube, tmp_path: Path
) -> None:
    kube.remove_crd(WIRING, "switches")
    kube.remove_crd(GATEWAY, "gateways")  # the last kind of its group: the group goes too
    kube.add(obj("Server", "server-01"))
    inventory = run(kube, tmp_path)
    assert inventory.served == {
        k: v for k, v in ALL_SERVED.items() if k not in ("Switch", "Gateway")
    }
    assert inventory.absent == ["Switch", "Gateway"]
    assert inventory.missing == ["Switch"]
    assert (inventory.complete("Switch"), inventory.items("Switch")) == (False, ())
    assert (inventory.complete("VPC"), inventory.items("VPC")) == (True, ())
    assert names(inventory.items("Server")) == ["server-01"]
    assert not [r for r in kube.requests if r.path.endswith(("/switches", "/gateways"))]
    assert f"/apis/{GATEWAY}/v1alpha1" not in [r.path for r in kube.requests]


def test_crd_removed_between_discovery_and_list_is_absent(
    kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.add(obj("Switch", "leaf-01"))
    record = kube._record

    def remove_on_first_list(request: Request) -> None:
        record(request)
        if request.path.endswith("/switchprofiles"):  # the first list, after discovery
            kube.remove_crd(WIRING, "switches")

    monkeypatch.setattr(kube, "_record", remove_on_first_list)
    inventory = run(kube, tmp_path)
    assert "Switch" not in inventory.served
    assert inventory.absent == ["Switch"]
    assert inventory.missing == ["Switch"]
    assert inventory.complete("Switch") is False
    assert inventory.complete("Connection") is True
    assert [r.query for r in requests_to(kube, SWITCHES)] == [{"limit": "500"}]  # got 404


def test_only_the_chosen_namespace_is_listed(kube: FakeKube, tmp_path: Path) -> None:
    kube.add(obj("Switch", "leaf-01"))
    kube.add(obj("Switch", "leaf-02", namespace="fab"))
    kube.add(obj("Switch", "leaf-03", namespace="other"))
    assert names(run(kube, tmp_path).items("Switch")) == ["leaf-01"]
    assert names(run(kube, tmp_path, namespace="other").items("Switch")) == ["leaf-03"]
    assert [r.path for r in kube.requests if r.path.endswith("/switches")] == [
        SWITCHES,
        f"/apis/{WIRING}/v1beta1/namespaces/other/switches",
    ]


# -- paging and 410 --------------------------------------------------------------------------


def test_paging_1201_switches_in_three_pages(kube: FakeKube, tmp_path: Path) -> None:
    expected = add_switches(kube, 1201)
    snapshot = int(kube.objects("Switch")[-1]["metadata"]["resourceVersion"])
    with kube_source(kube, tmp_path) as source:
        items = source.list(BY_NAME["Switch"], f"{WIRING}/v1beta1", unlimited())
        assert source.requests == 3
    assert names(items) == expected
    pages = requests_to(kube, SWITCHES)
    assert [r.query["limit"] for r in pages] == ["500", "500", "500"]
    assert "continue" not in pages[0].query
    assert [token(r.query["continue"]) for r in pages[1:]] == [
        {"v": "meta.k8s.io/v1", "rv": snapshot, "start": "default/sw-0499"},
        {"v": "meta.k8s.io/v1", "rv": snapshot, "start": "default/sw-0999"},
    ]
    assert len(kube.requests) == 3


def test_410_on_the_second_page_restarts_the_list(kube: FakeKube, tmp_path: Path) -> None:
    expected = add_switches(kube, 1201)
    kube.fault("/switches$", status=410, reason="Expired", after=1, times=1)
    with kube_source(kube, tmp_path) as source:
        items = source.list(BY_NAME["Switch"], f"{WIRING}/v1beta1", unlimited())
    assert names(items) == expected
    starts = [
        token(r.query["continue"])["start"] if "continue" in r.query else None
        for r in kube.requests
    ]
    assert starts == [None, "default/sw-0499", None, "default/sw-0499", "default/sw-0999"]


def test_compaction_between_pages_restarts_the_list(
    kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = add_switches(kube, 1201)
    compact_before_continues(kube, monkeypatch, times=1)
    with kube_source(kube, tmp_path) as source:
        items = source.list(BY_NAME["Switch"], f"{WIRING}/v1beta1", unlimited())
    assert names(items) == expected
    pages = [r.query for r in kube.requests]
    assert ["continue" in q for q in pages] == [False, True, False, True, True]
    old, fresh = token(pages[1]["continue"])["rv"], token(pages[3]["continue"])["rv"]
    assert fresh > old  # the restart read a new snapshot


def test_a_list_that_keeps_expiring_gives_up_after_4_tries(
    kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_switches(kube, 501)
    compact_before_continues(kube, monkeypatch, times=None)
    with kube_source(kube, tmp_path) as source, pytest.raises(SourceError) as info:
        source.list(BY_NAME["Switch"], f"{WIRING}/v1beta1", unlimited())
    assert str(info.value) == (
        f"listing switches in namespace default at {kube.url}: the list expired (HTTP 410) "
        "4 times in a row; the API server compacts faster than hhsync can page"
    )
    assert ["continue" in r.query for r in kube.requests] == [False, True] * 4


# -- errors ----------------------------------------------------------------------------------


def test_401_with_a_token_user(kube: FakeKube, tmp_path: Path) -> None:
    assert failure(kube, tmp_path, token="expired-token") == (
        f"API discovery at {kube.url}: credentials rejected (HTTP 401): "
        "renew the kubeconfig's token"
    )
    assert [(r.path, r.headers["authorization"]) for r in kube.requests] == [
        ("/apis/", "Bearer expired-token")
    ]


@pytest.mark.parametrize(
    "plugin",
    ["", "import sys\nprint('no credentials', file=sys.stderr)\nsys.exit(3)\n"],
    ids=["prints-nothing", "fails"],
)
def test_401_with_an_exec_plugin_user(kube: FakeKube, tmp_path: Path, plugin: str) -> None:
    script = tmp_path / "plugin.py"
    script.write_text(plugin)
    message = failure(kube, tmp_path, exec_command=[sys.executable, str(script)])
    assert message == (
        f"API discovery at {kube.url}: credentials rejected (HTTP 401); the kubeconfig's exec "
        "credential plugin gave no usable token: run it by hand to see why"
    )
    assert [r.headers.get("authorization") for r in kube.requests] == [None]


def test_a_working_exec_plugin_authenticates(kube: FakeKube, tmp_path: Path) -> None:
    script = tmp_path / "plugin.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": kube.token},
    }
    script.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    inventory = run(kube, tmp_path, exec_command=[sys.executable, str(script)])
    assert inventory.served == ALL_SERVED
    assert {r.headers["authorization"] for r in kube.requests} == {"Bearer fake-token"}


@pytest.mark.parametrize(
    ("path", "what"),
    [("^/apis$", "API discovery"), ("/vpcs$", "listing vpcs in namespace default")],
)
def test_403(kube: FakeKube, tmp_path: Path, path: str, what: str) -> None:
    kube.fault(path, status=403, message='vpcs.vpc.githedgehog.com is forbidden: User "x"')
    assert failure(kube, tmp_path) == f"{what} at {kube.url}: {FORBIDDEN} in that namespace"


def test_500_on_the_third_page(kube: FakeKube, tmp_path: Path) -> None:
    add_switches(kube, 1201)
    kube.fault("/switches$", status=500, message="etcdserver: request timed out", after=2, times=1)
    assert failure(kube, tmp_path) == (
        f"listing switches in namespace default at {kube.url}: "
        "HTTP 500 etcdserver: request timed out"
    )
    assert len(requests_to(kube, SWITCHES)) == 3  # 500 is not retried


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_once_then_success(
    kube: FakeKube, tmp_path: Path, status: int
) -> None:
    kube.add(obj("Switch", "leaf-01"))
    kube.fault("/switches$", status=status, headers={"Retry-After": "1"}, times=1)
    started = time.monotonic()
    inventory = run(kube, tmp_path)
    elapsed = time.monotonic() - started
    assert names(inventory.items("Switch")) == ["leaf-01"]
    assert len(requests_to(kube, SWITCHES)) == 2
    assert len(kube.requests) == 5 + 15 + 1  # discovery, one list per kind, one retry
    assert 0.9 <= elapsed < 3


def test_503_that_persists_fails_after_two_retries(kube: FakeKube, tmp_path: Path) -> None:
    kube.fault("/switches$", status=503)
    assert failure(kube, tmp_path) == (
        f"listing switches in namespace default at {kube.url}: HTTP 503 Service Unavailable"
    )
    assert len(requests_to(kube, SWITCHES)) == 3


def test_api_down(tmp_path: Path) -> None:
    with FakeKube() as kube:
        path = kube.write_kubeconfig(tmp_path / "kubeconfig")
    source = KubeSource(path, None, "default", 5.0)  # the port is closed now
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        discover(source, unlimited())
    source.close()
    assert str(info.value) == (
        f"API discovery at {kube.url}: cannot connect (Failed to establish a new connection: "
        "[Errno 111] Connection refused); is the API server up?"
    )
    assert time.monotonic() - started < 3


def test_slow_answer_beyond_the_timeout(kube: FakeKube, tmp_path: Path) -> None:
    kube.fault("/switches$", delay=10)
    started = time.monotonic()
    message = failure(kube, tmp_path, timeout=0.5)
    elapsed = time.monotonic() - started
    assert message == (
        f"listing switches in namespace default at {kube.url}: no answer within 0.5s (read timeout)"
    )
    assert len(requests_to(kube, SWITCHES)) == 2  # one read retry
    assert 0.9 <= elapsed < 3


def test_tls_with_the_right_ca(tmp_path: Path) -> None:
    with FakeKube(tls=True) as kube:
        kube.install_hedgehog_crds()
        kube.add(obj("Switch", "leaf-01"))
        inventory = run(kube, tmp_path)
    assert kube.url.startswith("https://127.0.0.1:")
    assert names(inventory.items("Switch")) == ["leaf-01"]
    assert len(kube.requests) == 20


@pytest.mark.parametrize("ca", ["wrong", "none"])
def test_tls_with_a_wrong_ca_fails(tmp_path: Path, ca: str) -> None:
    with FakeKube(tls=True) as kube:
        kube.install_hedgehog_crds()
        path = kube.write_kubeconfig(tmp_path / "kubeconfig", ca=ca != "none")
        if ca == "wrong":
            doc = yaml.safe_load(path.read_text())
            other = base64.b64encode(trustme.CA().cert_pem.bytes()).decode()
            doc["clusters"][0]["cluster"]["certificate-authority-data"] = other
            path.write_text(yaml.safe_dump(doc))
        source = KubeSource(path, None, "default", 5.0)
        with pytest.raises(SourceError) as info:
            discover(source, unlimited())
        source.close()
    expected = (
        f"API discovery at {kube.url}: TLS verification failed ([SSL: CERTIFICATE_VERIFY_FAILED] "
        "certificate verify failed: unable to get local issuer certificate (_ssl.c:NNN)); "
        "check the kubeconfig's certificate-authority"
    )
    assert re.sub(r"_ssl\.c:\d+", "_ssl.c:NNN", str(info.value)) == expected
    assert kube.requests == []


def test_hanging_exec_plugin_blocks_kubesource_construction(kube: FakeKube, tmp_path: Path) -> None:
    """Documents a limit, not a wish: the client runs exec plugins with no timeout while the
    kubeconfig loads, before hhsync has a deadline to apply. Only the unit's TimeoutStartSec
    bounds a hanging plugin. Runs in a child process so that it cannot hang the suite."""
    started = tmp_path / "plugin-started"
    plugin = tmp_path / "hang.py"
    plugin.write_text(
        f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(60)\n"
    )
    path = kube.write_kubeconfig(
        tmp_path / "kubeconfig", exec_command=[sys.executable, str(plugin)]
    )
    code = (
        "import sys; from pathlib import Path; from hhsync.kube.client import KubeSource; "
        "KubeSource(Path(sys.argv[1]), None, 'default', 0.5); print('built')"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        start_new_session=True,  # its own process group: the plugin dies with it
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(300):
            if started.exists() or child.poll() is not None:
                break
            time.sleep(0.05)
        assert started.exists(), child.communicate(timeout=5)
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        out, _err = child.communicate(timeout=10)
    assert out == b""
    assert kube.requests == []


# -- deadline --------------------------------------------------------------------------------


def test_deadline_stops_discovery_and_names_the_phase(kube: FakeKube, tmp_path: Path) -> None:
    kube.fault(".", delay=0.4)  # every request: discovery alone needs 5 x 0.4 s
    started = time.monotonic()
    with kube_source(kube, tmp_path, timeout=30) as source, pytest.raises(DeadlineExceeded) as info:
        discover(source, Deadline(1.0))
    assert str(info.value) == "deadline exceeded after 1s, during discovery (API discovery)"
    assert time.monotonic() - started < 2.5


def test_deadline_cuts_a_hanging_list_short(kube: FakeKube, tmp_path: Path) -> None:
    kube.fault("/switches$", delay=10)
    started = time.monotonic()
    with kube_source(kube, tmp_path, timeout=30) as source, pytest.raises(DeadlineExceeded) as info:
        discover(source, Deadline(1.0))
    assert str(info.value) == "deadline exceeded after 1s, during discovery (listing switches)"
    assert time.monotonic() - started < 3  # a read retry may wait once more


# -- isolation -------------------------------------------------------------------------------


def test_chosen_context_and_no_global_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client.Configuration, "_default", None)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with FakeKube() as chosen, FakeKube() as current:
        for k in (chosen, current):
            k.install_hedgehog_crds()
        chosen.add(obj("Switch", "chosen-leaf"))
        current.add(obj("Switch", "current-leaf"))
        path = current.write_kubeconfig(
            tmp_path / "kubeconfig", context="current", extra_contexts={"chosen": chosen.url}
        )
        source = KubeSource(path, "chosen", "default", 5.0)
        assert source.location == chosen.url
        inventory = discover(source, unlimited())
        source.close()
    assert names(inventory.items("Switch")) == ["chosen-leaf"]
    assert len(chosen.requests) == 20
    assert current.requests == []
    assert client.Configuration._default is None
