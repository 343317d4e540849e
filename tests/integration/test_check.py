"""`hhsync check` against the real NetBox and the fake Kubernetes API: every outcome exactly."""

from __future__ import annotations

import json
import socket

from tests.integration.conftest import Fabric


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def checks(fabric: Fabric, *args: str) -> tuple[int, list[dict[str, object]]]:
    result = fabric.cli("check", "--json", *args)
    return result.exit_code, json.loads(result.stdout)["checks"]


def test_check_passes_and_lists_served_kinds(fabric: Fabric) -> None:
    code, results = checks(fabric)
    assert code == 0
    assert results == [
        {
            "name": "config",
            "target": str(fabric.config),
            "ok": True,
            "detail": "1 fabric (1 enabled)",
        },
        {
            "name": "netbox",
            "target": fabric.proxy.url,
            "ok": True,
            "detail": "NetBox 4.7.3, token valid (user hhsync)",
        },
        {
            "name": "fabric dc1",
            "target": str(fabric.tmp / "kubeconfig"),
            "ok": True,
            "detail": "serves 15 Hedgehog kinds (agent.githedgehog.com/v1beta1, "
            "gateway.githedgehog.com/v1alpha1, vpc.githedgehog.com/v1beta1, "
            "wiring.githedgehog.com/v1beta1)",
        },
    ]


def test_check_plain_output_is_a_table(fabric: Fabric) -> None:
    result = fabric.cli("check")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["result", "check", "target", "detail"]
    assert [line.split()[0] for line in lines[1:]] == ["ok", "ok", "ok"]


def test_wrong_token(fabric: Fabric) -> None:
    (fabric.tmp / "token").write_text("nbt_hhsynctest01.ffffffffffffffffffffffffffffffffffffffff")
    code, results = checks(fabric)
    assert code == 1
    assert results[1]["ok"] is False
    assert results[1]["detail"] == (
        "token rejected by NetBox (HTTP 403: Invalid v2 token): check [netbox] token_file or "
        "HHSYNC_NETBOX_TOKEN"
    )


def test_readonly_token_lacks_permissions(fabric: Fabric) -> None:
    (fabric.tmp / "token").write_text(fabric.netbox.readonly_token)
    code, results = checks(fabric)
    assert code == 1
    detail = str(results[1]["detail"])
    assert detail.startswith("NetBox 4.7.3, token of user readonly valid, but it may not: ")
    assert "add dcim.device, change dcim.device" in detail


def test_netbox_down(fabric: Fabric) -> None:
    port = closed_port()
    fabric.write_config(netbox=f'url = "http://127.0.0.1:{port}"'.replace("url", "#"))
    text = fabric.config.read_text().replace(fabric.proxy.url, f"http://127.0.0.1:{port}")
    fabric.config.write_text(text)
    code, results = checks(fabric)
    assert code == 1
    assert results[1] == {
        "name": "netbox",
        "target": f"http://127.0.0.1:{port}",
        "ok": False,
        "detail": f"cannot connect to NetBox at http://127.0.0.1:{port} (Failed to establish a "
        "new connection: [Errno 111] Connection refused): is it running, and is [netbox] url "
        "right?",
    }
    assert results[2]["ok"] is True  # the fabric is checked anyway


def test_netbox_answers_html(fabric: Fabric) -> None:
    fabric.proxy.fault(
        "/api/status/", status=200, body=b"<html>login</html>", content_type="text/html", times=None
    )
    code, results = checks(fabric)
    assert (code, results[1]["detail"]) == (
        1,
        (
            f"{fabric.proxy.url}/api/status/ did not answer like NetBox: is [netbox] url the "
            "NetBox address (not a proxy or login page)?"
        ),
    )


