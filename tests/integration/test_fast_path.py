"""The fast path: an unchanged fabric is verified in a handful of requests and writes nothing
but its sync state; any change in NetBox or in the fabric still gets a full comparison."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import Fabric, state_only
from tests.integration.contents import expected, read
from tests.integration.test_sync_changes import example
from tests.integration.test_sync_wiring import serve


def sync(fabric: Fabric, *args: str) -> dict[str, Any]:
    fabric.proxy.reset_log()
    result = fabric.cli("sync", "dc1", "--force", "--json", *args)
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["fabrics"]
    return dict(report)


def test_unchanged_fabric_takes_the_fast_path_and_hand_edits_are_still_repaired(
    fabric: Fabric,
) -> None:
    objs = example()
    serve(fabric, objs)
    assert sync(fabric)["counts"]["created"] == 103
    quick = sync(fabric)
    assert quick["fast"] is True and quick["counts"]["unchanged"] == 104
    assert state_only(fabric) and sum(fabric.proxy.counts().values()) == 3  # 2 GETs, 1 PATCH
    assert quick["summary"].endswith("; fabric and NetBox unchanged since the last sync")

    api = fabric.api()  # a hand edit of an owned object is seen in the change log
    port = api.dcim.interfaces.get(device="leaf-01", name="E1/1", site="dc1")
    port.description = "edited by hand"
    port.save()
    repaired = sync(fabric)
    assert (repaired["fast"], repaired["counts"]["updated"]) == (False, 1)
    assert api.dcim.interfaces.get(port.id).description == "server-01--eslag--leaf-01--leaf-02"
    assert sync(fabric)["fast"] is True  # its own repair does not count as someone's change

    fabric.kube.remove("Server", "server-04")  # a change in the fabric: a full sync
    changed = sync(fabric, "--allow-mass-delete")
    assert changed["fast"] is False and changed["counts"]["deleted"] == 4  # device, 2 ports, cable
    assert sync(fabric, "--full")["fast"] is False  # --full always compares everything
    assert sync(fabric)["fast"] is True
    objs = [o for o in objs if o["metadata"]["name"] != "server-04"]
    assert read(fabric.api()).devices == expected(objs).devices
