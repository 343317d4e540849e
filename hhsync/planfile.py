"""Saved plans: `sync --dry-run --plan-out FILE` writes one, `hhsync apply FILE` applies it.

A plan file is JSON: what the plan would change (every create, update, retire and delete, by
NetBox type and natural key, with the exact fields), the conflicts and skipped objects, and what
it was computed against: the fabric's fingerprint and NetBox's newest change-log id. `apply`
refuses a plan when either moved since, and names what moved. No secret is ever in it: it holds
hhsync's own plan values and the NetBox URL without credentials.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hhsync import __version__
from hhsync.errors import ConfigError
from hhsync.model import RETIRED, TYPES, Ref
from hhsync.plan import Change, Plan

FORMAT = "hhsync-plan"
VERSION = 1  # the newest format this hhsync reads and writes
ACTIONS = ("create", "update", "adopt", "retire", "delete")


@dataclass(frozen=True)
class SavedPlan:
    """A plan as a file holds it, and what it was computed against."""

    fabric: str
    netbox: str  # the NetBox URL, without credentials
    fingerprint: str  # the fabric's digest, as in the sync state
    marker: int  # NetBox's newest change-log id when the plan was made
    changes: tuple[Change, ...]
    hhsync: str = __version__


def to_json(
    plan: Plan,
    *,
    fabric: str,
    netbox: str,
    fingerprint: str,
    marker: int,
    skipped: list[str],
) -> dict[str, Any]:
    """The plan file's document."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "hhsync": __version__,
        "fabric": fabric,
        "netbox": netbox,
        "fingerprint": fingerprint,
        "change_marker": marker,
        "counts": plan.summary(),
        "changes": [_change(c) for c in plan.changes],
        "conflicts": [
            {"type": c.ref.type, "key": _encode(c.ref.key), "id": c.id, "reason": c.reason}
            for c in plan.conflicts
        ],
        "skipped": skipped,
    }


def _change(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "type": change.ref.type,
        "key": _encode(change.ref.key),
        "id": change.id,
        "fields": {k: _encode(v) for k, v in change.attrs.items()},
        "old": {k: _encode(v) for k, v in change.old.items()},
        "tags": list(change.tags),
    }


def _encode(value: Any) -> Any:
    """Refs as {"ref": type, "key": [...]}, tuples as lists; everything else is JSON already."""
    if isinstance(value, Ref):
        return {"ref": value.type, "key": _encode(value.key)}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v, where) for v in value)
    if isinstance(value, dict):
        if set(value) != {"ref", "key"} or value["ref"] not in TYPES:
            raise _Bad(f"{where}: not a reference: {json.dumps(value)[:100]}")
        key = _decode(value["key"], where)
        if not isinstance(key, tuple):
            raise _Bad(f"{where}: a reference's key must be a list")
        return Ref(value["ref"], key)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise _Bad(f"{where}: unexpected value {value!r}")


class _Bad(Exception):
    """A part of the file that is not what hhsync writes."""


def load(path: Path, text: str | None = None) -> SavedPlan:
    """Read a plan file; anything corrupt, truncated, foreign or too new is a ConfigError (exit
    2) naming the file and the place."""
    try:
        raw = text if text is not None else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the plan file: {e}") from None
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"{path}: not a plan file: invalid or truncated JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f'{path}: not an hhsync plan file (no "format": "{FORMAT}")')
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(f"{path}: version: expected a whole number, got {version!r}")
    if version > VERSION:
        raise ConfigError(
            f"{path}: plan format {version} was written by a newer hhsync "
            f"({doc.get('hhsync', '?')}); this hhsync {__version__} reads format {VERSION}"
        )
    try:
        return _plan(doc)
    except _Bad as e:
        raise ConfigError(f"{path}: {e}") from None


