"""The plan: what to create, update and delete so NetBox matches the desired state. A pure value.

`make_plan(desired, current, ...)` compares items by natural key and only the fields each type
declares; `--dry-run` renders exactly the plan that `apply` sends. Deletes come first, children
before parents (a cable frees its ports before a new cable takes them); creates and updates follow
in dependency order, parents first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from hhsync.desired import Desired
from hhsync.model import ORDER, RETIRED, TYPES, Item, Ref
from hhsync.syncstate import format_time, parse_time

Action = Literal["create", "update", "adopt", "retire", "delete"]


@dataclass(frozen=True)
class Record:
    """An object read from NetBox: its id, its state as an item, and whether hhsync owns it."""

    id: int
    item: Item
    owned: bool
    tags: tuple[int, ...] = ()
    owner: str | None = None  # the hhsync fabric owning it, if any
    reason: str | None = None  # why it blocks a desired object no matter what (a conflict)


@dataclass(frozen=True)
class Change:
    """One write of a plan: create, update, adopt (take over an unowned object) or delete `ref`.

    `attrs` are the values to send (every compared field for a create, the changed ones
    otherwise), `old` what they replace; `id` is the NetBox id of an existing object."""

    action: Action
    ref: Ref
    attrs: Mapping[str, Any] = field(default_factory=dict)  # create/adopt/update: new values
    old: Mapping[str, Any] = field(default_factory=dict)  # update/adopt: the values replaced
    id: int | None = None
    tags: tuple[int, ...] = ()  # adopt: the object's tags, kept


@dataclass(frozen=True)
class Conflict:
    ref: Ref
    id: int
    reason: str

    def __str__(self) -> str:
        return f"{TYPES[self.ref.type].label} {self.ref} (NetBox id {self.id}): {self.reason}"


@dataclass(frozen=True)
class Plan:
    """What to write so NetBox matches the desired state: `changes` in the order they must be
    sent, the `conflicts` left alone, and counts of what stays as it is. A value: `--dry-run`
    shows it, `netbox/apply.py` sends it."""

    changes: tuple[Change, ...]
    conflicts: tuple[Conflict, ...] = ()
    unchanged: int = 0
    kept: int = 0  # owned objects not deleted because their Hedgehog kinds were not listed
    owned_total: int = 0  # owned objects in NetBox before the plan
    refused: str | None = None  # why the plan must not be applied
    dependents: int = 0  # desired objects left out because they hang off a conflict
    # Owned objects retired after the plan (this one's and earlier ones): (when a batch is
    # deleted, how many), soonest first.
    retirements: tuple[tuple[datetime, int], ...] = ()

    @property
    def retired(self) -> int:
        return sum(n for _, n in self.retirements)

    def summary(self) -> dict[str, int]:
        counts = Counter(c.action for c in self.changes)
        return {
            "created": counts["create"],
            "updated": counts["update"] + counts["adopt"],
            "retired": counts["retire"],
            "deleted": counts["delete"],
            "unchanged": self.unchanged,
            "conflicts": len(self.conflicts),
        }


def make_plan(
    desired: Desired,
    current: Mapping[Ref, Record],
    *,
    adopt: bool = False,
    max_delete_fraction: float = 0.5,
    allow_mass_delete: bool = False,
    retire_after: int = 0,
    now: datetime | None = None,
) -> Plan:
    """Compare desired items with what NetBox holds; see the module doc for the order.

    With `retire_after` (seconds), an owned object whose source left the fabric is first
    retired (marked at `now`), and deleted by the first plan made `retire_after` later."""
    if retire_after and now is None:
        raise ValueError("retiring objects needs the time: pass now")
    deletes: list[Change] = []
    upserts: dict[str, list[Change]] = {name: [] for name in ORDER}
    conflicts: list[Conflict] = []
    unchanged = kept = 0
    doomed = {ref for ref, rec in current.items() if rec.owned and ref not in desired.items}
    undeletable = desired.kept({ref: rec.item for ref, rec in current.items() if rec.owned})
    due: list[datetime] = []  # when each retired object is deleted
    for ref in doomed - undeletable:
        gone = current[ref]
        retired = parse_time(gone.item.attrs.get(RETIRED))
        if not retire_after or (
            retired and now and (now - retired).total_seconds() >= retire_after
        ):
            deletes.append(Change("delete", ref, id=gone.id))
        elif retired:
            due.append(retired + timedelta(seconds=retire_after))
        else:
            assert now is not None
            upserts[ref.type].append(_retire(gone, now))
            due.append(now + timedelta(seconds=retire_after))
    kept = len(doomed & undeletable)
    deleted = {c.ref for c in deletes}
    for ref, item in desired.items.items():
        record = current.get(ref)
        spec = TYPES[ref.type]
        if record is None:
            upserts[ref.type].append(Change("create", ref, dict(item.attrs)))
        elif spec.shared:
            unchanged += 1
        elif record.owned:
            new, old = _diff(item, record.item)
            if _cascaded(item, record.item, deleted):
                deletes.append(Change("delete", ref, id=record.id))
                upserts[ref.type].append(Change("create", ref, dict(item.attrs)))
            elif new:
                upserts[ref.type].append(Change("update", ref, new, old, record.id))
            else:
                unchanged += 1
        elif adopt and record.owner is None and record.reason is None:
            new, old = _diff(item, record.item)
            upserts[ref.type].append(Change("adopt", ref, new, old, record.id, record.tags))
        else:
            reason = record.reason or (
                f"owned by hhsync fabric {record.owner}"
                if record.owner
                else "exists in NetBox, not owned by hhsync (adopt = true takes it over)"
            )
            conflicts.append(Conflict(ref, record.id, reason))
    dependents = _drop_dependents(upserts, {c.ref for c in conflicts})
    position = {name: i for i, name in enumerate(ORDER)}
    deletes.sort(key=lambda c: (-position[c.ref.type], c.ref.natural()))
    ordered = [*deletes, *(c for name in ORDER for c in sorted(upserts[name], key=_create_first))]
    owned_total = sum(1 for rec in current.values() if rec.owned)
    going = len(deletes) + sum(1 for c in ordered if c.action == "retire")
    refused = _refusal(going, owned_total, max_delete_fraction, allow_mass_delete)
    return Plan(
        tuple(ordered),
        tuple(conflicts),
        unchanged,
        kept,
        owned_total,
        refused,
        dependents,
        retirements=tuple(sorted(Counter(due).items())),
    )


def _retire(record: Record, now: datetime) -> Change:
    """Mark an owned object whose source left the fabric, to be deleted later."""
    spec = TYPES[record.item.type]
    attrs = {name: retired for name, (retired, _) in spec.retire.items()}
    attrs[RETIRED] = format_time(now)
    old = {name: record.item.attrs.get(name) for name in attrs}
    return Change("retire", record.item.ref, attrs, old, record.id)


def _drop_dependents(upserts: dict[str, list[Change]], in_the_way: set[Ref]) -> int:
    """Leave out writes that refer to a conflicting object (or to one left out): hhsync never
    hangs its objects off an object it does not own."""
    dropped = 0
    for name in ORDER:
        kept = []
        for change in upserts[name]:
            late = {f.name for f in TYPES[name].fields if f.late}
            if any(
                r in in_the_way for k, v in change.attrs.items() if k not in late for r in _refs(v)
            ):
                in_the_way.add(change.ref)
                dropped += 1
            else:
                kept.append(change)
        upserts[name] = kept
    return dropped


def _refs(value: Any) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, tuple):
        return [v for v in value if isinstance(v, Ref)]
    return []


def _create_first(change: Change) -> tuple[int, tuple[Any, ...]]:
    return (0 if change.action == "create" else 1, change.ref.natural())


def _diff(desired: Item, current: Item) -> tuple[dict[str, Any], dict[str, Any]]:
    """Changed compared fields: (new values, old values). Fields desired leaves out are ignored,
    except on a retired object: it is restored (the fields retiring set back, unless the fabric
    says what they are)."""
    spec = TYPES[desired.type]
    want = dict(desired.attrs)
    if current.attrs.get(RETIRED):
        restored = {name: live for name, (_, live) in spec.retire.items()}
        want = {**restored, **want, RETIRED: None}
    new: dict[str, Any] = {}
    old: dict[str, Any] = {}
    for f in spec.fields:
        if f.create_only or f.name not in want:
            continue
        have = current.attrs.get(f.name)
        if want[f.name] != have:
            new[f.name], old[f.name] = want[f.name], have
    if all(spec.field(name).soft for name in new):  # soft changes alone are not worth a write
        return {}, {}
    return new, old


def _cascaded(desired: Item, current: Item, deleted: set[Ref]) -> bool:
    """True when an update would be lost because NetBox deletes the object with its parent."""
    spec = TYPES[desired.type]
    return any(f.cascade and current.attrs.get(f.name) in deleted for f in spec.fields)


def _refusal(deletes: int, owned: int, fraction: float, allowed: bool) -> str | None:
    if allowed or not owned or deletes / owned <= fraction:
        return None
    return (
        f"the plan deletes {deletes} of {owned} owned objects ({deletes / owned:.0%}), more than "
        f"max_delete_fraction = {fraction}; check the fabric's API, then run with "
        "--allow-mass-delete if this is intended"
    )
