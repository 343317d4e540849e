"""What NetBox holds now: every object hhsync owns for a fabric, and the unowned objects whose
natural keys collide with desired ones (conflicts), read up front with only the fields the diff
needs. NetBox ids become `Ref`s here, so the plan never sees an id.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hhsync.deadline import Deadline
from hhsync.desired import Desired
from hhsync.model import FABRIC_FIELD, ORDER, TAG, TYPES, Field, Item, ObjectType, Ref
from hhsync.netbox.client import NetBox
from hhsync.plan import Record

TERMINATIONS = {"a_end": "a_terminations", "b_end": "b_terminations"}
READERS = 4  # parallel reads: NetBox's gunicorn serves several at once
LOOKUP_BATCH = 100  # values per filter in one GET: keeps URLs well under 8 KB

Raw = dict[str, Any]


def netbox_fields(spec: ObjectType) -> str:
    """The `fields=` projection: what the diff, the key and ownership need, nothing more."""
    names = ["id", "tags", "custom_fields"]
    for f in spec.fields:
        if f.generic:
            names += [f"{f.name}_type", f"{f.name}_id"]
        elif f.name in TERMINATIONS:
            names.append(TERMINATIONS[f.name])
        elif not f.custom:
            names.append(f.name)
    if spec.endpoint == "dcim/interfaces/":
        names.append("cable")
    return ",".join(dict.fromkeys(names))


@dataclass
class Index:
    """NetBox ids <-> Refs, filled in dependency order so keys can refer to parents."""

    refs: dict[tuple[str, int], Ref] = field(default_factory=dict)  # (content type, id) -> Ref

    def ref(self, type_name: str, content_type: str | None, ident: Any) -> Ref | None:
        if ident is None:
            return None
        found = self.refs.get((content_type or TYPES[type_name].content_type, int(ident)))
        return found or Ref(type_name, (f"#{ident}",))  # not ours: never equal to a desired Ref


@dataclass
class Reader:
    netbox: NetBox
    fabric: str
    deadline: Deadline
    index: Index = field(default_factory=Index)
    records: dict[Ref, Record] = field(default_factory=dict)
    raws: dict[Ref, Raw] = field(default_factory=dict)

    def get(self, spec: ObjectType, params: dict[str, Any]) -> list[Raw]:
        query = {**spec.filters, **params, "fields": netbox_fields(spec)}
        return self.netbox.get_all(spec.endpoint, self.deadline, query)

    def lookup(
        self, spec: ObjectType, params: dict[str, Any], name: str, values: Iterable[Any]
    ) -> Iterator[Raw]:
        """GET by natural-key values, LOOKUP_BATCH at a time."""
        unique = sorted(set(values), key=str)
        for start in range(0, len(unique), LOOKUP_BATCH):
            yield from self.get(spec, {**params, name: unique[start : start + LOOKUP_BATCH]})

    def keep(self, spec: ObjectType, raws: Iterable[Raw], wanted: set[Ref] | None = None) -> None:
        """Index records; unowned ones only when their key is wanted (a possible conflict)."""
        for raw in raws:
            ref = Ref(spec.name, tuple(self.value(spec.field(k), raw) for k in spec.key))
            owner = _owner(raw)
            owned = owner == self.fabric
            if not owned and wanted is not None and ref not in wanted:
                continue
            if ref in self.records and self.records[ref].owned and not owned:
                continue
            self.index.refs[(spec.content_type, int(raw["id"]))] = ref
            self.raws[ref] = raw
            tags = tuple(int(t["id"]) for t in raw.get("tags") or ())
            self.records[ref] = Record(int(raw["id"]), Item(spec.name, {}), owned, tags, owner)

    def finish(self) -> dict[Ref, Record]:
        """Normalise every record's attributes now that every id can be resolved."""
        out = {}
        for ref, record in self.records.items():
            spec = TYPES[ref.type]
            attrs = {f.name: self.value(f, self.raws[ref]) for f in spec.fields}
            item = Item(spec.name, attrs)
            out[ref] = Record(
                record.id, item, record.owned, record.tags, record.owner, record.reason
            )
        return out

    def value(self, f: Field, raw: Raw) -> Any:
        if f.custom:
            return (raw.get("custom_fields") or {}).get(f.name)
        if f.generic:
            return self.index.ref(f.ref or "", raw.get(f"{f.name}_type"), raw.get(f"{f.name}_id"))
        if f.name in TERMINATIONS:
            ends = raw.get(TERMINATIONS[f.name]) or []
            if len(ends) != 1:  # not a single interface: never equal to what hhsync wants
                return Ref("interface", (f"#{raw['id']}-{f.name}",))
            return self.index.ref("interface", ends[0].get("object_type"), ends[0].get("object_id"))
        value = raw.get(f.name)
        if f.many:
            return tuple(sorted(ref for v in value or () if (ref := self._nested(f, v))))
        if f.ref:
            return self._nested(f, value) if value else None
        if f.choice:
            return value.get("value") if isinstance(value, dict) else value
        return normalise(f.name, value)

    def _nested(self, f: Field, value: Any) -> Ref | None:
        spec = TYPES[f.ref or ""]
        ident = int(value["id"] if isinstance(value, dict) else value)
        known = self.index.refs.get((spec.content_type, ident))
        slug = value.get("slug") if isinstance(value, dict) else None
        if known is None and spec.shared and isinstance(slug, str):
            return Ref(spec.name, (slug,))  # shared objects are keyed by the slug NetBox nests
        return known or self.index.ref(spec.name, None, ident)