def test_kubernetes_down(fabric: Fabric) -> None:
    port = closed_port()
    fabric.kube.write_kubeconfig(
        fabric.tmp / "kubeconfig", extra_contexts={"down": f"http://127.0.0.1:{port}"}
    )
    fabric.write_config(fabric='context = "down"')
    code, results = checks(fabric)
    assert code == 1
    assert results[2]["detail"] == (
        f"API discovery at http://127.0.0.1:{port}: cannot connect (Failed to establish a new "
        "connection: [Errno 111] Connection refused); is the API server up?"
    )


def test_kubernetes_slow_hits_the_timeout(fabric: Fabric) -> None:
    fabric.write_config(fabric="timeout = 1")
    fabric.kube.fault("^/apis$", delay=30)
    code, results = checks(fabric)
    assert code == 1
    assert results[2]["detail"] == (
        f"API discovery at {fabric.kube.url}: no answer within 1s (read timeout)"
    )


def test_crd_missing(fabric: Fabric) -> None:
    fabric.kube.remove_crd("wiring.githedgehog.com", "connections")
    code, results = checks(fabric)
    assert code == 1
    assert results[2]["detail"] == (
        "serves 14 Hedgehog kinds (agent.githedgehog.com/v1beta1, gateway.githedgehog.com/v1alpha1,"
        " vpc.githedgehog.com/v1beta1, wiring.githedgehog.com/v1beta1), but not Connection: is the "
        "Hedgehog fabric complete and at v1beta1 (fabric v0.52+)?"
    )


def test_optional_kind_missing_passes(fabric: Fabric) -> None:
    fabric.kube.remove_crd("gateway.githedgehog.com", "gateways")
    code, results = checks(fabric)
    assert code == 0
    assert str(results[2]["detail"]).endswith("; optional kinds not served: Gateway")


def test_file_source_lists_what_files_hold(fabric: Fabric) -> None:
    fabric.write_config(lab='site = "lab"\nsource = "file:wiring.yaml"')
    (fabric.tmp / "wiring.yaml").write_text(
        "apiVersion: wiring.githedgehog.com/v1beta1\nkind: Switch\nmetadata: {name: s1}\n"
        "spec: {role: spine}\n---\napiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: wiring.githedgehog.com/v1beta1, kind: Server, metadata: {name: h1}}\n"
    )
    code, results = checks(fabric, "lab")
    assert code == 0
    assert results[2] == {
        "name": "fabric lab",
        "target": f"file:{fabric.tmp / 'wiring.yaml'}",
        "ok": True,
        "detail": "files parse; they hold 1 Switch, 1 Server",
    }


def test_broken_yaml_names_file_and_line(fabric: Fabric) -> None:
    fabric.write_config(lab='site = "lab"\nsource = "file:wiring.yaml"')
    (fabric.tmp / "wiring.yaml").write_text("kind: Switch\nmetadata: [\n")
    code, results = checks(fabric, "lab")
    assert code == 1
    assert str(results[2]["detail"]).startswith(f"{fabric.tmp / 'wiring.yaml'}:3:1: invalid YAML")


def test_unknown_fabric_is_a_usage_error(fabric: Fabric) -> None:
    result = fabric.cli("check", "nope")
    assert result.exit_code == 2
    assert result.stderr == f'hhsync: error: {fabric.config}: no fabric "nope" (configured: dc1)\n'


def test_a_netbox_older_than_4_7_is_refused(fabric: Fabric) -> None:
    old = {"netbox-version": "4.6.2", "python-version": "3.12.1", "plugins": {}}
    fabric.proxy.fault("^/api/status/$", status=200, body=json.dumps(old).encode(), times=None)
    code, results = checks(fabric)
    assert code == 1
    assert results[1] == {
        "name": "netbox",
        "target": fabric.proxy.url,
        "ok": False,
        "detail": "NetBox 4.6.2 is older than 4.7, the oldest version hhsync supports (it is "
        "tested with 4.7.3): upgrade NetBox",
    }


def test_the_tested_netbox_is_the_one_the_tests_run() -> None:
    from hhsync.check import TESTED_NETBOX
    from tests.harness.netbox import NETBOX_VERSION

    assert TESTED_NETBOX == NETBOX_VERSION
