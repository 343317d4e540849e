"""Saved plans (`sync --dry-run --plan-out`, `hhsync apply`), retire-then-delete, and NetBox's
own owner field, against the real NetBox."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Fabric, inventory_writes
from tests.integration.contents import expected, read
from tests.integration.test_sync_changes import example, find, hand_made
from tests.integration.test_sync_wiring import serve, sync_ok


def plan_out(fabric: Fabric, path: Path) -> dict[str, Any]:
    result = fabric.cli("sync", "dc1", "--dry-run", "--plan-out", str(path))
    assert result.exit_code == 0, result.output
    return dict(json.loads(path.read_text()))


def apply(fabric: Fabric, path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = fabric.cli("apply", str(path), "--json", *args)
    [found] = json.loads(result.stdout)["fabrics"]
    return result.exit_code, found


def test_a_saved_plan_is_applied_exactly(fabric: Fabric, tmp_path: Path) -> None:
    objs = example()
    serve(fabric, objs)
    doc = plan_out(fabric, tmp_path / "plan.json")
    assert fabric.proxy.writes() == []  # a dry run writes nothing
    assert (doc["format"], doc["version"], doc["fabric"], doc["netbox"]) == (
        "hhsync-plan", 1, "dc1", fabric.proxy.url,
    )  # fmt: skip
    assert doc["counts"]["created"] == len(doc["changes"]) == 104  # the site too
    assert doc["change_marker"] >= 0 and len(doc["fingerprint"]) == 32
    assert nb_token_free(fabric, tmp_path / "plan.json")
    code, done = apply(fabric, tmp_path / "plan.json")
    assert code == 0, done["error"]
    assert done["counts"]["created"] == 104
    assert read(fabric.api()) == expected(objs)
    [row] = json.loads(fabric.cli("status", "--json").stdout)["fabrics"]
    assert (row["state"], row["result"]) == ("in_sync", "ok")
    code, again = apply(fabric, tmp_path / "plan.json")  # NetBox moved: by that very plan
    assert code == 1 and again["error"].startswith("refused to apply the saved plan: NetBox has")


def nb_token_free(fabric: Fabric, path: Path) -> bool:
    text = path.read_text()
    return fabric.netbox.token not in text and fabric.netbox.token.split(".")[1] not in text


def test_a_plan_made_before_a_hand_edit_is_refused_and_force_applies_what_is_valid(
    fabric: Fabric, tmp_path: Path
) -> None:
    objs = example()
    serve(fabric, objs)
    sync_ok(fabric)
    leaf = copy.deepcopy(find(objs, "Switch", "leaf-01"))
    leaf["spec"]["description"] = "from the fabric"
    fabric.kube.replace(leaf)
    server = copy.deepcopy(find(objs, "Server", "server-04"))
    server["metadata"]["name"] = "server-09"
    fabric.kube.add(server)
    doc = plan_out(fabric, tmp_path / "plan.json")
    assert sorted((c["action"], c["type"], str(c["key"])) for c in doc["changes"]) == [
        ("create", "device", "['server-09']"),
        ("update", "device", "['leaf-01']"),
    ]
    device = fabric.api().dcim.devices.get(name="leaf-01")
    device.description = "edited by hand"  # NetBox moves after the plan was made
    device.save()
    fabric.proxy.reset_log()
    code, refused = apply(fabric, tmp_path / "plan.json")
    assert code == 1
    assert refused["error"] == (
        "refused to apply the saved plan: NetBox has 1 change(s) since, to objects hhsync "
        "manages; update device leaf-01: planned with other values (--force applies what is "
        "still valid)"
    )
    assert inventory_writes(fabric) == []
    code, partial = apply(fabric, tmp_path / "plan.json", "--force")
    assert code == 1
    assert partial["counts"]["created"] == 1 and partial["counts"]["updated"] == 0
    assert partial["error"].startswith("applied 1 of 2 saved changes: NetBox has 1 change(s)")
    assert "not applied: update device leaf-01: planned with other values" in partial["warnings"]
    api = fabric.api()
    assert api.dcim.devices.get(name="server-09") is not None
    assert api.dcim.devices.get(name="leaf-01").description == "edited by hand"
    assert sync_ok(fabric).startswith("dc1: created 0, updated 1, deleted 0, ")  # the next sync


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not a plan file: invalid or truncated JSON"),
        ('{"apiVersion": "v1", "kind": "Config"}', 'not an hhsync plan file (no "format": '
         '"hhsync-plan")'),
        ('{"format": "hhsync-plan", "version": 7, "hhsync": "9.9"}',
         "plan format 7 was written by a newer hhsync (9.9)"),
    ],
)  # fmt: skip
def test_bad_plan_files_are_refused_and_nothing_is_written(
    fabric: Fabric, tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    result = fabric.cli("apply", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"hhsync: error: {path}: {problem}"), result.stderr
    assert fabric.proxy.log == []


def test_a_plan_of_another_fabric_or_netbox_is_refused(fabric: Fabric, tmp_path: Path) -> None:
    serve(fabric, example())
    doc = plan_out(fabric, tmp_path / "plan.json")
    for edit, problem in (
        ({"fabric": "dc9"}, f"the plan is for fabric dc9, which {fabric.config} does not "
         "configure"),
        ({"netbox": "https://other"}, "the plan was made against NetBox at https://other; "
         f"{fabric.config} points at {fabric.proxy.url}"),
    ):  # fmt: skip
        path = tmp_path / "other.json"
        path.write_text(json.dumps({**doc, **edit}))
        fabric.proxy.reset_log()
        result = fabric.cli("apply", str(path))
        assert (result.exit_code, result.stderr) == (2, f"hhsync: error: {path}: {problem}\n")
        assert fabric.proxy.log == []


def test_dry_run_json_includes_the_plan(fabric: Fabric) -> None:
    serve(fabric, example())
    fabric.write_config(dc2='site = "dc2"\nkubeconfig = "kubeconfig"')
    for args in (("dc1",), ("--all",)):
        result = fabric.cli("sync", *args, "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        for found in json.loads(result.stdout)["fabrics"]:
            plan = found["plan"]
            assert plan["fabric"] == found["fabric"] and plan["counts"]["created"] == 104
            assert len(plan["changes"]) == found["counts"]["created"]


def set_retired(fabric: Fabric, when: datetime) -> None:
    """Move the retirement of every retired object back in time, as the clock would."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    api = fabric.api()
    for endpoint in (api.dcim.devices, api.dcim.interfaces, api.dcim.cables):
        for obj in endpoint.filter(cf_hhsync_fabric="dc1"):
            if obj.custom_fields.get("hhsync_retired"):
                obj.custom_fields["hhsync_retired"] = stamp
                obj.save()


