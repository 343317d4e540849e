"""Apply a plan with bulk requests: deletes (children first), then creates and updates (parents
first), then the fields that point forward (a device's primary IP, set once its IP exists).

Every write carries a changelog message; new objects get the `hhsync` tag and the fabric's custom
field; adopted objects keep their tags. A chunk NetBox rejects is reported with NetBox's own
error for each object it named, and the objects it did not name are sent again on their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hhsync.deadline import Deadline
from hhsync.errors import NetboxError
from hhsync.model import FABRIC_FIELD, TAG, TYPES, ObjectType, Ref, payload
from hhsync.netbox.client import NetBox, chunks
from hhsync.plan import Change, Plan, Record

Progress = Callable[[int], None]
ID_QUERY = 100  # ids per `?id=` lookup, so the URL stays well under a proxy's line limit


@dataclass
class Applied:
    """What one apply did: counts by action, and one line per object that failed."""

    done: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class Unresolved(Exception):
    """A reference to an object that does not exist in NetBox (yet)."""


@dataclass
class Applier:
    netbox: NetBox
    fabric: str
    deadline: Deadline
    message: str
    ids: dict[Ref, int]
    progress: Progress = lambda n: None
    result: Applied = field(default_factory=Applied)

    def run(self, plan: Plan) -> Applied:
        groups: list[tuple[str, str, list[Change]]] = []
        for change in plan.changes:
            if groups and groups[-1][:2] == (change.action, change.ref.type):
                groups[-1][2].append(change)
            else:
                groups.append((change.action, change.ref.type, [change]))
        for action, type_name, changes in groups:
            self.deadline.enter(f"applying ({action} {TYPES[type_name].label}s)")
            if action == "delete":
                self.delete(TYPES[type_name], changes)
            else:
                self.write(action, TYPES[type_name], changes)
        self.late(plan)
        return self.result

    def delete(self, spec: ObjectType, changes: list[Change]) -> None:
        bodies = [{"id": c.id, "changelog_message": self.message} for c in changes]
        for chunk, part in _paired(bodies, changes):
            self.remove(spec, chunk, part, retry=True)

    def remove(
        self, spec: ObjectType, chunk: list[dict[str, Any]], part: list[Change], *, retry: bool
    ) -> None:
        try:
            self.netbox.delete(spec.endpoint, chunk, self.deadline)
        except NetboxError as e:
            # NetBox refuses the whole chunk when one of its objects is gone already: deleted
            # by hand since we read, or by a killed run's last request. Gone is what we want.
            left = self.still_there(spec, part) if retry else part
            if len(left) == len(part):
                self.fail(part, e)
                return
            ids = {c.id for c in left}
            gone = [c for c in part if c.id not in ids]
            self.removed(gone)
            if left:
                self.remove(spec, [b for b in chunk if b["id"] in ids], left, retry=False)
            return
        self.removed(part)

    def still_there(self, spec: ObjectType, part: list[Change]) -> list[Change]:
        """The changes whose objects NetBox still has (all of them if it cannot say)."""
        found: set[int] = set()
        try:
            for i in range(0, len(part), ID_QUERY):
                query = {"id": [c.id for c in part[i : i + ID_QUERY]], "fields": "id"}
                found.update(
                    int(f["id"]) for f in self.netbox.get_all(spec.endpoint, self.deadline, query)
                )
        except NetboxError:
            return part
        return [c for c in part if c.id in found]

    def removed(self, part: list[Change]) -> None:
        for change in part:
            self.ids.pop(change.ref, None)
        self.done("delete", len(part))

    def write(self, action: str, spec: ObjectType, changes: list[Change]) -> None:
        bodies, ready = [], []
        for change in changes:
            try:
                bodies.append(self.body(spec, change))
                ready.append(change)
            except Unresolved as e:
                self.result.failures.append(f"{action} {spec.label} {change.ref}: {e}")
        send = self.netbox.create if action == "create" else self.netbox.update
        for chunk, part in _paired(bodies, ready):
            self.send(send, action, spec, chunk, part, retry=True)

    def send(
        self,
        send: Any,
        action: str,
        spec: ObjectType,
        chunk: list[dict[str, Any]],
        part: list[Change],
        *,
        retry: bool,
    ) -> None:
        try:
            answer = send(spec.endpoint, chunk, self.deadline)
        except NetboxError as e:
            if spec.shared and action == "create" and retry:
                # Another fabric's run may have created the same shared object a moment ago.
                chunk, part = self.created_meanwhile(spec, chunk, part)
                if not chunk:
                    return
                self.send(send, action, spec, chunk, part, retry=False)
                return
            errors = _per_object(e.data, len(chunk))
            if errors is None or not retry:
                self.fail(part, e)
                return
            # NetBox rolls the whole chunk back; name the objects it blamed, resend the rest.
            good = [i for i in range(len(chunk)) if i not in errors]
            for i, error in sorted(errors.items()):
                self.result.failures.append(f"{action} {spec.label} {part[i].ref}: {error}")
            if good:
                self.send(
                    send,
                    action,
                    spec,
                    [chunk[i] for i in good],
                    [part[i] for i in good],
                    retry=False,
                )
            return
        if action == "create":
            for change, created in zip(part, answer, strict=True):
                self.ids[change.ref] = int(created["id"])
        self.done(action, len(part))

    def created_meanwhile(
        self, spec: ObjectType, chunk: list[dict[str, Any]], part: list[Change]
    ) -> tuple[list[dict[str, Any]], list[Change]]:
        """Take the ids of shared objects that exist by now; return what is still missing."""
        by, key = (spec.lookup.by if spec.lookup else spec.key[0]), spec.key[0]
        query = {by: [c.ref.key[0] for c in part], "fields": f"id,{key}"}
        ids = {
            f[key]: int(f["id"]) for f in self.netbox.get_all(spec.endpoint, self.deadline, query)
        }
        for change in part:
            if change.ref.key[0] in ids:
                self.ids[change.ref] = ids[change.ref.key[0]]
        keep = [i for i, c in enumerate(part) if c.ref.key[0] not in ids]
        return [chunk[i] for i in keep], [part[i] for i in keep]

    def late(self, plan: Plan) -> None:
        """Fields that point at objects created later in the same plan."""
        updates: dict[str, list[tuple[Change, dict[str, Any]]]] = {}
        for change in plan.changes:
            spec = TYPES[change.ref.type]
            late = {
                f.name: change.attrs[f.name]
                for f in spec.fields
                if f.late and f.name in change.attrs
            }
            if change.action == "create":
                late = {k: v for k, v in late.items() if v is not None}
            if late and change.ref in self.ids:
                updates.setdefault(spec.name, []).append((change, late))
        for name, pairs in updates.items():
            spec = TYPES[name]
            self.deadline.enter(f"applying (late fields of {spec.label}s)")
            bodies, part = [], []
            for change, late in pairs:
                try:
                    body = {"id": self.ids[change.ref], "changelog_message": self.message}
                    body.update(self.fields(spec, late, late=True))
                    bodies.append(body)
                    part.append(change)
                except Unresolved as e:
                    self.result.failures.append(f"update {spec.label} {change.ref}: {e}")
            for chunk, chunk_part in _paired(bodies, part):
                try:
                    self.netbox.update(spec.endpoint, chunk, self.deadline)
                except NetboxError as e:
                    self.fail(chunk_part, e)

    def body(self, spec: ObjectType, change: Change) -> dict[str, Any]:
        body = self.fields(spec, change.attrs, late=False)
        body["changelog_message"] = self.message
        if change.action == "create":
            body["tags"] = [{"slug": TAG}]
            if not spec.shared:
                body.setdefault("custom_fields", {})[FABRIC_FIELD] = self.fabric
        else:
            body["id"] = change.id
        if change.action == "adopt":
            tag_ids = [{"id": t} for t in change.tags]
            body["tags"] = [*tag_ids, {"slug": TAG}]
            body.setdefault("custom_fields", {})[FABRIC_FIELD] = self.fabric
        return body

    def fields(self, spec: ObjectType, attrs: Any, *, late: bool) -> dict[str, Any]:
        return payload(spec, attrs, self.id, late=late)

    def id(self, ref: Ref) -> int:
        try:
            return self.ids[ref]
        except KeyError:
            raise Unresolved(f"{TYPES[ref.type].label} {ref} does not exist in NetBox") from None

    def fail(self, part: Sequence[Change], error: NetboxError) -> None:
        names = ", ".join(str(c.ref) for c in part[:5]) + (" ..." if len(part) > 5 else "")
        action = part[0].action if part else "write"
        label = TYPES[part[0].ref.type].label if part else "object"
        self.result.failures.append(f"{action} {len(part)} {label}(s) [{names}]: {error}")

    def done(self, action: str, count: int) -> None:
        self.result.done[action] += count
        self.progress(count)


def _per_object(data: Any, size: int) -> dict[int, Any] | None:
    """NetBox's per-object errors of a rejected bulk request, by index in the chunk."""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return None
    found = {e["index"]: e.get("errors") for e in errors if isinstance(e, dict) and "index" in e}
    return found if found and all(isinstance(i, int) and 0 <= i < size for i in found) else None


def _paired(
    bodies: list[dict[str, Any]], changes: list[Change]
) -> list[tuple[list[dict[str, Any]], list[Change]]]:
    """Chunks of request bodies, each with the changes it carries."""
    out, start = [], 0
    for chunk in chunks(bodies):
        out.append((chunk, changes[start : start + len(chunk)]))
        start += len(chunk)
    return out


def apply_plan(
    plan: Plan,
    netbox: NetBox,
    fabric: str,
    current: dict[Ref, Record],
    deadline: Deadline,
    message: str,
    result: Applied,
    progress: Progress | None = None,
) -> Applied:
    """Send the plan to NetBox, recording into `result` as it goes (so a run stopped midway
    still reports what it did); ids of owned, shared and adopted objects resolve references."""
    ids = {ref: rec.id for ref, rec in current.items() if rec.owned or TYPES[ref.type].shared}
    ids.update({c.ref: c.id for c in plan.changes if c.action == "adopt" and c.id is not None})
    applier = Applier(netbox, fabric, deadline, message, ids, progress or (lambda n: None), result)
    return applier.run(plan)
