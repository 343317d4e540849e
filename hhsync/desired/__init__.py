"""Desired NetBox state, built purely from a fabric's Hedgehog objects.

`build_desired(inventory, fabric, now)` returns a `Desired` value: the items NetBox should hold,
the objects skipped as malformed (each with the object, field and reason), and what may not be
deleted this run: nothing built from a Hedgehog kind that was not listed completely, however
indirectly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hhsync import __version__
from hhsync.config import FabricConfig
from hhsync.kube.source import Inventory
from hhsync.model import OWNER_GROUP, TYPES, Item, Ref

# The Hedgehog kinds each NetBox type is built from: deletes of a type need all of them complete.
SOURCES: dict[str, tuple[str, ...]] = {
    "device": ("Switch", "Server"),
    "lag": ("Switch", "Server", "Connection"),
    "interface": ("Switch", "Server", "Connection"),
    "cable": ("Switch", "Server", "Connection"),
    "ip_address": ("Switch", "Server", "Connection", "VPC", "ExternalAttachment"),
    "vrf": ("VPC", "External"),
    "route_target": ("VPC", "External"),
    "prefix": ("VPC", "IPv4Namespace"),
    "ip_range": ("VPC",),
    "vlan_group": ("VLANNamespace",),
    "vlan": ("VLANNamespace", "VPC"),
}


@dataclass(frozen=True)
class Root:
    """Objects of `type` whose `field` is `value`: made from one Hedgehog kind."""

    type: str
    field: str
    value: Any


# What optional kinds build inside types that other kinds build too: an unlisted optional kind
# keeps these roots, and everything that refers to one of them.
ROOTS: dict[str, tuple[Root, ...]] = {
    "Gateway": (Root("device", "role", Ref("device_role", ("gateway",))),),
}


@dataclass(frozen=True)
class Skip:
    """A Hedgehog object (or part of one) that could not be mapped, and why."""

    kind: str
    name: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class Mismatch:
    """An expected link whose LLDP neighbour is missing or different."""

    switch: str
    port: str
    expected: str
    seen: str

    def __str__(self) -> str:
        return f"{self.switch} {self.port}: expected {self.expected}, LLDP sees {self.seen}"


@dataclass(frozen=True)
class Desired:
    """The NetBox state that mirrors a fabric: `items` by natural key, what was `skipped` as
    malformed, cabling `mismatches`, and what may not be deleted this run (`kept_types`: types
    built from a kind that was not listed; `kept_roots`: objects made by an unlisted optional
    kind, kept with everything that refers to them)."""

    items: Mapping[Ref, Item]
    skipped: tuple[Skip, ...] = ()
    mismatches: tuple[Mismatch, ...] = ()
    kept_types: frozenset[str] = frozenset()
    kept_roots: tuple[Root, ...] = ()

    def kept(self, current: Mapping[Ref, Item]) -> set[Ref]:
        """The objects of `current` that may not be deleted this run."""
        rooted = {
            ref
            for ref, item in current.items()
            if any(
                r.type == ref.type and item.attrs.get(r.field) == r.value for r in self.kept_roots
            )
        }
        while more := {  # whatever refers to a root, however indirectly (a cable on its port)
            ref
            for ref, item in current.items()
            if ref not in rooted and any(r in rooted for r in references(item))
        }:
            rooted |= more
        return rooted | {ref for ref in current if ref.type in self.kept_types}

    def fingerprint(self, settings: str = "") -> str:
        """A digest of everything the plan depends on from this side (soft fields excepted:
        they never cause a write) and the `settings` that shape the plan, so an unchanged
        fabric is recognised without reading NetBox."""
        digest = hashlib.sha256(f"hhsync {__version__} {settings}\n".encode())
        for ref in sorted(self.items, key=repr):
            spec = TYPES[ref.type]
            attrs = {k: v for k, v in self.items[ref].attrs.items() if not spec.field(k).soft}
            digest.update(f"{ref!r} {sorted(attrs.items())!r}\n".encode())
        digest.update(f"{sorted(self.kept_types)} {self.kept_roots!r}".encode())
        return digest.hexdigest()[:32]


def references(item: Item) -> list[Ref]:
    """The objects an item refers to."""
    out: list[Ref] = []
    for value in item.attrs.values():
        if isinstance(value, Ref):
            out.append(value)
        elif isinstance(value, tuple):
            out.extend(v for v in value if isinstance(v, Ref))
    return out


class Builder:
    """Collects items; a second item with the same key must agree, else it is skipped."""

    def __init__(self, fabric: FabricConfig, inventory: Inventory, now: datetime) -> None:
        self.fabric = fabric
        self.inventory = inventory
        self.now = now
        self.items: dict[Ref, Item] = {}
        self.skipped: list[Skip] = []
        self.mismatches: list[Mismatch] = []

    def skip(self, kind: str, name: str, field: str, reason: str) -> None:
        self.skipped.append(Skip(kind, name, field, reason))

    def has(self, ref: Ref) -> bool:
        return ref in self.items

    def get(self, ref: Ref) -> Item:
        return self.items[ref]

    def add(self, type_name: str, **attrs: Any) -> Ref:
        """Add (or confirm) an item; returns its Ref."""
        item = Item(type_name, attrs)
        assert set(attrs) <= {f.name for f in TYPES[type_name].fields}, attrs
        self.items.setdefault(item.ref, item)
        return item.ref

    def commit(self, batch: Batch) -> bool:
        """Add all of a batch's items or none: a malformed object never produces half objects."""
        for ref, item in batch.items.items():
            existing = self.items.get(ref)
            clash = next(  # one name space (a device's LAGs and interfaces)
                (
                    twin
                    for twin in TYPES[ref.type].siblings
                    if Ref(twin, ref.key) in self.items or Ref(twin, ref.key) in batch.items
                ),
                None,
            )
            if (existing is not None and existing.attrs != item.attrs) or clash:
                where = batch.field_of.get(ref, "spec")
                problem = f"{TYPES[ref.type].label} {ref} is already defined by another object"
                if clash:
                    kinds = f"{TYPES[clash].label} and {TYPES[ref.type].label}"
                    problem = f"{ref} would be both {kinds} (one name space in NetBox)"
                self.skip(batch.kind, batch.name, where, problem)
                return False
        for ref, item in batch.items.items():
            self.items.setdefault(ref, item)
        return True

    def update(self, ref: Ref, **attrs: Any) -> None:
        item = self.items[ref]
        self.items[ref] = Item(item.type, {**item.attrs, **attrs})

    def drop(self, ref: Ref, *fields: str) -> None:
        """Stop managing `fields` of an item: the plan then never compares or writes them."""
        item = self.items[ref]
        self.items[ref] = Item(item.type, {k: v for k, v in item.attrs.items() if k not in fields})

    def result(self, kept_types: Iterable[str], kept_roots: Iterable[Root]) -> Desired:
        """The desired state; every owned object has the fabric as its NetBox owner."""
        group = self.add("owner_group", name=OWNER_GROUP)
        owner = self.add("owner", name=f"{OWNER_GROUP}/{self.fabric.name}", group=group)
        items = {
            ref: item if TYPES[ref.type].shared else Item(item.type, {**item.attrs, "owner": owner})
            for ref, item in self.items.items()
        }
        return Desired(
            items,
            tuple(self.skipped),
            tuple(self.mismatches),
            frozenset(kept_types),
            tuple(kept_roots),
        )


@dataclass
class Batch:
    """The items one Hedgehog object contributes, committed together."""

    kind: str
    name: str
    items: dict[Ref, Item] = field(default_factory=dict)
    field_of: dict[Ref, str] = field(default_factory=dict)

    def add(self, type_name: str, field_name: str = "spec", **attrs: Any) -> Ref:
        item = Item(type_name, attrs)
        assert set(attrs) <= {f.name for f in TYPES[type_name].fields}, attrs
        self.items.setdefault(item.ref, item)
        self.field_of.setdefault(item.ref, field_name)
        return item.ref


def build_desired(inventory: Inventory, fabric: FabricConfig, now: datetime) -> Desired:
    """The NetBox state that mirrors `inventory` for `fabric`; `now` judges Agent heartbeats."""
    from hhsync.desired import health, vpc, wiring

    builder = Builder(fabric, inventory, now)
    wiring.build(builder)
    vpc.build(builder)
    health.build(builder)
    complete = set(inventory.served)
    kept_types = {t for t, kinds in SOURCES.items() if not set(kinds) <= complete}
    roots = [root for kind, roots in ROOTS.items() if kind not in complete for root in roots]
    return builder.result(kept_types, roots)
