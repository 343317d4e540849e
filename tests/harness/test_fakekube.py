"""The fake apiserver, driven by the official `kubernetes` client."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import (
    ApiException,
    BadRequestException,
    ForbiddenException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
)

from tests.harness.fakekube import DEFAULT_TOKEN, EXPIRED, NOT_FOUND, FakeKube
from tests.shared import hedgehog as shared

WIRING = "wiring.githedgehog.com"
CRD_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Clients built from a kubeconfig read http_proxy & co.; loopback must bypass them.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with FakeKube() as k:
        k.install_hedgehog_crds()
        yield k


def api_client(
    k: FakeKube, *, token: str | None = DEFAULT_TOKEN, **settings: Any
) -> client.ApiClient:
    cfg = client.Configuration(host=k.url)
    cfg.proxy = None  # ignore http_proxy & co. from the environment
    cfg.retries = False
    if token is not None:
        cfg.api_key = {"authorization": f"Bearer {token}"}
    for name, value in settings.items():
        setattr(cfg, name, value)
    return client.ApiClient(cfg)


def switch(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels} if labels else {"name": name}
    return {"apiVersion": f"{WIRING}/v1beta1", "kind": "Switch", "metadata": meta, "spec": {}}


def list_switches(api: client.ApiClient, **kwargs: Any) -> dict[str, Any]:
    objects = client.CustomObjectsApi(api)
    return as_dict(
        objects.list_namespaced_custom_object(
            WIRING, "v1beta1", "default", "switches", _request_timeout=5, **kwargs
        )
    )


def as_dict(value: object) -> dict[str, Any]:
    """CustomObjectsApi calls are typed `object`; they return the decoded JSON document."""
    assert isinstance(value, dict)
    return value


def preferred(group: client.V1APIGroup) -> str:
    assert group.preferred_version is not None
    return group.preferred_version.version


def names(page: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in page["items"]]


def status_of(e: ApiException) -> dict[str, Any]:
    return as_dict(json.loads(e.body or "null"))


def test_discovery_documents(kube: FakeKube) -> None:
    kube.install_crd("example.com", "v1", "widgets", "Widget", namespaced=False)
    kube.install_crd("example.com", "v1beta2", "widgets", "Widget", namespaced=False)
    with api_client(kube) as api:
        groups = client.ApisApi(api).get_api_versions()
        assert [(g.name, preferred(g)) for g in groups.groups] == [
            ("agent.githedgehog.com", "v1beta1"),
            ("example.com", "v1"),
            ("gateway.githedgehog.com", "v1alpha1"),
            ("vpc.githedgehog.com", "v1beta1"),
            ("wiring.githedgehog.com", "v1beta1"),
        ]
        assert [v.version for v in groups.groups[1].versions] == ["v1", "v1beta2"]
        resources = client.CustomObjectsApi(api).get_api_resources(WIRING, "v1beta1")
        assert [(r.name, r.kind, r.namespaced, r.verbs) for r in resources.resources][:2] == [
            ("connections", "Connection", True, CRD_VERBS),
            ("connections/status", "Connection", True, ["get", "patch", "update"]),
        ]
        assert [r.name for r in resources.resources if "/" not in r.name] == [
            "connections",
            "serverprofiles",
            "servers",
            "switches",
            "switchgroups",
            "switchprofiles",
            "vlannamespaces",
        ]
        widgets = client.CustomObjectsApi(api).get_api_resources("example.com", "v1")
        assert [(r.name, r.singular_name, r.namespaced) for r in widgets.resources] == [
            ("widgets", "widget", False),
            ("widgets/status", "", False),
        ]
        assert client.CoreApi(api).get_api_versions().versions == ["v1"]
        assert client.VersionApi(api).get_code().git_version == "v1.33.0-fake"
        group = client.ApisApi(api).get_api_versions()  # twice: keep-alive reuses the connection
        assert len(group.groups) == 5
    assert [r.path for r in kube.requests] == [
        "/apis/",
        f"/apis/{WIRING}/v1beta1",
        "/apis/example.com/v1",
        "/api/",
        "/version/",
        "/apis/",
    ]


def test_paging_over_three_pages(kube: FakeKube) -> None:
    for i in (6, 0, 3, 1, 5, 2, 4):
        kube.add(switch(f"leaf-{i:02d}"))
    with api_client(kube) as api:
        first = list_switches(api, limit=3)
        second = list_switches(api, limit=3, _continue=first["metadata"]["continue"])
        third = list_switches(api, limit=3, _continue=second["metadata"]["continue"])
    assert (first["apiVersion"], first["kind"]) == (f"{WIRING}/v1beta1", "SwitchList")
    assert [names(p) for p in (first, second, third)] == [
        ["leaf-00", "leaf-01", "leaf-02"],
        ["leaf-03", "leaf-04", "leaf-05"],
        ["leaf-06"],
    ]
    assert first["metadata"]["remainingItemCount"] == 4
    assert second["metadata"]["remainingItemCount"] == 1
    assert third["metadata"] == {"resourceVersion": "1007"}
    token = json.loads(base64.urlsafe_b64decode(second["metadata"]["continue"]))
    assert token == {"v": "meta.k8s.io/v1", "rv": 1007, "start": "default/leaf-05"}
    item = first["items"][0]
    assert item["metadata"]["namespace"] == "default"
    assert item["metadata"]["resourceVersion"] == "1002"
    assert item["metadata"]["uid"] == "00000000-0000-0000-0000-0000000003ea"
    assert item["metadata"]["generation"] == 1
    assert [r.query.get("limit") for r in kube.requests] == ["3", "3", "3"]
    assert [("continue" in r.query) for r in kube.requests] == [False, True, True]


def test_compact_gives_410_with_a_fresh_token(kube: FakeKube) -> None:
    for i in range(5):
        kube.add(switch(f"leaf-{i}"))
    with api_client(kube) as api:
        first = list_switches(api, limit=2)
        kube.compact()
        with pytest.raises(ApiException) as info:
            list_switches(api, limit=2, _continue=first["metadata"]["continue"])
        assert info.value.status == 410
        body = status_of(info.value)
        assert (body["reason"], body["code"], body["message"]) == ("Expired", 410, EXPIRED)
        fresh = body["metadata"]["continue"]
        assert json.loads(base64.urlsafe_b64decode(fresh)) == {
            "v": "meta.k8s.io/v1",
            "rv": 1006,
            "start": "default/leaf-1",
        }
        rest = list_switches(api, limit=5, _continue=fresh)
        assert names(rest) == ["leaf-2", "leaf-3", "leaf-4"]
        assert names(list_switches(api, limit=5)) == [f"leaf-{i}" for i in range(5)]


def test_malformed_continue_token_is_400(kube: FakeKube) -> None:
    with api_client(kube) as api, pytest.raises(BadRequestException) as info:
        list_switches(api, limit=2, _continue="not-a-token")
    body = status_of(info.value)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "BadRequest", 400)


def test_uninstalled_kind_is_404_and_installed_empty_kind_is_200(kube: FakeKube) -> None:
    with api_client(kube) as api:
        objects = client.CustomObjectsApi(api)
        with pytest.raises(NotFoundException) as info:
            objects.list_namespaced_custom_object(
                "dhcp.githedgehog.com", "v1beta1", "default", "dhcpsubnets"
            )
        assert status_of(info.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": NOT_FOUND,
            "reason": "NotFound",
            "code": 404,
        }
        with pytest.raises(NotFoundException):  # wrong version of an installed group
            objects.list_namespaced_custom_object(WIRING, "v1alpha2", "default", "switches")
        empty = as_dict(
            objects.list_namespaced_custom_object(WIRING, "v1beta1", "other-ns", "switches")
        )
        assert (empty["kind"], empty["items"]) == ("SwitchList", [])


def test_missing_token_is_401_also_for_discovery(kube: FakeKube) -> None:
    with api_client(kube, token=None) as api:
        with pytest.raises(UnauthorizedException) as info:
            list_switches(api)
        assert status_of(info.value)["reason"] == "Unauthorized"
        with pytest.raises(UnauthorizedException):
            client.ApisApi(api).get_api_versions()
    with api_client(kube, token="wrong") as api, pytest.raises(UnauthorizedException):
        list_switches(api)
    with api_client(kube) as api:
        assert list_switches(api)["items"] == []
    assert kube.requests[-1].headers["authorization"] == "Bearer fake-token"


def test_faults_403_and_503_with_retry_after(kube: FakeKube) -> None:
    kube.add(switch("leaf-1"))
    forbidden = kube.fault("/switches$", status=403, message="switches is forbidden", times=1)
    busy = kube.fault("/switches$", status=503, headers={"Retry-After": "7"}, times=1)
    with api_client(kube) as api:
        with pytest.raises(ForbiddenException) as denied:
            list_switches(api)
        assert status_of(denied.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "switches is forbidden",
            "reason": "Forbidden",
            "code": 403,
        }
        with pytest.raises(ServiceException) as unavailable:
            list_switches(api)
        assert unavailable.value.status == 503
        assert unavailable.value.headers["Retry-After"] == "7"
        assert status_of(unavailable.value)["reason"] == "ServiceUnavailable"
        assert names(list_switches(api)) == ["leaf-1"]
    assert (forbidden.hits, busy.hits, busy.seen) == (1, 1, 2)
    # urllib3's default Retry obeys Retry-After on 503 and tries again.
    kube.fault("/switches$", status=503, headers={"Retry-After": "0"}, times=1)
    with api_client(kube, retries=None) as api:
        assert names(list_switches(api)) == ["leaf-1"]
    assert len(kube.requests) == 5


def test_slow_answer_beats_request_timeout_and_does_not_block_stop() -> None:
    k = FakeKube().start()
    try:
        k.install_hedgehog_crds()
        k.fault("/switches$", delay=0.3, times=1)  # slow but normal
        with api_client(k) as api:
            started = time.monotonic()
            assert list_switches(api)["items"] == []
            assert 0.3 <= time.monotonic() - started < 2
            k.fault("/switches$", delay=60)
            started = time.monotonic()
            with pytest.raises(urllib3.exceptions.ReadTimeoutError):
                client.CustomObjectsApi(api).list_namespaced_custom_object(
                    WIRING, "v1beta1", "default", "switches", _request_timeout=(1, 0.2)
                )
            assert 0.2 <= time.monotonic() - started < 1.5
    finally:
        started = time.monotonic()
        k.stop()
        assert time.monotonic() - started < 1.5


def test_fault_after_fails_the_third_page(kube: FakeKube) -> None:
    for i in range(7):
        kube.add(switch(f"leaf-{i}"))
    fault = kube.fault("/switches$", status=500, message="etcd is down", after=2, times=1)
    with api_client(kube) as api:
        first = list_switches(api, limit=3)
        second = list_switches(api, limit=3, _continue=first["metadata"]["continue"])
        with pytest.raises(ServiceException) as info:
            list_switches(api, limit=3, _continue=second["metadata"]["continue"])
        assert status_of(info.value)["message"] == "etcd is down"
        third = list_switches(api, limit=3, _continue=second["metadata"]["continue"])
    assert names(third) == ["leaf-6"]
    assert (fault.seen, fault.hits) == (4, 1)
    fault.remove()
    kube.clear_faults()


def test_tls_with_the_right_ca_and_a_wrong_ca(tmp_path: Path) -> None:
    with FakeKube(tls=True) as k:
        k.install_hedgehog_crds()
        assert k.url.startswith("https://127.0.0.1:")
        assert k.ca_pem is not None
        good = tmp_path / "ca.pem"
        good.write_bytes(k.ca_pem)
        with api_client(k, ssl_ca_cert=str(good)) as api:
            assert list_switches(api)["items"] == []
        wrong = tmp_path / "wrong.pem"
        wrong.write_bytes(trustme.CA().cert_pem.bytes())
        with api_client(k, ssl_ca_cert=str(wrong), retries=0) as api:
            with pytest.raises(urllib3.exceptions.MaxRetryError) as info:
                list_switches(api)
            assert isinstance(info.value.reason, urllib3.exceptions.SSLError)
    assert len(k.requests) == 1


def kubeconfig_client(path: Path, context: str) -> client.ApiClient:
    return config.new_client_from_config(
        config_file=str(path), context=context, persist_config=False
    )


def test_kubeconfig_with_token_contexts_and_ca(tmp_path: Path) -> None:
    with FakeKube(tls=True, token="tok-1") as k:
        k.install_hedgehog_crds()
        k.add(switch("leaf-1"))
        path = k.write_kubeconfig(
            tmp_path / "kubeconfig", context="fab", extra_contexts={"other": "http://127.0.0.1:9"}
        )
        assert config.list_kube_config_contexts(str(path))[1]["name"] == "fab"
        with kubeconfig_client(path, "fab") as api:
            assert api.configuration.host == k.url
            assert names(list_switches(api)) == ["leaf-1"]
        with kubeconfig_client(path, "other") as api:
            assert api.configuration.host == "http://127.0.0.1:9"
        no_ca = k.write_kubeconfig(tmp_path / "no-ca", ca=False)
        with kubeconfig_client(no_ca, "fake") as api:
            with pytest.raises(urllib3.exceptions.MaxRetryError) as info:
                list_switches(api)
            assert isinstance(info.value.reason, urllib3.exceptions.SSLError)
        anonymous = k.write_kubeconfig(tmp_path / "anonymous", token=None)
        with kubeconfig_client(anonymous, "fake") as api, pytest.raises(UnauthorizedException):
            list_switches(api)
    assert [r.headers.get("authorization") for r in k.requests] == ["Bearer tok-1", None]


def test_kubeconfig_with_an_exec_plugin(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "exec-token"},
    }
    plugin.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    with FakeKube(token="exec-token") as k:
        k.install_hedgehog_crds()
        path = k.write_kubeconfig(
            tmp_path / "kubeconfig", exec_command=[sys.executable, str(plugin)]
        )
        with kubeconfig_client(path, "fake") as api:
            assert list_switches(api)["items"] == []
    assert [r.headers["authorization"] for r in k.requests] == ["Bearer exec-token"]


def test_install_crd_manifest_from_a_real_crd() -> None:
    with FakeKube(token=None) as k:
        k.install_crd_manifest(shared("crds/wiring.githedgehog.com_switches.yaml"))
        with api_client(k) as api:
            resources = client.CustomObjectsApi(api).get_api_resources(WIRING, "v1beta1")
            switches = resources.resources[0]
            assert (switches.name, switches.singular_name, switches.kind) == (
                "switches",
                "switch",
                "Switch",
            )
            assert (switches.short_names, switches.categories) == (
                ["sw"],
                ["hedgehog", "wiring", "fabric"],
            )
            assert [r.name for r in resources.resources] == ["switches", "switches/status"]
            k.add(switch("leaf-1"))
            assert names(list_switches(api)) == ["leaf-1"]


def test_load_yaml_of_the_mesh_vlab_wiring() -> None:
    with FakeKube(token=None) as k:
        objs = k.load_yaml(
            shared("samples/wiring/mesh-vlab.derived-from-agents.yaml"), install=True
        )
        assert Counter(o["kind"] for o in objs) == {
            "VLANNamespace": 1,
            "IPv4Namespace": 1,
            "SwitchGroup": 1,
            "Switch": 3,
            "Server": 6,
            "Connection": 12,
            "VPC": 3,
            "VPCAttachment": 6,
            "VPCPeering": 1,
            "External": 1,
            "ExternalAttachment": 1,
            "ExternalPeering": 1,
        }
        with api_client(k) as api:
            connections = as_dict(
                client.CustomObjectsApi(api).list_namespaced_custom_object(
                    WIRING, "v1beta1", "default", "connections"
                )
            )
            switches = list_switches(api)
        assert len(connections["items"]) == 12
        assert names(switches) == ["leaf-01", "leaf-02", "leaf-03"]


def test_load_yaml_text_with_a_list_and_empty_documents(kube: FakeKube) -> None:
    text = """
