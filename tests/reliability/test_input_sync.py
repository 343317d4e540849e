"""Bad input against the real NetBox: a fabric mixed with hypothesis-generated junk, and NetBox
objects an operator edited by hand into shapes hhsync did not make.

Junk: a few dozen malformed objects drawn once (derandomized) from the generator of
test_input_desired, served by the fake API beside the valid fabric. The sync must succeed, skip
and report each junk object once, and leave NetBox exactly as the valid fabric alone describes it.

Hand edits (README "How a fabric looks in NetBox": hhsync changes only objects carrying both its
tag and `hhsync_fabric`, and repairs what it owns; anything else with the same natural key is a
conflict, reported and left alone):

- an owned device moved to another site: owned, so it is moved back (same id, one update);
- an owned cable re-terminated onto a hand-made interface: owned, so it is replaced by the cable
  the fabric describes (delete + create), and the hand-made interface loses that cable;
- the `hhsync` tag removed from an owned device: no longer owned, so a conflict, never touched;
  `adopt = true` takes it back;
- `hhsync_fabric` changed to another fabric: that fabric's, so a conflict, even with adopt.

Every scenario also checks that no unowned object changed (tests/reliability/unowned.py).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration import contents, ipam
from tests.integration.conftest import Fabric
from tests.reliability import unowned
from tests.reliability.test_input_desired import BASE, PROFILE, build, malformed, name_of

DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
JUNK_PER_KIND = 4


def draw_junk() -> list[dict[str, Any]]:
    """Malformed objects the fake API can serve: named (DNS names, as Kubernetes requires), one
    name per kind, a few of every kind. The same every run (derandomized)."""
    pool: list[dict[str, Any]] = []

    @settings(PROFILE, max_examples=60)
    @given(st.lists(malformed(), min_size=5, max_size=10))
    def collect(batch: list[dict[str, Any]]) -> None:
        pool.extend(batch)

    collect()
    taken = {(o["kind"], o["metadata"]["name"]) for o in BASE}
    per_kind: dict[str, int] = {}
    junk = []
    for o in pool:
        kind, name = o["kind"], name_of(o)
        if not DNS_NAME.match(name) or (kind, name) in taken:
            continue
        if per_kind.get(kind, 0) >= JUNK_PER_KIND:
            continue
        taken.add((kind, name))
        per_kind[kind] = per_kind.get(kind, 0) + 1
        junk.append(copy.deepcopy(o))
    return junk


def serve(fabric: Fabric, objects: list[dict[str, Any]]) -> None:
    for o in objects:
        fabric.kube.add(copy.deepcopy(o))


def sync_json(fabric: Fabric, *args: str) -> tuple[int, dict[str, Any]]:
    result = fabric.cli("sync", "dc1", "--force", "--json", *args)
    [report] = json.loads(result.stdout)["fabrics"]
    return result.exit_code, report


def test_junk_beside_a_valid_fabric_is_skipped_and_netbox_holds_exactly_the_valid_part(
    fabric: Fabric, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = draw_junk()
    kinds = {o["kind"] for o in junk}
    assert len(junk) >= 30 and len(kinds) >= 11, (len(junk), sorted(kinds))
    with capsys.disabled():
        print(f"\n[junk] {len(junk)} malformed objects of {len(kinds)} kinds beside the fabric")
    unowned.seed(fabric.api())
    before = unowned.snapshot(fabric.netbox)
    serve(fabric, BASE + junk)
    want = build(BASE)  # what the valid part alone maps to
    code, report = sync_json(fabric)
    assert (code, report["error"], report["failures"]) == (0, None, [])
    assert report["counts"] == {
        "created": len(want.items) - 1,  # the site is created before the plan
        "updated": 0,
        "deleted": 0,
        "unchanged": 1,
        "skipped": len(junk),
        "conflicts": 0,
        "mismatches": 0,
        "retired": 0,
    }
    reported = sorted(s.split(": ", 1)[0] for s in report["skipped"])
    assert reported == sorted(f"{o['kind']} {name_of(o)}" for o in junk)
    assert contents.read(fabric.api()) == contents.expected(BASE)
    assert ipam.read(fabric.api()) == ipam.expected(BASE)
    assert unowned.changes(before, unowned.snapshot(fabric.netbox)) == {}
    code, again = sync_json(fabric)
    assert code == 0
    assert again["counts"]["created"] + again["counts"]["updated"] + again["counts"]["deleted"] == 0
    assert again["counts"]["skipped"] == len(junk)


# -- hand edits ------------------------------------------------------------------------------------

W = "wiring.githedgehog.com/v1beta1"
SMALL = [
    {
        "apiVersion": W,
        "kind": "Switch",
        "metadata": {"name": name},
        "spec": {"role": role, "ip": ip, "description": name},
    }
    for name, role, ip in (
        ("spine-01", "spine", "172.30.0.10/21"),
        ("leaf-01", "server-leaf", "172.30.0.11/21"),
    )
] + [
    {"apiVersion": W, "kind": "Server", "metadata": {"name": "server-01"}, "spec": {}},
    {
        "apiVersion": W,
        "kind": "Connection",
        "metadata": {"name": "server-01--unbundled--leaf-01"},
        "spec": {
            "unbundled": {
                "link": {"server": {"port": "server-01/eth0"}, "switch": {"port": "leaf-01/E1/1"}}
            }
        },
    },
    {
        "apiVersion": W,
        "kind": "Connection",
        "metadata": {"name": "spine-01--fabric--leaf-01"},
        "spec": {
            "fabric": {
                "links": [
                    {
                        "spine": {"port": "spine-01/E1/1", "ip": "172.30.128.0/31"},
                        "leaf": {"port": "leaf-01/E1/49", "ip": "172.30.128.1/31"},
                    }
                ]
            }
        },
    },
]


TOTAL = len(build(SMALL).items)  # desired items of SMALL, the site included


def small(fabric: Fabric) -> dict[str, Any]:
    serve(fabric, SMALL)
    code, report = sync_json(fabric)
    assert (code, report["error"], report["counts"]["skipped"]) == (0, None, 0)
    return report


def ids(fabric: Fabric) -> dict[str, Any]:
    """NetBox ids of the fabric's devices, interfaces and cables (to see what was recreated)."""
    api = fabric.api()
    out: dict[str, Any] = {}
    for d in api.dcim.devices.filter(cf_hhsync_fabric="dc1"):
        out[d.name] = d.id
    for i in api.dcim.interfaces.filter(cf_hhsync_fabric="dc1"):
        out[f"{i.device.name}:{i.name}"] = i.id
    for c in api.dcim.cables.filter(cf_hhsync_fabric="dc1"):
        out[f"cable {c.label}"] = c.id
    return out


