"""make_plan: a pure function from (desired, current) to an ordered plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hhsync.desired import Desired, Root
from hhsync.model import Item, Ref
from hhsync.plan import Record, make_plan
from hhsync.report import plan_rows

SITE = Ref("site", ("dc1",))
ROLE = Ref("device_role", ("spine",))
LEAF = Ref("device", ("leaf-01",))


def device(name: str, description: str = "") -> Item:
    return Item("device", {"name": name, "site": SITE, "role": ROLE, "description": description})


def interface(dev: str, name: str, **attrs: object) -> Item:
    return Item(
        "interface",
        {
            "device": Ref("device", (dev,)),
            "name": name,
            "type": "other",
            "description": "",
            **attrs,
        },
    )


def ip(address: str, on: Item | None) -> Item:
    return Item(
        "ip_address", {"vrf": None, "address": address, "assigned_object": on.ref if on else None}
    )


def desired(*items: Item, **kwargs: object) -> Desired:
    return Desired({i.ref: i for i in items}, **kwargs)  # type: ignore[arg-type]


def owned(*items: Item, start: int = 1) -> dict[Ref, Record]:
    return {item.ref: Record(start + n, item, True) for n, item in enumerate(items)}


def test_creates_parents_first_and_deletes_children_first() -> None:
    old_if = interface("leaf-02", "E1/9")
    current = owned(device("leaf-02"), old_if)
    plan = make_plan(
        desired(interface("leaf-01", "E1/1"), device("leaf-01")), current, max_delete_fraction=1
    )
    assert [(c.action, str(c.ref)) for c in plan.changes] == [
        ("delete", "leaf-02 E1/9"),
        ("delete", "leaf-02"),
        ("create", "leaf-01"),
        ("create", "leaf-01 E1/1"),
    ]
    assert plan.summary() == {
        "created": 2,
        "updated": 0,
        "retired": 0,
        "deleted": 2,
        "unchanged": 0,
        "conflicts": 0,
    }


def test_update_sends_only_changed_fields_and_unchanged_counts() -> None:
    current = owned(device("leaf-01", "old"), interface("leaf-01", "E1/1"))
    plan = make_plan(desired(device("leaf-01", "new"), interface("leaf-01", "E1/1")), current)
    [change] = plan.changes
    assert (change.action, change.id, dict(change.attrs), dict(change.old)) == (
        "update",
        1,
        {"description": "new"},
        {"description": "old"},
    )
    assert plan.unchanged == 1
    assert plan_rows(plan) == [("update", "device", "leaf-01", "description: old -> new")]


def test_identical_state_is_an_empty_plan() -> None:
    items = (device("leaf-01"), interface("leaf-01", "E1/1"))
    plan = make_plan(desired(*items), owned(*items))
    assert plan.changes == () and plan.unchanged == 2


def test_fields_left_out_of_desired_are_not_compared() -> None:
    current = owned(Item("device", {**device("leaf-01").attrs, "status": "offline"}))
    plan = make_plan(desired(device("leaf-01")), current)
    assert plan.changes == ()


def test_shared_objects_are_never_updated() -> None:
    site = Item("site", {"slug": "dc1", "name": "dc1", "status": "active"})
    theirs = Item("site", {"slug": "dc1", "name": "Data centre 1", "status": "planned"})
    plan = make_plan(desired(site), {site.ref: Record(7, theirs, owned=False)})
    assert plan.changes == () and plan.conflicts == () and plan.unchanged == 1


def test_unowned_object_is_a_conflict_and_its_children_wait() -> None:
    current = {LEAF: Record(9, device("leaf-01", "hand-made"), owned=False)}
    plan = make_plan(desired(device("leaf-01"), interface("leaf-01", "E1/1")), current)
    assert plan.changes == ()
    assert [str(c) for c in plan.conflicts] == [
        "device leaf-01 (NetBox id 9): exists in NetBox, not owned by hhsync "
        "(adopt = true takes it over)"
    ]
    assert plan.dependents == 1


def test_adopt_takes_over_and_keeps_tags() -> None:
    current = {LEAF: Record(9, device("leaf-01", "hand-made"), owned=False, tags=(4, 5))}
    plan = make_plan(desired(device("leaf-01")), current, adopt=True)
    [change] = plan.changes
    assert (change.action, change.id, change.tags, dict(change.attrs)) == (
        "adopt",
        9,
        (4, 5),
        {"description": ""},
    )


def test_adopt_never_steals_from_another_fabric() -> None:
    current = {LEAF: Record(9, device("leaf-01"), owned=False, owner="dc2")}
    plan = make_plan(desired(device("leaf-01")), current, adopt=True)
    assert plan.changes == ()
    assert [c.reason for c in plan.conflicts] == ["owned by hhsync fabric dc2"]


def test_deletes_wait_for_complete_listings() -> None:
    current = owned(device("leaf-01"), interface("leaf-01", "E1/1"))
    plan = make_plan(desired(device("leaf-01"), kept_types=frozenset({"interface"})), current)
    assert plan.changes == () and plan.kept == 1


def test_an_unlisted_optional_kind_keeps_what_it_built_however_indirectly() -> None:
    # The Gateway kind is not served this run: its device, the device's port, the IP on that
    # port and the cable to it all stay, while what other kinds built is still pruned.
    gateway = Item("device", {**device("gw-1").attrs, "role": Ref("device_role", ("gateway",))})
    gw_port, leaf_port = interface("gw-1", "enp2s1"), interface("leaf-01", "E1/9")
    cable = Item(
        "cable", {"a_end": gw_port.ref, "b_end": leaf_port.ref, "label": "c", "description": ""}
    )
    stale = interface("leaf-01", "E1/10")
    current = owned(
        device("leaf-01"), gateway, gw_port, leaf_port, ip("10.0.0.1/31", gw_port), cable, stale
    )
    roots = (Root("device", "role", Ref("device_role", ("gateway",))),)
    plan = make_plan(desired(device("leaf-01"), leaf_port, kept_roots=roots), current)
    assert [(c.action, str(c.ref)) for c in plan.changes] == [("delete", "leaf-01 E1/10")]
    assert plan.kept == 4


def test_mass_delete_is_refused_unless_allowed() -> None:
    current = owned(device("a"), device("b"), device("c"))
    plan = make_plan(desired(device("a")), current)
    assert plan.refused == (
        "the plan deletes 2 of 3 owned objects (67%), more than max_delete_fraction = 0.5; "
        "check the fabric's API, then run with --allow-mass-delete if this is intended"
    )
    assert make_plan(desired(device("a")), current, allow_mass_delete=True).refused is None
    assert make_plan(desired(device("a")), current, max_delete_fraction=0.7).refused is None


def test_ip_on_a_deleted_interface_is_recreated_not_updated() -> None:
    # NetBox deletes the IPs of an interface it deletes; an update of such an IP would be lost.
    old_if, new_if = interface("leaf-01", "E1/1"), interface("leaf-01", "E1/2")
    current = owned(device("leaf-01"), old_if, ip("10.0.0.0/31", old_if))
    plan = make_plan(desired(device("leaf-01"), new_if, ip("10.0.0.0/31", new_if)), current)
    assert [(c.action, str(c.ref)) for c in plan.changes] == [
        ("delete", "10.0.0.0/31"),
        ("delete", "leaf-01 E1/1"),
        ("create", "leaf-01 E1/2"),
        ("create", "10.0.0.0/31"),
    ]


def test_retire_restore_retire_delete_with_an_injected_clock() -> None:
    """An owned interface leaves the fabric: retired (disabled, marked), restored with the same
    id when it comes back, retired again, and deleted once retire_after has passed."""
    day = 24 * 3600
    t0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    port = interface("leaf-01", "E1/1", enabled=True)
    rules = {"retire_after": day}
    plan = make_plan(desired(device("leaf-01")), owned(device("leaf-01"), port), now=t0, **rules)
    [retire] = plan.changes
    assert (retire.action, str(retire.ref), retire.id) == ("retire", "leaf-01 E1/1", 2)
    assert retire.attrs == {"enabled": False, "hhsync_retired": "2026-11-30T08:00:00Z"}
    assert (plan.summary()["retired"], plan.retirements) == (1, ((t0 + timedelta(1), 1),))
    retired = Item("interface", {**port.attrs, **retire.attrs})

    back = make_plan(
        desired(device("leaf-01"), port), owned(device("leaf-01"), retired), now=t0, **rules
    )
    [restore] = back.changes
    assert (restore.action, restore.id) == ("update", 2)
    assert restore.attrs == {"enabled": True, "hhsync_retired": None}

    later = t0 + timedelta(hours=23)
    still = make_plan(
        desired(device("leaf-01")), owned(device("leaf-01"), retired), now=later, **rules
    )
    assert still.changes == () and still.retirements == ((t0 + timedelta(1), 1),)

    gone = make_plan(
        desired(device("leaf-01")),
        owned(device("leaf-01"), retired),
        now=t0 + timedelta(1),
        **rules,
    )
    assert [(c.action, str(c.ref)) for c in gone.changes] == [("delete", "leaf-01 E1/1")]


def test_retirements_count_against_the_mass_delete_guard() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    current = owned(device("a"), device("b"), device("c"))
    plan = make_plan(desired(device("a")), current, retire_after=60, now=now)
    assert [c.action for c in plan.changes] == ["retire", "retire"]
    assert plan.refused is not None and plan.refused.startswith("the plan deletes 2 of 3")
