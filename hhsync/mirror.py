"""Mirror one fabric into NetBox: discover, build the desired state, read NetBox, plan, apply.

`mirror(...)` is the sync itself; `run.py` wraps it in a run (lock, freshness, recording).
Its result is an `Outcome`, a value; `report.py` says how an Outcome looks to people.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from hhsync.config import FabricConfig
from hhsync.deadline import Deadline
from hhsync.desired import Desired, build_desired
from hhsync.errors import HhsyncError
from hhsync.kube.source import Inventory, Source, discover
from hhsync.model import Ref
from hhsync.netbox.apply import Applied, Progress, apply_plan
from hhsync.netbox.changelog import changes_since, latest_change, user_id
from hhsync.netbox.client import NetBox
from hhsync.netbox.current import read_current
from hhsync.netbox.schema import ensure_schema, tag_exists
from hhsync.netbox.site import ensure_site
from hhsync.plan import Plan, Record, make_plan
from hhsync.syncstate import SyncState


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
    fast: bool = False  # verified unchanged by fingerprint and change log, nothing compared
    fingerprint: str | None = None  # "<digest>:<change marker>", stored with a success
    site: int | None = None  # the site's id, once known
    previous_counts: dict[str, int] = field(default_factory=dict)
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
        if self.fast:  # what the last full sync left in place is all still there
            p = self.previous_counts
            in_place = sum(p.get(k, 0) for k in ("unchanged", "created", "updated"))
            counts.update(unchanged=in_place, conflicts=p.get("conflicts", 0))
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


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    full: bool = False  # compare everything even when the fast path could skip it
    allow_mass_delete: bool = False
    previous: SyncState | None = None  # the stored state, for the fast path


DEFAULTS = Options()


def mirror(
    fabric: FabricConfig,
    netbox: NetBox,
    source: Source,
    *,
    now: datetime,
    deadline: Deadline,
    options: Options = DEFAULTS,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Run one sync; failures end up in `Outcome.error`, never as exceptions."""
    started = time.monotonic()
    outcome = Outcome(fabric.name, options.dry_run)
    try:
        _Mirror(outcome, fabric, netbox, deadline, options).run(source, now, progress)
    except HhsyncError as e:
        outcome.error = str(e)
    outcome.seconds = time.monotonic() - started
    outcome.requests = dict(netbox.requests)
    return outcome


@dataclass
class _Mirror:
    outcome: Outcome
    fabric: FabricConfig
    netbox: NetBox
    deadline: Deadline
    options: Options

    def run(
        self, source: Source, now: datetime, progress: Callable[[int, int], None] | None
    ) -> None:
        o, netbox, deadline = self.outcome, self.netbox, self.deadline
        o.inventory = inventory = discover(source, deadline)
        o.desired = desired = build_desired(inventory, self.fabric, now)
        fingerprint = desired.fingerprint(f"adopt={self.fabric.adopt}")
        if self.fast_path(fingerprint):
            _require_kinds(inventory)
            return
        if o.dry_run:  # a dry run writes nothing at all, not even the tag
            owned_tag = tag_exists(netbox, deadline)
        else:
            ensure_schema(netbox, deadline)
            o.site = ensure_site(netbox, self.fabric.site, deadline)
            owned_tag = True
        marker = 0 if o.dry_run else latest_change(netbox, deadline)  # before reading
        current = read_current(netbox, self.fabric.name, desired, deadline, owned_tag)
        o.plan = plan = make_plan(
            desired,
            current,
            adopt=self.fabric.adopt,
            max_delete_fraction=self.fabric.max_delete_fraction,
            allow_mass_delete=self.options.allow_mass_delete,
        )
        if plan.refused:
            raise HhsyncError(f"refused to apply the plan: {plan.refused}")
        if not o.dry_run and plan.changes:
            self.apply(plan, current, progress)
            # Our own writes come after the marker; move it past them unless someone else
            # changed something meanwhile, which the next run must then look at in full.
            if changes_since(netbox, marker, deadline, except_user=user_id(netbox, deadline)) == 0:
                marker = latest_change(netbox, deadline)
        o.fingerprint = f"{fingerprint}:{marker}"
        _require_kinds(inventory)

    def fast_path(self, fingerprint: str) -> bool:
        """Take the fast path when the fabric hashes as at the last success and nothing hhsync
        manages changed in NetBox since (its change log says so in one request); True if taken.
        """
        previous = self.options.previous
        if self.options.full or self.options.dry_run or previous is None:
            return False
        stored, _, marker = (previous.fingerprint or "").partition(":")
        if previous.result != "ok" or stored != fingerprint or not marker.isdigit():
            return False
        if previous.counts.get("conflicts"):  # conflicts are listed afresh by a full run
            return False
        if changes_since(self.netbox, int(marker), self.deadline):
            return False
        self.outcome.fast = True
        self.outcome.fingerprint = previous.fingerprint
        self.outcome.previous_counts = previous.counts
        return True

    def apply(
        self, plan: Plan, current: dict[Ref, Record], progress: Callable[[int, int], None] | None
    ) -> None:
        total = len(plan.changes)
        advance: Progress | None = (lambda n: progress(n, total)) if progress else None
        self.outcome.applied = applied = Applied()
        message = f"hhsync: sync of fabric {self.fabric.name}"
        apply_plan(
            plan, self.netbox, self.fabric.name, current, self.deadline, message, applied, advance
        )
        if not applied.ok:
            first = applied.failures[0]
            more = f" (and {len(applied.failures) - 1} more)" if len(applied.failures) > 1 else ""
            raise HhsyncError(f"NetBox rejected part of the plan: {first}{more}")


def _require_kinds(inventory: Inventory) -> None:
    if inventory.missing:
        raise HhsyncError(
            f"the fabric's API does not serve {', '.join(inventory.missing)} (HTTP 404): the rest "
            "was synced, and NetBox objects built from those kinds were kept, not deleted"
        )