def test_owned_objects_edited_by_hand_are_repaired_in_place(fabric: Fabric) -> None:
    """leaf-01 moved to another site and the server's cable re-terminated onto a hand-made
    interface, in one go: hhsync moves the device back (same id) and replaces its cable."""
    small(fabric)
    api = fabric.api()
    elsewhere = unowned.seed(fabric.api())
    known = ids(fabric)
    other = api.dcim.sites.create(name="Other", slug="other")
    leaf = api.dcim.devices.get(known["leaf-01"])
    leaf.site = other.id
    leaf.save()
    spare = api.dcim.interfaces.create(device=leaf.id, name="E1/2", type="other")
    cable = api.dcim.cables.get(known["cable server-01--unbundled--leaf-01"])
    cable.b_terminations = [{"object_type": "dcim.interface", "object_id": spare.id}]
    cable.save()
    ends = {t.object_id for t in api.dcim.cables.get(cable.id).b_terminations}
    assert ends == {spare.id}  # NetBox really moved the end
    before = unowned.snapshot(fabric.netbox)

    code, report = sync_json(fabric)
    assert (code, report["error"], report["conflicts"]) == (0, None, [])
    assert report["summary"].startswith(
        f"dc1: created 1, updated 1, deleted 1, unchanged {TOTAL - 2}, skipped 0, conflicts 0 in "
    )
    assert api.dcim.devices.get(known["leaf-01"]).site.slug == "dc1"
    want = contents.expected(SMALL)
    want.interfaces["leaf-01"].add("E1/2")  # the hand-made interface stays, without a cable
    assert contents.read(api) == want
    after = ids(fabric)
    cable_key = "cable server-01--unbundled--leaf-01"
    assert after.pop(cable_key) != known.pop(cable_key)  # the cable was replaced ...
    assert after == known  # ... and nothing else was recreated
    spare = api.dcim.interfaces.get(spare.id)
    assert (spare.name, spare.cable, [t.slug for t in spare.tags]) == ("E1/2", None, [])
    assert api.dcim.devices.get(elsewhere["box"]).site.slug == "elsewhere"
    # The hand-made interface lost the cable it had been given (hhsync's own, now deleted):
    # the only change to an unowned object, and only to its cabling fields.
    changed = unowned.changes(before, unowned.snapshot(fabric.netbox))
    assert list(changed) == ["changed"]
    [line] = changed["changed"]
    where, fields = line.split(": ", 1)
    assert where == f"dcim/interfaces #{spare.id} E1/2"
    assert set(fields.split(", ")) <= {
        "cable",
        "cable_end",
        "link_peers",
        "link_peers_type",
        "connected_endpoints",
        "connected_endpoints_reachable",
        "connected_endpoints_type",
        "last_updated",
    }, fields
    code, report = sync_json(fabric)
    assert report["summary"].startswith(
        f"dc1: created 0, updated 0, deleted 0, unchanged {TOTAL}, skipped 0, conflicts 0 in "
    )