def normalise(name: str, value: Any) -> Any:
    """NetBox's representation of a value in the form desired state uses."""
    if value is None:
        return None
    if name in {"address", "start_address", "end_address"}:
        return str(ipaddress.ip_interface(value))
    if name == "prefix":
        return str(ipaddress.ip_network(value, strict=False))
    if name == "vid_ranges":
        return tuple(tuple(pair) for pair in value)
    if name == "color":
        return str(value).lower()
    return value


def _owner(raw: Raw) -> str | None:
    """The hhsync fabric owning an object: it needs both the tag and the custom field."""
    if not any(t.get("slug") == TAG for t in raw.get("tags") or ()):
        return None
    owner = (raw.get("custom_fields") or {}).get(FABRIC_FIELD)
    return owner if isinstance(owner, str) and owner else None


def read_current(
    netbox: NetBox, fabric: str, desired: Desired, deadline: Deadline, tag_exists: bool
) -> dict[Ref, Record]:
    """Owned objects of `fabric`, shared objects desired, and unowned objects in the way."""
    reader = Reader(netbox, fabric, deadline)
    wanted = set(desired.items)
    by_type: dict[str, list[Ref]] = {name: [] for name in ORDER}
    for ref in wanted:
        by_type[ref.type].append(ref)
    deadline.enter("reading NetBox (owned objects)")
    owned_types = [TYPES[n] for n in ORDER if not TYPES[n].shared] if tag_exists else []
    owned = {"tag": TAG, f"cf_{FABRIC_FIELD}": fabric}
    # The owned objects of each type are independent reads: fetch them side by side.
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        fetched = pool.map(lambda t: reader.get(t, owned), owned_types)
        pages = {t.name: page for t, page in zip(owned_types, fetched, strict=True)}
    for name in ORDER:
        spec = TYPES[name]
        deadline.enter(f"reading NetBox ({spec.label}s)")
        if name in pages:
            reader.keep(spec, pages[name])
        missing = [ref for ref in by_type[name] if ref not in reader.records]
        if missing:
            reader.keep(spec, _lookups(reader, spec, missing), None if name == "cable" else wanted)
        if name == "cable":
            _blocked_cables(reader, missing)
    return reader.finish()


def _lookups(reader: Reader, spec: ObjectType, refs: list[Ref]) -> Iterator[Raw]:
    """Unowned objects that may carry these natural keys, found by key filters."""
    ids = reader.index.refs
    known = {ref: ident for (_, ident), ref in ids.items()}
    if spec.name in {
        "site",
        "manufacturer",
        "device_type",
        "platform",
        "device_role",
        "vlan_group",
    }:
        yield from reader.lookup(spec, {}, "slug", (r.key[0] for r in refs))
    elif spec.name in {"vrf", "route_target"}:
        yield from reader.lookup(spec, {}, "name", (r.key[0] for r in refs))
    elif spec.name == "device":
        site = next((known[r] for r in known if r.type == "site"), None)
        if site is not None:
            yield from reader.lookup(spec, {"site_id": site}, "name", (r.key[0] for r in refs))
    elif spec.name in {"lag", "interface"}:
        devices = [known[r.key[0]] for r in refs if r.key[0] in known]
        yield from reader.lookup(spec, {}, "device_id", devices)
    elif spec.name == "vlan":
        groups = [known[r.key[0]] for r in refs if r.key[0] in known]
        yield from reader.lookup(spec, {}, "group_id", groups)
    elif spec.name in {"prefix", "ip_address", "ip_range"}:
        column = {"prefix": "prefix", "ip_address": "address", "ip_range": "start_address"}
        for vrf, group in _by_parent(refs).items():
            if vrf is None or vrf in known:
                params = {"vrf_id": known[vrf] if vrf else "null"}
                yield from reader.lookup(spec, params, column[spec.name], (r.key[1] for r in group))
    elif spec.name == "cable":
        yield from _occupying_cables(reader, refs)


def _by_parent(refs: list[Ref]) -> dict[Any, list[Ref]]:
    groups: dict[Any, list[Ref]] = {}
    for ref in refs:
        groups.setdefault(ref.key[0], []).append(ref)
    return groups


def _occupying_cables(reader: Reader, refs: list[Ref]) -> Iterator[Raw]:
    """Cables already on the ports a missing desired cable needs (found via the interfaces)."""
    owned = {rec.id for ref, rec in reader.records.items() if ref.type == "cable" and rec.owned}
    cables = {
        ident
        for ref in refs
        for end in ref.key
        if (ident := _cable_id(reader.raws.get(end))) is not None and ident not in owned
    }
    yield from reader.lookup(TYPES["cable"], {}, "id", cables)


def _cable_id(raw: Raw | None) -> int | None:
    cable = raw.get("cable") if raw else None
    return int(cable["id"]) if isinstance(cable, dict) else None


def _blocked_cables(reader: Reader, refs: list[Ref]) -> None:
    """A desired cable whose port holds a cable hhsync does not own is a conflict, even with
    adopt: that cable ends elsewhere, and NetBox cannot move a cable's ends."""
    by_id = {rec.id: (ref, rec) for ref, rec in reader.records.items() if ref.type == "cable"}
    for ref in refs:
        for end in ref.key:
            found = by_id.get(_cable_id(reader.raws.get(end)) or -1)
            if ref not in reader.records and found and not found[1].owned:
                other, rec = found
                reason = f"port {end} already has cable {other} (not owned by hhsync)"
                reader.records[ref] = Record(
                    rec.id, Item("cable", {}), False, rec.tags, rec.owner, reason
                )
                reader.raws[ref] = reader.raws[other]
