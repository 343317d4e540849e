"""Changing the fabric changes exactly the affected NetBox objects; hand-made objects survive."""

from __future__ import annotations

import copy
from typing import Any

from tests.integration.conftest import Fabric
from tests.integration.contents import expected, read
from tests.integration.test_sync_wiring import objects, serve, sync_ok
from tests.shared import ROOT


def example() -> list[dict[str, Any]]:
    return [o for o in objects(ROOT / "examples" / "fabric") if o["kind"] not in
            {"VPCAttachment"}]  # fmt: skip


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def hand_made(fabric: Fabric) -> dict[str, Any]:
    """Objects an operator made by hand in the fabric's site, and a tag on an owned device."""
    api = fabric.api()
    site = api.dcim.sites.get(slug="dc1")
    maker = api.dcim.manufacturers.create(name="Acme", slug="acme")
    kind = api.dcim.device_types.create(manufacturer=maker.id, model="Box", slug="box")
    role = api.dcim.device_roles.create(name="Manual", slug="manual", color="000000")
    box = api.dcim.devices.create(name="hand-1", site=site.id, role=role.id, device_type=kind.id)
    eth0 = api.dcim.interfaces.create(device=box.id, name="eth0", type="1000base-t")
    server = api.dcim.devices.get(name="server-01", site="dc1")
    ipmi = api.dcim.interfaces.create(device=server.id, name="ipmi", type="1000base-t",
                                      description="by hand")  # fmt: skip
    cable = api.dcim.cables.create(
        a_terminations=[{"object_type": "dcim.interface", "object_id": eth0.id}],
        b_terminations=[{"object_type": "dcim.interface", "object_id": ipmi.id}],
        label="hand cable",
    )
    keep = api.extras.tags.create(name="keep", slug="keep")
    leaf = api.dcim.devices.get(name="leaf-01", site="dc1")
    leaf.tags.append({"id": keep.id})
    leaf.save()
    ipmi.description = "edited by hand"
    ipmi.save()
    return {"box": box.id, "eth0": eth0.id, "ipmi": ipmi.id, "cable": cable.id}


def hand_state(fabric: Fabric, ids: dict[str, Any]) -> dict[str, Any]:
    api = fabric.api()
    cable = api.dcim.cables.get(ids["cable"])
    ipmi = api.dcim.interfaces.get(ids["ipmi"])
    return {
        "box": api.dcim.devices.get(ids["box"]).name,
        "eth0": api.dcim.interfaces.get(ids["eth0"]).name,
        "ipmi": (ipmi.name, ipmi.description, [t.slug for t in ipmi.tags]),
        "cable": (cable.label, [t.object_id for t in cable.a_terminations + cable.b_terminations]),
        "leaf tags": sorted(t.slug for t in api.dcim.devices.get(name="leaf-01", site="dc1").tags),
    }


def test_changes_touch_only_their_objects_and_hand_made_objects_survive(fabric: Fabric) -> None:
    objs = example()
    serve(fabric, objs)
    sync_ok(fabric)
    ids = hand_made(fabric)
    before = hand_state(fabric, ids)
    assert before == {
        "box": "hand-1", "eth0": "eth0", "ipmi": ("ipmi", "edited by hand", []),
        "cable": ("hand cable", [ids["eth0"], ids["ipmi"]]), "leaf tags": ["hhsync", "keep"],
    }  # fmt: skip
    assert "dc1: created 0, updated 0, deleted 0, unchanged 104" in sync_ok(fabric)

    # Remove a server and its connection, move a link, change a role, add a switch.
    changed = copy.deepcopy(objs)
    changed.remove(find(changed, "Server", "server-04"))
    changed.remove(find(changed, "Connection", "server-04--unbundled--leaf-03"))
    bundle = find(changed, "Connection", "server-03--bundled--leaf-03")
    bundle["spec"]["bundled"]["links"][1]["switch"]["port"] = "leaf-03/E1/5"
    find(changed, "Switch", "leaf-03")["spec"]["role"] = "mixed-leaf"
    leaf4 = copy.deepcopy(find(changed, "Switch", "leaf-02"))
    leaf4["metadata"] = {"name": "leaf-04"}
    leaf4["spec"].update(ip="172.30.0.20/21", description="new leaf", redundancy={}, groups=[])
    changed.append(leaf4)
    for o in fabric.kube.objects("Server") + fabric.kube.objects("Connection") + \
            fabric.kube.objects("Switch"):  # fmt: skip
        fabric.kube.remove(o["kind"], o["metadata"]["name"])
    serve(fabric, [o for o in changed if o["kind"] in {"Server", "Connection", "Switch"}])

    dry = fabric.cli("sync", "dc1", "--dry-run")
    rows = [" ".join(line.split()) for line in dry.stdout.splitlines()[1:-1]]
    assert rows == [
        "delete cable leaf-03 E1/2 <-> server-03 enp2s2",
        "delete cable leaf-03 E1/3 <-> server-04 enp2s1",
        "delete interface leaf-03 E1/2",
        "delete interface leaf-03 E1/3",
        "delete interface server-04 enp2s1",
        "delete device server-04",
        "create device role mixed-leaf name=Mixed leaf, color=009688",
        "create device leaf-04 site=dc1, role=server-leaf, device_type=hedgehog-switch, "
        "description=new leaf, hhsync_profile=vs, hhsync_asn=65102, "
        "hhsync_protocol_ip=172.30.8.3/32, hhsync_vtep_ip=172.30.12.3/32, "
        "primary_ip4=dc1 172.30.0.20/21, status=offline",
        "update device leaf-03 role: border-leaf -> mixed-leaf",
        "create interface leaf-03 E1/5 type=other, enabled=True, "
        "description=server-03--bundled--leaf-03",
        "create interface leaf-04 M1 type=1000base-t, enabled=True, description=management, "
        "mgmt_only=True",
        "create ip address dc1 172.30.0.20/21 status=active, assigned_object=leaf-04 M1, "
        "description=management",
        "create cable leaf-03 E1/5 <-> server-03 enp2s2 label=server-03--bundled--leaf-03",
    ]
    out = sync_ok(fabric)
    assert out.startswith("dc1: created 6, updated 1, deleted 6, unchanged 96, skipped 0, ")
    contents = read(fabric.api())
    # hand-made objects are in the site too; the rest is exactly the fabric
    assert contents.devices.pop("hand-1") == "manual"
    assert contents.interfaces.pop("hand-1") == {"eth0"}
    assert contents.interfaces["server-01"] == {
        "enp2s1",
        "enp2s2",
        "server-01--eslag--leaf-01--leaf-02",
        "ipmi",
    }
    contents.interfaces["server-01"].discard("ipmi")
    contents.cables.pop(frozenset({"hand-1:eth0", "server-01:ipmi"}))
    assert contents == expected(changed)
    assert hand_state(fabric, ids) == before
    assert "created 0, updated 0, deleted 0, unchanged 103" in sync_ok(fabric)
