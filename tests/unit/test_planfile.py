"""Plan files: what `--plan-out` writes reads back as the same plan; anything else is refused
with the file and the place named (exit 2), and nothing is applied."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hhsync import __version__
from hhsync.errors import ConfigError
from hhsync.plan import Change, Plan, Record, make_plan
from hhsync.planfile import load, moved, still_valid, to_json
from tests.unit.test_plan import desired, device, interface, ip, owned

NOW = datetime(2026, 11, 30, 8, tzinfo=UTC)


def sample_plan() -> Plan:
    port = interface("leaf-01", "E1/1", tagged_vlans=())
    current = owned(device("leaf-01", "old"), interface("leaf-01", "E1/2"), device("gone"))
    current[port.ref] = Record(9, port, owned=False)
    return make_plan(
        desired(device("leaf-01", "new"), port, ip("10.0.0.1/31", port)),
        current,
        adopt=True,
        max_delete_fraction=1,
        retire_after=3600,
        now=NOW,
    )


def saved(plan: Plan, tmp_path: Path) -> Path:
    doc = to_json(plan, fabric="dc1", netbox="https://nb", fingerprint="f" * 32, marker=41,
                  skipped=["Switch x: spec.role: missing"])  # fmt: skip
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_plan_file_reads_back_as_the_same_plan(tmp_path: Path) -> None:
    plan = sample_plan()
    assert sorted(c.action for c in plan.changes) == [
        "adopt", "create", "retire", "retire", "update",
    ]  # fmt: skip
    back = load(saved(plan, tmp_path))
    assert back.changes == plan.changes
    assert (back.fabric, back.netbox, back.fingerprint, back.marker, back.hhsync) == (
        "dc1", "https://nb", "f" * 32, 41, __version__,
    )  # fmt: skip
    doc = json.loads(saved(plan, tmp_path).read_text())
    [create] = [c for c in doc["changes"] if c["action"] == "create"]
    assert create == {
        "action": "create",
        "type": "ip_address",
        "key": [None, "10.0.0.1/31"],
        "id": None,
        "fields": {
            "vrf": None,
            "address": "10.0.0.1/31",
            "assigned_object": {
                "ref": "interface",
                "key": [{"ref": "device", "key": ["leaf-01"]}, "E1/1"],
            },
        },
        "old": {},
        "tags": [],
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a plan file: invalid or truncated JSON"),
        ('{"format": "hhsync-plan", "version": 1, "changes": [',
         "not a plan file: invalid or truncated JSON"),
        ('{"kind": "List", "items": []}', 'not an hhsync plan file (no "format": "hhsync-plan")'),
        ('{"format": "hhsync-plan", "version": 2, "hhsync": "9.0"}',
         f"plan format 2 was written by a newer hhsync (9.0); this hhsync {__version__} reads "
         "format 1"),
        ('{"format": "hhsync-plan", "version": "1"}', "version: expected a whole number, got '1'"),
    ],
)  # fmt: skip
def test_corrupt_truncated_foreign_and_too_new_files_are_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(path)
    assert str(e.value).startswith(f"{path}: {problem}"), str(e.value)
    assert e.value.exit_code == 2


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda c: c.update(action="drop"),
         "changes[0].action: 'drop' is not one of create, update, adopt, retire, delete"),
        (lambda c: c.update(type="rack"), "changes[0].type: unknown NetBox type 'rack'"),
        (lambda c: c.update(key=["a", "b"]), "changes[0].key: expected 1 values"),
        (lambda c: c.update(id=None), "changes[0].id: a delete needs an id"),
        (lambda c: c["fields"].update(rack=1),
         "changes[0].fields: not fields of a device: ['rack']"),
        (lambda c: c["fields"].update(site={"ref": "x", "key": []}),
         "changes[0].fields.site: not a reference"),
    ],
)  # fmt: skip
def test_changes_that_hhsync_would_not_write_are_refused(
    tmp_path: Path, edit: object, problem: str
) -> None:
    doc = json.loads(saved(sample_plan(), tmp_path).read_text())
    doc["changes"] = [c for c in doc["changes"] if c["type"] == "device"]
    assert [c["action"] for c in doc["changes"]] == ["retire", "update"]
    doc["changes"][0]["action"] = "delete"
    edit(doc["changes"][0])  # type: ignore[operator]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as e:
        load(path)
    assert str(e.value).startswith(f"{path}: {problem}"), str(e.value)


def test_what_moved_is_named_and_only_identical_changes_are_still_valid() -> None:
    a = Change("update", device("a").ref, {"description": "x"}, {"description": ""}, 1)
    b = Change("create", device("b").ref, {"name": "b"})
    c = Change("delete", device("c").ref, id=3)
    a2 = Change("update", device("a").ref, {"description": "y"}, {"description": ""}, 1)
    d = Change("create", device("d").ref, {"name": "d"})
    assert still_valid((a, b, c), (a2, b, d)) == [b]
    assert moved((a, b, c), (a2, b, d)) == [
        "delete device c: planned, no longer needed",
        "create device d: needed now, not in the plan",
        "update device a: planned with other values",
    ]
