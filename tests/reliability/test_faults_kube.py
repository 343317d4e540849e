"""Kubernetes faults: the fabric's API down, untrusted, expiring, throttling, losing a kind,
failing mid-list, or its credential plugin failing or hanging. Each time the affected kinds are
not deleted in NetBox (it still holds exactly the last reference), the stored state records the
error, and the next healthy run converges."""

from __future__ import annotations

import base64
import copy
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from tests.harness.fakekube import EXPIRED, HEDGEHOG_KINDS, NOT_FOUND, FakeKube
from tests.harness.netbox import NetBoxInstance
from tests.integration.conftest import Fabric, inventory_writes
from tests.reliability import scenario as sc


@pytest.fixture
def base(
    netbox: NetBoxInstance, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> sc.Base:
    return sc.shared_base(netbox, tmp_path_factory, pytestconfig)


def failed_and_kept(fab: Fabric, result: Any, message: str, *, before: sc.Obj) -> sc.Obj:
    """The run failed with `message`, wrote no inventory, NetBox still holds the reference
    exactly, and the stored state is this error (never a success)."""
    assert (result.exit_code, result.stdout) == (1, f"dc1: error: {message}\n"), result.output
    assert inventory_writes(fab) == []
    sc.same(sc.REFERENCES.snaps["a"], sc.snapshot(fab.netbox))
    row = sc.status_row(fab)
    assert (row["state"], row["result"], row["message"]) == ("error", "error", message)
    assert row["last_success"] == before["last_success"]
    assert sc.consistent(row) == []
    return row


def recovers(base: sc.Base, variant: str = "a") -> None:
    """The next healthy, unforced run syncs (a failed fabric is due at once) and converges."""
    base.begin()
    result = base.fab.cli("sync", "dc1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("dc1: created "), result.stdout
    base.converged(variant)
    row = sc.status_row(base.fab)
    assert (row["state"], sc.consistent(row)) == ("in_sync", [])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_api_down(base: sc.Base) -> None:
    fab = base.at("a")
    before = sc.status_row(fab)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = yaml.safe_load((fab.tmp / "kubeconfig").read_text())
    config["clusters"][0]["cluster"]["server"] = url
    (fab.tmp / "down.kubeconfig").write_text(yaml.safe_dump(config))
    sc.write_config(fab, kubeconfig="down.kubeconfig")
    result = fab.cli("sync", "dc1", "--force")
    failed_and_kept(
        fab,
        result,
        f"API discovery at {url}: cannot connect (Failed to establish a new connection: "
        "[Errno 111] Connection refused); is the API server up?",
        before=before,
    )
    recovers(base)


def test_tls_with_the_wrong_ca(base: sc.Base) -> None:
    fab = base.at("a")
    before = sc.status_row(fab)
    with FakeKube(tls=True) as tls:
        tls.install_hedgehog_crds()
        sc.serve(tls, sc.VARIANTS["a"])
        tls.write_kubeconfig(fab.tmp / "tls.kubeconfig")
        wrong = yaml.safe_load((fab.tmp / "tls.kubeconfig").read_text())
        other_ca = trustme.CA().cert_pem.bytes()
        wrong["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
            other_ca
        ).decode()
        (fab.tmp / "wrong-ca.kubeconfig").write_text(yaml.safe_dump(wrong))
        sc.write_config(fab, kubeconfig="wrong-ca.kubeconfig")
        result = fab.cli("sync", "dc1", "--force")
        message = result.stdout.removeprefix("dc1: error: ").rstrip("\n")
        assert message.startswith(f"API discovery at {tls.url}: TLS verification failed (")
        assert "certificate verify failed" in message
        assert message.endswith("); check the kubeconfig's certificate-authority")
        failed_and_kept(fab, result, message, before=before)
        assert tls.requests == []  # the handshake failed: not one request got through
        sc.write_config(fab, kubeconfig="tls.kubeconfig")  # the right CA: the next run works
        result = fab.cli("sync", "dc1")
        assert result.stdout.startswith("dc1: created 0, updated 0, deleted 0,"), result.output
        base.converged("a")
        assert sc.status_row(fab)["state"] == "in_sync"


def test_continue_token_expiring_once_restarts_the_list(
    base: sc.Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 410 mid-list (etcd compacted between pages) restarts that list from the first page;
    the run that carries a whole change set still converges exactly, without duplicates."""
    monkeypatch.setattr("hhsync.kube.client.PAGE_SIZE", 1)
    fab = base.at("a", then="b")
    base.serve("b")
    held = fab.kube.fault("/connections$", after=1, times=1, delay=1.0)  # page 2 waits 1 s

    def compact_while_page_2_waits() -> None:
        deadline = time.monotonic() + 60
        while held.hits == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        fab.kube.compact()

    compactor = threading.Thread(target=compact_while_page_2_waits)
    compactor.start()
    result = fab.cli("sync", "dc1", "--force")
    compactor.join()
    assert result.exit_code == 0, result.output
    lists = [r.query.get("continue", "") for r in fab.kube.requests if "connections" in r.path]
    assert lists[0] == "" and lists[1] != "" and lists[2] == ""  # page 1, page 2 (410), page 1
    assert len(lists) == 2 + 4  # 4 connections in pages of 1, after the restart
    base.converged("b")
    assert sc.status_row(fab)["state"] == "in_sync"


def test_continue_token_expiring_every_time_fails_and_keeps_everything(
    base: sc.Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hhsync.kube.client.PAGE_SIZE", 2)
    fab = base.at("a")
    before = sc.status_row(fab)
    fault = fab.kube.fault("/connections$", status=410, reason="Expired", message=EXPIRED, after=1)
    result = fab.cli("sync", "dc1", "--force")
    failed_and_kept(
        fab,
        result,
        f"listing connections in namespace default at {fab.kube.url}: the list expired "
        "(HTTP 410) 4 times in a row; the API server compacts faster than hhsync can page",
        before=before,
    )
    assert fault.hits == 4
    recovers(base)


def test_429_with_retry_after_is_waited_out(base: sc.Base) -> None:
    fab = base.at("a")
    throttled = fab.kube.fault(
        "/switches$", status=429, message="slow down", headers={"Retry-After": "2"}, times=1
    )
    with sc.arrivals(throttled) as [seen]:
        result = fab.cli("sync", "dc1", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("dc1: created 0, updated 0, deleted 0,")
    assert throttled.hits == 1 and throttled.seen == 2
    assert seen[1] - seen[0] >= 1.9  # the retry came after Retry-After, not the 0.5 s backoff
    base.converged("a")


def test_429_that_never_ends_fails_and_keeps_everything(base: sc.Base) -> None:
    fab = base.at("a")
    before = sc.status_row(fab)
    fault = fab.kube.fault(
        "/servers$", status=429, message="slow down", headers={"Retry-After": "1"}
    )
    result = fab.cli("sync", "dc1", "--force")
    failed_and_kept(
        fab,
        result,
        f"listing servers in namespace default at {fab.kube.url}: HTTP 429 slow down",
        before=before,
    )
    assert fault.hits == 3  # the first try and two retries, each after its Retry-After
    recovers(base)


VPC_ENDPOINTS = (
    "ipam/route-targets/",
    "ipam/vrfs/",
    "ipam/vlans/",
    "ipam/prefixes/",
    "ipam/ip-ranges/",
    "ipam/vlan-groups/",
)


def test_vpc_group_gone_between_runs_keeps_its_objects(base: sc.Base) -> None:
    """Every vpc.githedgehog.com CRD is uninstalled while the wiring changes: the wiring change
    is applied, every object built from VPC kinds stays exactly as it was, and the error says
    which kinds were not served."""
    fab = base.at("a", then="b")
    before = sc.status_row(fab)
    base.serve("b")
    for (group, _kind), plural in HEDGEHOG_KINDS.items():
        if group == "vpc.githedgehog.com":
            fab.kube.remove_crd(group, plural)
    result = fab.cli("sync", "dc1", "--force")
    assert result.exit_code == 1
    missing = "IPv4Namespace, VPC, VPCAttachment, VPCPeering, External, ExternalAttachment, "
    missing += "ExternalPeering"
    error = (
        f"the fabric's API does not serve {missing} (HTTP 404): the rest was synced, and NetBox "
        "objects built from those kinds were kept, not deleted"
    )
    assert result.stdout.rstrip().endswith(f"; error: {error}"), result.stdout
    a, b, now = sc.REFERENCES.snaps["a"], sc.REFERENCES.snaps["b"], sc.snapshot(fab.netbox)
    assert sc.duplicates(now) == []
    # Addresses are built from VPCs too, so none is deleted this run: the fabric link's old
    # addresses stay beside the new ones (README: deletes of a type wait for all its kinds).
    underlay = {k for k in a["ipam/ip-addresses/"] | b["ipam/ip-addresses/"] if k[:7] == '"dc1" |'}
    addresses = {**a["ipam/ip-addresses/"], **b["ipam/ip-addresses/"]}
    want = {e: a[e] for e in VPC_ENDPOINTS} | {e: b[e] for e in ("dcim/devices/", "dcim/cables/")}
    want["ipam/ip-addresses/"] = {
        k: v for k, v in addresses.items() if k in underlay or k in a["ipam/ip-addresses/"]
    }
    vrfs = want["ipam/vrfs/"] = copy.deepcopy(a["ipam/vrfs/"])
    vrfs['"dc1"'][0]["ipaddress_count"] = len(underlay)
    # Interfaces as in b, but their VLANs (from attachments) left as they were: new ones get none.
    ports = want["dcim/interfaces/"] = copy.deepcopy(b["dcim/interfaces/"])
    for key, [port] in ports.items():
        old = a["dcim/interfaces/"].get(key, [{}])[0]
        port.update({f: old.get(f) for f in ("mode", "untagged_vlan")})
        port["tagged_vlans"] = old.get("tagged_vlans", [])
        port["count_ipaddresses"] = now["dcim/interfaces/"][key][0]["count_ipaddresses"]
    sc.same(want, {e: now[e] for e in want})
    row = sc.status_row(fab)
    assert (row["state"], row["message"], sc.consistent(row)) == ("error", error, [])
    assert row["last_success"] == before["last_success"]
    recovers(base, "b")  # CRDs back (begin), objects served again


def test_kind_vanishing_between_discovery_and_its_list_keeps_its_objects(base: sc.Base) -> None:
    """Discovery lists VPC, then its list answers 404 (the CRD was deleted in between): VPC is
    absent, not empty, so nothing built from it is deleted; the attachments that refer to its
    VPCs must not strip the interfaces' VLANs either."""
    fab = base.at("a")
    before = sc.status_row(fab)
    fab.kube.fault("/vpcs$", status=404, message=NOT_FOUND)
    result = fab.cli("sync", "dc1", "--force")
    assert result.exit_code == 1
    error = (
        "the fabric's API does not serve VPC (HTTP 404): the rest was synced, and NetBox "
        "objects built from those kinds were kept, not deleted"
    )
    assert result.stdout.rstrip().endswith(f"; error: {error}"), result.output
    sc.same(sc.REFERENCES.snaps["a"], sc.snapshot(fab.netbox))
    row = sc.status_row(fab)
    assert (row["state"], row["message"]) == ("error", error)
    assert row["last_success"] == before["last_success"]
    recovers(base)


def test_list_timing_out_on_page_3_fails_and_keeps_everything(
    base: sc.Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hhsync.kube.client.PAGE_SIZE", 1)
    fab = base.at("a")
    before = sc.status_row(fab)
    sc.write_config(fab, kube_timeout=1)
    fault = fab.kube.fault("/connections$", after=2, delay=5)  # page 3 never comes in time
    started = time.monotonic()
    result = fab.cli("sync", "dc1", "--force")
    assert time.monotonic() - started < 15
    failed_and_kept(
        fab,
        result,
        f"listing connections in namespace default at {fab.kube.url}: no answer within 1s "
        "(read timeout)",
        before=before,
    )
    assert fault.hits == 2  # page 3, and its one retry
    recovers(base)


PLUGIN = """\
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
if sys.argv[2] == "hang":
    time.sleep(600)
sys.stderr.write("plugin: no credentials for you\\n")
sys.exit(1)
"""


def exec_kubeconfig(fab: Fabric, mode: str) -> Path:
    plugin = fab.tmp / "plugin.py"
    plugin.write_text(PLUGIN)
    pid = fab.tmp / f"plugin-{mode}.pid"
    fab.kube.write_kubeconfig(
        fab.tmp / f"{mode}.kubeconfig", exec_command=[sys.executable, str(plugin), str(pid), mode]
    )
    return pid


def test_exec_credential_plugin_failing(base: sc.Base) -> None:
    fab = base.at("a")
    before = sc.status_row(fab)
    exec_kubeconfig(fab, "fail")
    sc.write_config(fab, kubeconfig="fail.kubeconfig")
    result = fab.cli("sync", "dc1", "--force")
    failed_and_kept(
        fab,
        result,
        f"API discovery at {fab.kube.url}: credentials rejected (HTTP 401); the kubeconfig's "
        "exec credential plugin gave no usable token: run it by hand to see why",
        before=before,
    )
    recovers(base)


def test_exec_credential_plugin_hanging_ends_by_the_deadline(base: sc.Base) -> None:
    """The plugin runs while the kubeconfig loads, where no safe point is reached: the SIGALRM
    backstop ends the run (deadline + 15 s) and the error is recorded."""
    fab = base.at("a")
    before = sc.status_row(fab)
    pid_file = exec_kubeconfig(fab, "hang")
    sc.write_config(fab, kubeconfig="hang.kubeconfig", fabric='interval = "1m"\ndeadline = "2s"')
    started = time.monotonic()
    try:
        result = fab.run("sync", "dc1", "--force", timeout=60)
    finally:
        plugin_pid = int(pid_file.read_text()) if pid_file.exists() else None
    elapsed = time.monotonic() - started
    assert 15 < elapsed < 30, elapsed
    assert result.returncode == 1
    message = result.stdout.removeprefix("dc1: error: ").rstrip("\n")
    # It was stuck loading the kubeconfig (the plugin): the backstop's exception must end the
    # run there, not be logged and swallowed on the way.
    assert message == (
        "deadline exceeded after 2s, during loading the kubeconfig "
        "(stuck there; stopped 15s later by the backstop)"
    ), result.stdout
    assert "ERROR" not in result.stderr, result.stderr
    assert inventory_writes(fab) == []
    sc.same(sc.REFERENCES.snaps["a"], sc.snapshot(fab.netbox))
    row = sc.status_row(fab)
    assert (row["state"], row["message"]) == ("error", message)
    assert row["last_success"] == before["last_success"]
    assert plugin_pid is not None
    if Path(f"/proc/{plugin_pid}").exists():  # hhsync leaves the stuck plugin behind (systemd
        os.kill(plugin_pid, signal.SIGKILL)  # ends it with the unit's cgroup); ours, by pid
    recovers(base)
