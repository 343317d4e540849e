"""One sync run of one fabric: discover, build the desired state, read NetBox, plan, apply."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hhsync.config import FabricConfig
from hhsync.deadline import Deadline
from hhsync.desired import Desired, build_desired
from hhsync.errors import HhsyncError
from hhsync.kube.source import Inventory, Source, discover
from hhsync.netbox.apply import Applied, Progress, apply_plan
from hhsync.netbox.client import NetBox
from hhsync.netbox.current import read_current
from hhsync.netbox.schema import tag_exists
from hhsync.plan import Plan, make_plan


@dataclass
class Outcome:
    """What a run did; `error` is set when it failed (the plan may be partly applied)."""

    fabric: str
    dry_run: bool = False
    plan: Plan | None = None
    desired: Desired | None = None
    inventory: Inventory | None = None
    applied: Applied | None = None
    error: str | None = None
    seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    fresh: str | None = None  # skipped: why it needs no sync now
    busy: bool = False  # another run holds the fabric's lock
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def result(self) -> str:
        """ok, error, fresh (skipped) or busy."""
        if self.busy:
            return "busy"
        if self.fresh:
            return "fresh"
        return "ok" if self.ok else "error"

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("created", "updated", "deleted", "unchanged", "conflicts"), 0)
        if self.plan is not None:
            counts.update(self.plan.summary())
        if self.applied is not None:  # what was really done, not what was planned
            done = self.applied.done
            counts["created"] = done["create"]
            counts["updated"] = done["update"] + done["adopt"]
            counts["deleted"] = done["delete"]
        counts["skipped"] = len(self.desired.skipped) if self.desired else 0
        counts["mismatches"] = len(self.desired.mismatches) if self.desired else 0
        return counts

    def summary(self) -> str:
        c = self.counts()
        verb = "would create" if self.dry_run else "created"
        text = (
            f"{verb} {c['created']}, updated {c['updated']}, deleted {c['deleted']}, unchanged "
            f"{c['unchanged']}, skipped {c['skipped']}, conflicts {c['conflicts']}"
        )
        if c["mismatches"]:
            text += f", cabling mismatches {c['mismatches']}"
        return f"{text} in {self.seconds:.1f}s"

    def line(self) -> str:
        """The one line a run prints."""
        if self.fresh:
            return f"{self.fabric}: {self.fresh}"
        if self.busy:
            return f"{self.fabric}: busy: {self.error}"
        if self.plan is None and self.error:
            return f"{self.fabric}: error: {self.error}"
        return f"{self.fabric}: {self.summary()}" + (f"; error: {self.error}" if self.error else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "fabric": self.fabric,
            "ok": self.ok,
            "result": self.result,
            "summary": self.line(),
            "reason": self.fresh,
            "warnings": self.warnings,
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "skipped": [str(s) for s in self.desired.skipped] if self.desired else [],
            "conflicts": [str(c) for c in self.plan.conflicts] if self.plan else [],
            "mismatches": [str(m) for m in self.desired.mismatches] if self.desired else [],
            "absent_kinds": self.inventory.absent if self.inventory else [],
            "failures": self.applied.failures if self.applied else [],
            "netbox_requests": self.requests,
        }


def sync_fabric(
    fabric: FabricConfig,
    netbox: NetBox,
    source: Source,
    *,
    now: datetime,
    deadline: Deadline,
    dry_run: bool = False,
    allow_mass_delete: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Run one sync; failures end up in `Outcome.error`, never as exceptions."""
    started = time.monotonic()
    outcome = Outcome(fabric.name, dry_run)
    try:
        _run(outcome, fabric, netbox, source, now, deadline, allow_mass_delete, progress)
    except HhsyncError as e:
        outcome.error = str(e)
    outcome.seconds = time.monotonic() - started
    outcome.requests = dict(netbox.requests)
    return outcome


def _run(
    outcome: Outcome,
    fabric: FabricConfig,
    netbox: NetBox,
    source: Source,
    now: datetime,
    deadline: Deadline,
    allow_mass_delete: bool,
    progress: Callable[[int, int], None] | None,
) -> None:
    outcome.inventory = inventory = discover(source, deadline)
    outcome.desired = desired = build_desired(inventory, fabric, now)
    # A real run set up the tag and custom fields before; a dry run writes nothing at all.
    owned_tag = tag_exists(netbox, deadline) if outcome.dry_run else True
    current = read_current(netbox, fabric.name, desired, deadline, owned_tag)
    outcome.plan = plan = make_plan(
        desired,
        current,
        adopt=fabric.adopt,
        max_delete_fraction=fabric.max_delete_fraction,
        allow_mass_delete=allow_mass_delete,
    )
    if plan.refused:
        raise HhsyncError(f"refused to apply the plan: {plan.refused}")
    if outcome.dry_run or not plan.changes:
        _require_kinds(inventory)
        return
    message = f"hhsync: sync of fabric {fabric.name}"
    total = len(plan.changes)
    advance: Progress | None = (lambda n: progress(n, total)) if progress else None
    outcome.applied = applied = Applied()
    apply_plan(plan, netbox, fabric.name, current, deadline, message, applied, advance)
    if not applied.ok:
        first = applied.failures[0]
        more = f" (and {len(applied.failures) - 1} more)" if len(applied.failures) > 1 else ""
        raise HhsyncError(f"NetBox rejected part of the plan: {first}{more}")
    _require_kinds(inventory)


def _require_kinds(inventory: Inventory) -> None:
    if inventory.missing:
        raise HhsyncError(
            f"the fabric's API does not serve {', '.join(inventory.missing)} (HTTP 404): the rest "
            "was synced, and NetBox objects built from those kinds were kept, not deleted"
        )