---
apiVersion: v1
kind: List
items:
- {apiVersion: wiring.githedgehog.com/v1beta1, kind: Switch, metadata: {name: b}}
- {apiVersion: wiring.githedgehog.com/v1beta1, kind: Switch, metadata: {name: a, namespace: x}}
---
"""
    assert [o["metadata"]["name"] for o in kube.load_yaml(text)] == ["b", "a"]
    assert [
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in kube.objects("Switch")
    ] == [
        ("default", "b"),
        ("x", "a"),
    ]
    with FakeKube() as bare, pytest.raises(ValueError, match="no CRD installed"):
        bare.load_yaml(text)
    with FakeKube() as bare, pytest.raises(ValueError, match="no CRD installed"):
        bare.load_yaml(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", install=True
        )


def test_label_selector_get_and_cluster_wide_list(kube: FakeKube) -> None:
    kube.add(switch("leaf-1", role="leaf", rack="r1"))
    kube.add(switch("leaf-2", role="leaf", rack="r2"))
    spine = switch("spine-1", role="spine")
    spine["metadata"]["namespace"] = "fab"
    kube.add(spine)
    with api_client(kube) as api:
        objects = client.CustomObjectsApi(api)
        assert names(list_switches(api, label_selector="role=leaf,rack=r2")) == ["leaf-2"]
        assert names(list_switches(api, label_selector="rack!=r2")) == ["leaf-1"]
        everywhere = as_dict(objects.list_cluster_custom_object(WIRING, "v1beta1", "switches"))
        assert names(everywhere) == ["leaf-1", "leaf-2", "spine-1"]
        one = as_dict(
            objects.get_namespaced_custom_object(WIRING, "v1beta1", "fab", "switches", "spine-1")
        )
        assert one["metadata"]["labels"] == {"role": "spine"}
        with pytest.raises(NotFoundException) as info:
            objects.get_namespaced_custom_object(WIRING, "v1beta1", "default", "switches", "nope")
        assert status_of(info.value)["message"] == f'switches.{WIRING} "nope" not found'


def test_add_replace_remove_and_remove_crd(kube: FakeKube) -> None:
    with pytest.raises(ValueError, match="no CRD installed"):
        kube.add({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    added = kube.add({**switch("leaf-1"), "spec": {"role": "server-leaf"}})
    with pytest.raises(ValueError, match="already exists"):
        kube.add(switch("leaf-1"))
    kube.replace({**added, "metadata": {"name": "leaf-1", "labels": {"a": "b"}}})
    assert [
        (o["metadata"]["resourceVersion"], o["metadata"]["generation"])
        for o in kube.objects("Switch")
    ] == [("1002", 1)]
    kube.replace({**added, "spec": {"role": "spine"}})
    (replaced,) = kube.objects("Switch")
    assert (replaced["metadata"]["resourceVersion"], replaced["metadata"]["generation"]) == (
        "1003",
        2,
    )
    assert replaced["metadata"]["uid"] == added["metadata"]["uid"]
    kube.remove("Switch", "leaf-1")
    assert kube.objects("Switch") == []
    kube.remove_crd("gateway.githedgehog.com", "gateways")
    with api_client(kube) as api:
        groups = client.ApisApi(api).get_api_versions().groups
        assert "gateway.githedgehog.com" not in [g.name for g in groups]
        with pytest.raises(NotFoundException):
            client.CustomObjectsApi(api).get_api_resources("gateway.githedgehog.com", "v1alpha1")


def test_install_hedgehog_crds_at_another_version() -> None:
    with FakeKube() as k:
        k.install_hedgehog_crds("v1alpha2")
        with api_client(k) as api:
            groups = client.ApisApi(api).get_api_versions().groups
    assert {g.name: preferred(g) for g in groups} == {
        "agent.githedgehog.com": "v1alpha2",
        "gateway.githedgehog.com": "v1alpha1",
        "vpc.githedgehog.com": "v1alpha2",
        "wiring.githedgehog.com": "v1alpha2",
    }