def _plan(doc: Mapping[str, Any]) -> SavedPlan:
    for name, kind in (("fabric", str), ("netbox", str), ("fingerprint", str)):
        if not isinstance(doc.get(name), kind):
            raise _Bad(f"{name}: missing or not a string")
    marker = doc.get("change_marker")
    if not isinstance(marker, int) or isinstance(marker, bool) or marker < 0:
        raise _Bad("change_marker: missing or not a change-log id")
    changes = doc.get("changes")
    if not isinstance(changes, list):
        raise _Bad("changes: missing or not a list")
    return SavedPlan(
        doc["fabric"],
        doc["netbox"],
        doc["fingerprint"],
        marker,
        tuple(_read_change(c, f"changes[{i}]") for i, c in enumerate(changes)),
        str(doc.get("hhsync", "?")),
    )


def _read_change(raw: Any, where: str) -> Change:
    if not isinstance(raw, dict):
        raise _Bad(f"{where}: not an object")
    action, type_name = raw.get("action"), raw.get("type")
    if action not in ACTIONS:
        raise _Bad(f"{where}.action: {action!r} is not one of {', '.join(ACTIONS)}")
    if type_name not in TYPES:
        raise _Bad(f"{where}.type: unknown NetBox type {type_name!r}")
    key = _decode(raw.get("key"), f"{where}.key")
    if not isinstance(key, tuple) or len(key) != len(TYPES[type_name].key):
        raise _Bad(f"{where}.key: expected {len(TYPES[type_name].key)} values")
    ident = raw.get("id")
    if ident is not None and (not isinstance(ident, int) or isinstance(ident, bool)):
        raise _Bad(f"{where}.id: not a NetBox id")
    if (ident is None) != (action == "create"):
        raise _Bad(f"{where}.id: a {action} {'has no' if action == 'create' else 'needs an'} id")
    names = {f.name for f in TYPES[type_name].fields}
    fields = raw.get("fields") or {}
    old = raw.get("old") or {}
    for part, values in (("fields", fields), ("old", old)):
        if not isinstance(values, dict) or not set(values) <= names:
            unknown = sorted(set(values) - names) if isinstance(values, dict) else values
            raise _Bad(f"{where}.{part}: not fields of a {type_name}: {unknown}")
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, int) for t in tags):
        raise _Bad(f"{where}.tags: not a list of tag ids")
    return Change(
        action,
        Ref(type_name, key),
        {k: _decode(v, f"{where}.fields.{k}") for k, v in fields.items()},
        {k: _decode(v, f"{where}.old.{k}") for k, v in old.items()},
        ident,
        tuple(tags),
    )


def still_valid(saved: tuple[Change, ...], fresh: tuple[Change, ...]) -> list[Change]:
    """The changes of a plan made now that the saved plan makes exactly the same (a retirement
    is stamped with the time it is applied, not planned), in the order a plan sends them."""
    planned = {(c.ref, c.action): _comparable(c) for c in saved}
    return [c for c in fresh if planned.get((c.ref, c.action)) == _comparable(c)]


def moved(saved: tuple[Change, ...], fresh: tuple[Change, ...]) -> list[str]:
    """What differs between the saved plan and one made now, one line per object."""
    before = {(c.ref, c.action): c for c in saved}
    after = {(c.ref, c.action): c for c in fresh}
    lines = []
    for key in sorted(before.keys() - after.keys(), key=_order):
        lines.append(f"{_what(before[key])}: planned, no longer needed")
    for key in sorted(after.keys() - before.keys(), key=_order):
        lines.append(f"{_what(after[key])}: needed now, not in the plan")
    for key in sorted(before.keys() & after.keys(), key=_order):
        if _comparable(before[key]) != _comparable(after[key]):
            lines.append(f"{_what(after[key])}: planned with other values")
    return lines


def _comparable(change: Change) -> Change:
    if change.action != "retire":
        return change
    return replace(change, attrs={k: v for k, v in change.attrs.items() if k != RETIRED})


def _order(key: tuple[Ref, str]) -> tuple[Any, ...]:
    return (key[0].type, key[0].natural(), key[1])


def _what(change: Change) -> str:
    return f"{change.action} {TYPES[change.ref.type].label} {change.ref}"