def test_owned_devices_that_lost_their_tag_or_fabric_are_conflicts(fabric: Fabric) -> None:
    """leaf-01 loses the `hhsync` tag (and gets a hand-edited description), spine-01's
    `hhsync_fabric` becomes dc2: both are conflicts, left exactly as edited, with their
    interfaces. `adopt = true` takes leaf-01 back (and repairs it), never spine-01."""
    small(fabric)
    api = fabric.api()
    known = ids(fabric)
    leaf = api.dcim.devices.get(known["leaf-01"])
    leaf.tags = []
    leaf.description = "edited by hand"
    leaf.save()
    spine = api.dcim.devices.get(known["spine-01"])
    spine.custom_fields["hhsync_fabric"] = "dc2"
    spine.save()
    before = unowned.snapshot(fabric.netbox)
    assert ("dcim/devices", known["leaf-01"]) in before  # without the tag it is unowned
    assert ("dcim/devices", known["spine-01"]) not in before  # another fabric's

    code, report = sync_json(fabric)
    assert (code, report["error"]) == (0, None)
    assert report["conflicts"] == [
        f"device leaf-01 (NetBox id {known['leaf-01']}): exists in NetBox, not owned by hhsync "
        "(adopt = true takes it over)",
        f"device spine-01 (NetBox id {known['spine-01']}): owned by hhsync fabric dc2",
    ]
    assert report["summary"].startswith(
        f"dc1: created 0, updated 0, deleted 0, unchanged {TOTAL - 2}, skipped 0, conflicts 2 in "
    )
    # Nothing deleted or recreated: the devices' interfaces, IPs and cables stay as they were.
    assert ids(fabric) == {k: v for k, v in known.items() if k != "spine-01"}  # by custom field
    assert contents.read(api) == contents.expected(SMALL)
    assert unowned.changes(before, unowned.snapshot(fabric.netbox)) == {}
    assert api.dcim.devices.get(known["leaf-01"]).description == "edited by hand"

    fabric.write_config(fabric="adopt = true\n")
    code, report = sync_json(fabric)
    assert (code, report["error"]) == (0, None)
    assert report["conflicts"] == [
        f"device spine-01 (NetBox id {known['spine-01']}): owned by hhsync fabric dc2"
    ]
    assert report["summary"].startswith(
        f"dc1: created 0, updated 1, deleted 0, unchanged {TOTAL - 2}, skipped 0, conflicts 1 in "
    )
    leaf = api.dcim.devices.get(known["leaf-01"])
    assert ([t.slug for t in leaf.tags], leaf.custom_fields["hhsync_fabric"]) == (
        ["hhsync"],
        "dc1",
    )
    assert leaf.description == "leaf-01"  # repaired once owned again
    spine = api.dcim.devices.get(known["spine-01"])
    assert (spine.custom_fields["hhsync_fabric"], [t.slug for t in spine.tags]) == (
        "dc2",
        ["hhsync"],
    )
    assert ids(fabric) == {k: v for k, v in known.items() if k != "spine-01"}
