"""Faults during a sync: exit 1, nothing owned lost, and the next healthy run converges."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.integration.conftest import Fabric, inventory_writes
from tests.integration.contents import expected, read
from tests.integration.test_sync_changes import example
from tests.integration.test_sync_wiring import serve, sync_ok


def test_kind_not_served_keeps_its_objects(fabric: Fabric) -> None:
    objs = example()
    serve(fabric, objs)
    sync_ok(fabric)
    fabric.kube.remove_crd("wiring.githedgehog.com", "connections")
    result = fabric.cli("sync", "dc1", "--force")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "dc1: created 0, updated 0, deleted 0, unchanged 48, skipped 1, "
    )
    assert result.stdout.rstrip().endswith(
        "; error: the fabric's API does not serve Connection (HTTP 404): the rest was synced, "
        "and NetBox objects built from those kinds were kept, not deleted"
    )
    assert read(fabric.api()) == expected(objs)
    fabric.kube.install_crd("wiring.githedgehog.com", "v1beta1", "connections", "Connection")
    serve(fabric, [o for o in objs if o["kind"] == "Connection"])
    assert "created 0, updated 0, deleted 0, unchanged 104," in sync_ok(fabric)


def test_list_failing_mid_way_writes_nothing(
    fabric: Fabric, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hhsync.kube.client.PAGE_SIZE", 4)
    objs = example()
    serve(fabric, objs)
    fault = fabric.kube.fault("/connections$", status=500, message="etcd is sad", after=2, times=1)
    result = fabric.cli("sync", "dc1", "--force")
    assert result.exit_code == 1
    assert result.stdout == (
        f"dc1: error: listing connections in namespace default at {fabric.kube.url}: HTTP 500 "
        "etcd is sad\n"
    )
    assert fault.hits == 1 and inventory_writes(fabric) == []
    [row] = json.loads(fabric.cli("status", "--json").stdout)["fabrics"]
    assert (row["state"], row["message"]) == ("error", result.stdout[len("dc1: error: ") : -1])
    sync_ok(fabric)
    assert read(fabric.api()) == expected(objs)


def test_netbox_killed_mid_apply_then_next_run_converges(fabric: Fabric) -> None:
    objs = example()
    serve(fabric, objs)

    def kill_on_first_interface_post() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(r.method == "POST" and "/dcim/interfaces/" in r.path for r in fabric.proxy.log):
                fabric.netbox.kill()
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_on_first_interface_post)
    killer.start()
    result = fabric.cli("sync", "dc1", "--force")
    killer.join()
    assert result.exit_code == 1
    assert "error: " in result.stdout
    fabric.netbox.start()
    out = sync_ok(fabric)
    assert ", deleted 0," in out
    assert read(fabric.api()) == expected(objs)
    assert "created 0, updated 0, deleted 0, unchanged 104," in sync_ok(fabric)


def test_rejected_object_is_named_and_the_rest_of_its_chunk_is_sent(fabric: Fabric) -> None:
    objs = example()
    serve(fabric, objs)
    body = (
        b'{"detail": "1 of 32 objects could not be created.", '
        b'"errors": [{"index": 0, "errors": {"name": ["boom"]}}]}'
    )
    fault = fabric.proxy.fault(
        "/api/dcim/interfaces/", method="POST", status=400, body=body, after=1
    )
    result = fabric.cli("sync", "dc1", "--force")
    assert fault.hits == 1 and result.exit_code == 1
    assert "failed: create interface leaf-01 E1/1: {'name': ['boom']}" in result.stderr
    assert (
        "failed: create cable leaf-01 E1/1 <-> server-01 enp2s1: interface leaf-01 E1/1 does "
        "not exist in NetBox" in result.stderr
    )
    contents = read(fabric.api())
    assert contents.interfaces["leaf-01"] == expected(objs).interfaces["leaf-01"] - {"E1/1"}
    sync_ok(fabric)
    assert read(fabric.api()) == expected(objs)


def test_objects_deleted_by_hand_while_the_run_deletes_them_are_not_an_error(
    fabric: Fabric,
) -> None:
    objs = example()
    serve(fabric, objs)
    sync_ok(fabric)
    left = [o for o in objs if o["metadata"]["name"] not in
            {"server-04", "server-04--unbundled--leaf-03"}]  # fmt: skip
    fabric.kube.remove("Server", "server-04")
    fabric.kube.remove("Connection", "server-04--unbundled--leaf-03")
    leaf = fabric.api().dcim.interfaces.get(device="leaf-03", name="E1/3")
    by_hand = fabric.api().dcim.interfaces.get(device="server-04", name="enp2s1")
    held = fabric.proxy.fault("/api/dcim/interfaces/", method="DELETE", delay=1)

    def delete_while_held() -> None:
        deadline = time.monotonic() + 60
        while not held.hits and time.monotonic() < deadline:
            time.sleep(0.01)
        by_hand.delete()

    hand = threading.Thread(target=delete_while_held)
    hand.start()
    fabric.proxy.reset_log()
    out = sync_ok(fabric, "--force")
    hand.join()
    assert out.startswith("dc1: created 0, updated 0, deleted 4, unchanged 100, skipped 0, ")
    # NetBox refuses the whole chunk; hhsync asks which are still there and deletes those.
    log = [(r.method, r.status, r.query) for r in fabric.proxy.log
           if r.path == "/api/dcim/interfaces/" and r.method != "POST"]  # fmt: skip
    assert log[-3:] == [
        ("DELETE", 400, ""),
        ("GET", 200, f"id={leaf.id}&id={by_hand.id}&fields=id&limit=1000"),
        ("DELETE", 204, ""),
    ]
    assert read(fabric.api()) == expected(left)
