"""What NetBox holds now: every object hhsync owns for a fabric, and the unowned objects whose
natural keys collide with desired ones (conflicts), read up front with only the fields the diff
needs. NetBox ids become `Ref`s here, so the plan never sees an id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hhsync.deadline import Deadline
from hhsync.desired import Desired
from hhsync.model import FABRIC_FIELD, ORDER, TAG, TYPES, Item, ObjectType, Raw, Ref
from hhsync.netbox.client import NetBox
from hhsync.plan import Record

READERS = 4  # parallel reads: NetBox's gunicorn serves several at once
LOOKUP_BATCH = 100  # values per filter in one GET: keeps URLs well under 8 KB


@dataclass
class Index:
    """NetBox ids <-> Refs, filled in dependency order so keys can refer to parents."""

    refs: dict[tuple[str, int], Ref] = field(default_factory=dict)  # (content type, id) -> Ref

    def ref(self, type_name: str, content_type: str | None, ident: Any) -> Ref | None:
        if ident is None:
            return None
        found = self.refs.get((content_type or TYPES[type_name].content_type, int(ident)))
        return found or Ref(type_name, (f"#{ident}",))  # not ours: never equal to a desired Ref

    def nested(self, type_name: str, value: Any) -> Ref | None:
        spec = TYPES[type_name]
        ident = int(value["id"] if isinstance(value, dict) else value)
        natural = value.get(spec.key[0]) if isinstance(value, dict) else None
        known = self.refs.get((spec.content_type, ident))
        if known is None and spec.shared and isinstance(natural, str):
            return Ref(spec.name, (natural,))  # shared objects: keyed by what NetBox nests
        return known or self.ref(type_name, None, ident)


@dataclass
class Reader:
    netbox: NetBox
    fabric: str
    deadline: Deadline
    index: Index = field(default_factory=Index)
    records: dict[Ref, Record] = field(default_factory=dict)
    raws: dict[Ref, Raw] = field(default_factory=dict)

    def get(self, spec: ObjectType, params: dict[str, Any]) -> list[Raw]:
        query = {**spec.filters, **params, "fields": spec.projection()}
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
            ref = Ref(spec.name, tuple(spec.field(k).read(raw, self.index) for k in spec.key))
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
            attrs = {f.name: f.read(self.raws[ref], self.index) for f in spec.fields}
            item = Item(spec.name, attrs)
            out[ref] = Record(
                record.id, item, record.owned, record.tags, record.owner, record.reason
            )
        return out


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
            reader.keep(spec, _lookups(reader, spec, missing), None if spec.ends else wanted)
        if spec.ends:
            _blocked_cables(reader, spec, missing)
    return reader.finish()


def _lookups(reader: Reader, spec: ObjectType, refs: list[Ref]) -> Iterator[Raw]:
    """Unowned objects that may carry these natural keys, found as the type's Lookup says."""
    lookup = spec.lookup
    if lookup is None:  # keyed by its ends: whatever already sits on them
        yield from _occupying_cables(reader, spec, refs)
        return
    known = {ref: ident for (_, ident), ref in reader.index.refs.items()}
    params: dict[str, Any] = {}
    if lookup.site:
        site = next((ident for ref, ident in known.items() if ref.type == "site"), None)
        if site is None:  # no site yet: nothing of it can be in the way
            return
        params[lookup.site] = site
    if lookup.within is None:
        yield from reader.lookup(spec, params, lookup.by, (r.key[-1] for r in refs))
    elif lookup.whole_parent:
        parents = [known[r.key[0]] for r in refs if r.key[0] in known]
        yield from reader.lookup(spec, params, lookup.within, parents)
    else:
        for parent, group in _by_parent(refs).items():
            if parent is None or parent in known:
                within = {**params, lookup.within: known[parent] if parent else "null"}
                yield from reader.lookup(spec, within, lookup.by, (r.key[-1] for r in group))


def _by_parent(refs: list[Ref]) -> dict[Any, list[Ref]]:
    groups: dict[Any, list[Ref]] = {}
    for ref in refs:
        groups.setdefault(ref.key[0], []).append(ref)
    return groups


def _occupying_cables(reader: Reader, spec: ObjectType, refs: list[Ref]) -> Iterator[Raw]:
    """Cables already on the ports a missing desired cable needs (found via the interfaces)."""
    owned = {rec.id for ref, rec in reader.records.items() if ref.type == spec.name and rec.owned}
    cables = {
        ident
        for ref in refs
        for end in ref.key
        if (ident := _cable_id(reader.raws.get(end))) is not None and ident not in owned
    }
    yield from reader.lookup(spec, {}, "id", cables)


def _cable_id(raw: Raw | None) -> int | None:
    cable = raw.get("cable") if raw else None
    return int(cable["id"]) if isinstance(cable, dict) else None


def _blocked_cables(reader: Reader, spec: ObjectType, refs: list[Ref]) -> None:
    """A desired cable whose port holds a cable hhsync does not own is a conflict, even with
    adopt: that cable ends elsewhere, and NetBox cannot move a cable's ends."""
    by_id = {rec.id: (ref, rec) for ref, rec in reader.records.items() if ref.type == spec.name}
    for ref in refs:
        for end in ref.key:
            found = by_id.get(_cable_id(reader.raws.get(end)) or -1)
            if ref not in reader.records and found and not found[1].owned:
                other, rec = found
                reason = f"port {end} already has cable {other} (not owned by hhsync)"
                reader.records[ref] = Record(
                    rec.id, Item(spec.name, {}), False, rec.tags, rec.owner, reason
                )
                reader.raws[ref] = reader.raws[other]