def server_04(fabric: Fabric) -> dict[str, Any]:
    api = fabric.api()
    device = api.dcim.devices.get(name="server-04", site="dc1")
    if device is None:
        return {}
    port = api.dcim.interfaces.get(device_id=device.id, name="enp2s1")
    cable = api.dcim.cables.get(port.cable.id)
    return {
        "ids": (device.id, port.id, cable.id),
        "status": (device.status.value, port.enabled, cable.status.value),
        "retired": {device.custom_fields["hhsync_retired"], port.custom_fields["hhsync_retired"],
                    cable.custom_fields["hhsync_retired"]},
    }  # fmt: skip


def test_retire_restore_retire_delete(fabric: Fabric) -> None:
    objs = example()
    serve(fabric, objs)
    fabric.write_config(fabric='retire_after = "1h"')
    sync_ok(fabric)
    live = server_04(fabric)
    assert live["status"] == ("active", True, "connected") and live["retired"] == {None}

    fabric.kube.remove("Server", "server-04")
    fabric.kube.remove("Connection", "server-04--unbundled--leaf-03")
    out = sync_ok(fabric)
    assert ", deleted 0, retired 4 (4 awaiting deletion, the first at " in out
    retired = server_04(fabric)
    assert retired["ids"] == live["ids"]
    assert retired["status"] == ("decommissioning", False, "decommissioning")
    [stamp] = retired["retired"]
    journal = fabric.api().extras.journal_entries.filter(assigned_object_type="dcim.site")
    last = max(journal, key=lambda j: j.id).comments
    assert last.endswith(
        "Retired (deleted after retire_after unless they come back):\n"
        "- device server-04\n- interface leaf-03 E1/3\n- interface server-04 enp2s1\n"
        "- cable leaf-03 E1/3 <-> server-04 enp2s1"
    ), last
    [row] = json.loads(fabric.cli("status", "--json").stdout)["fabrics"]
    due = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(hours=1)
    assert row["retirements"] == [{"due": due.strftime("%Y-%m-%dT%H:%M:%SZ"), "count": 4}]
    assert "retired 0 (4 awaiting deletion" in sync_ok(fabric)  # nothing new; not due yet

    serve(fabric, [find(objs, "Server", "server-04"),
                   find(objs, "Connection", "server-04--unbundled--leaf-03")])  # fmt: skip
    out = sync_ok(fabric)
    assert out.startswith("dc1: created 0, updated 4, deleted 0, unchanged")  # restored
    assert server_04(fabric) == {**live}

    fabric.kube.remove("Server", "server-04")
    fabric.kube.remove("Connection", "server-04--unbundled--leaf-03")
    sync_ok(fabric)
    set_retired(fabric, datetime.now(UTC) - timedelta(hours=2))
    out = sync_ok(fabric)
    assert out.startswith("dc1: created 0, updated 0, deleted 4, unchanged")
    assert server_04(fabric) == {}
    [row] = json.loads(fabric.cli("status", "--json").stdout)["fabrics"]
    assert row["retirements"] == []


def test_owner_is_set_on_everything_owned_and_nothing_else(fabric: Fabric) -> None:
    objs = example()
    serve(fabric, objs)
    sync_ok(fabric)
    ids = hand_made(fabric)
    api = fabric.api()
    [owner] = api.users.owners.filter(name="hhsync/dc1")
    assert owner.group.name == "hhsync"
    owned = 0
    for endpoint in (api.dcim.devices, api.dcim.interfaces, api.dcim.cables, api.ipam.vrfs,
                     api.ipam.route_targets, api.ipam.vlan_groups, api.ipam.vlans,
                     api.ipam.prefixes, api.ipam.ip_ranges, api.ipam.ip_addresses):  # fmt: skip
        for obj in endpoint.all():
            mine = obj.custom_fields.get("hhsync_fabric") == "dc1"
            assert (obj.owner.id if obj.owner else None) == (owner.id if mine else None), obj
            owned += mine
    assert owned == 94  # 103 objects less the shared ones (the owner itself, roles, types)
    for endpoint in (api.dcim.sites, api.dcim.manufacturers, api.dcim.device_types,
                     api.dcim.device_roles):  # fmt: skip
        assert all(o.owner is None for o in endpoint.all())
    assert api.dcim.devices.get(ids["box"]).owner is None  # made by hand: not hhsync's

    # Objects owned before hhsync set owners get theirs on the next run, nothing else.
    for device in api.dcim.devices.filter(cf_hhsync_fabric="dc1"):
        device.owner = None
        device.save()
    out = sync_ok(fabric)
    assert out.startswith("dc1: created 0, updated 9, deleted 0, ")
    assert {d.owner.id for d in api.dcim.devices.filter(cf_hhsync_fabric="dc1")} == {owner.id}
