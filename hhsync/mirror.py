"""Mirror one fabric into NetBox: discover, build the desired state, read NetBox, plan, apply.

`mirror(...)` is the sync itself; `run.py` wraps it in a run (lock, freshness, recording).
Its result is an `Outcome`, a value; `report.py` says how an Outcome looks to people.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from hhsync import planfile
from hhsync.config import FabricConfig
from hhsync.deadline import Deadline
from hhsync.desired import Desired, build_desired
from hhsync.errors import HhsyncError
from hhsync.kube.source import Inventory, Source, discover
from hhsync.model import Ref
from hhsync.netbox import branches
from hhsync.netbox.apply import Applied, Progress, apply_plan
from hhsync.netbox.branches import Branch
from hhsync.netbox.changelog import changes_since, latest_change, user_id
from hhsync.netbox.client import NetBox
from hhsync.netbox.current import read_current
from hhsync.netbox.schema import ensure_schema, tag_exists
from hhsync.netbox.site import ensure_site
from hhsync.plan import Plan, Record, make_plan
from hhsync.planfile import SavedPlan
from hhsync.syncstate import SyncState, format_time


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
    netbox: str = ""  # the NetBox URL, without credentials
    # Retired objects awaiting deletion, (when, how many), once the run knows them.
    retirements: tuple[tuple[datetime, int], ...] | None = None
    staged: Staged | None = None  # the branch the run wrote into, when it used one
    branch_known: bool = False  # the run found out whether the fabric has an open branch

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
        counts = dict.fromkeys(
            ("created", "updated", "retired", "deleted", "unchanged", "conflicts"), 0
        )
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
            counts["retired"] = done["retire"]
            counts["deleted"] = done["delete"]
        counts["skipped"] = len(self.desired.skipped) if self.desired else 0
        counts["mismatches"] = len(self.desired.mismatches) if self.desired else 0
        return counts


@dataclass
class Staged:
    """The branch a run staged its changes in, and what became of it."""

    branch: Branch
    mode: str  # review or merge
    changes: int = 0  # objects the branch changes, as NetBox counts them
    provisioning: float | None = None  # seconds NetBox took to provision it, when new
    merged: bool = False

    def record(self) -> dict[str, Any]:
        """What the site's sync state keeps of an open branch."""
        b = self.branch
        return {
            "id": b.id,
            "name": b.name,
            "schema_id": b.schema_id,
            "url": b.url,
            "created": b.created,
            "mode": self.mode,
            "changes": self.changes,
        }


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    full: bool = False  # compare everything even when the fast path could skip it
    allow_mass_delete: bool = False
    branch: str | None = None  # this run's branch mode, instead of the fabric's `branch`
    saved: SavedPlan | None = None  # apply exactly this plan (`hhsync apply`)
    partial: bool = False  # with `saved`: apply what is still valid when things moved
    previous: SyncState | None = None  # the stored state, for the fast path and the branch


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
    outcome = Outcome(fabric.name, options.dry_run, netbox=netbox.url)
    try:
        _Mirror(outcome, fabric, netbox, deadline, options, now).run(source, progress)
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
    now: datetime

    @property
    def mode(self) -> str:
        """Where the run writes: main ("off"), or a branch to "review" or to "merge"."""
        if self.options.dry_run or self.options.saved:
            return "off"  # plans are made, and saved plans applied, against main
        return self.options.branch or self.fabric.branch

    def run(self, source: Source, progress: Callable[[int, int], None] | None) -> None:
        o, netbox, deadline = self.outcome, self.netbox, self.deadline
        o.inventory = inventory = discover(source, deadline)
        o.desired = desired = build_desired(inventory, self.fabric, self.now)
        fingerprint = desired.fingerprint(f"adopt={self.fabric.adopt}")
        if self.fast_path(fingerprint):
            _require_kinds(inventory)
            return
        saved = self.options.saved  # what moved in NetBox since it was made, before we write
        edits = changes_since(netbox, saved.marker, deadline) if saved else 0
        if o.dry_run:  # a dry run writes nothing at all, not even the tag
            owned_tag = tag_exists(netbox, deadline)
        else:
            ensure_schema(netbox, deadline)
            if self.options.saved is None:  # a saved plan creates the site if it planned to
                o.site = ensure_site(netbox, self.fabric.site, deadline)
            owned_tag = True
        marker = latest_change(netbox, deadline)  # before reading
        if self.mode == "off":
            current = read_current(netbox, self.fabric.name, desired, deadline, owned_tag)
            plan, leftover = self.reviewed(self.plan(desired, current), fingerprint, edits)
            o.plan = plan
            self.forget_branch()
            if not o.dry_run and plan.changes:
                self.apply(plan, current, progress)
            if leftover:
                raise HhsyncError(f"{leftover}; the next sync brings NetBox in line")
            if not o.dry_run and plan.changes:
                # Our own writes come after the marker; move it past them unless someone else
                # changed something meanwhile, which the next run must then look at in full.
                others = changes_since(
                    netbox, marker, deadline, except_user=user_id(netbox, deadline)
                )
                if others == 0:
                    marker = latest_change(netbox, deadline)
            o.fingerprint = f"{fingerprint}:{marker}"
        else:
            self.staged(desired, progress)  # main moves only by a merge: no fingerprint
        _require_kinds(inventory)

    def plan(self, desired: Desired, current: dict[Ref, Record]) -> Plan:
        plan = make_plan(
            desired,
            current,
            adopt=self.fabric.adopt,
            max_delete_fraction=self.fabric.max_delete_fraction,
            allow_mass_delete=self.options.allow_mass_delete,
            retire_after=self.fabric.retire_after,
            now=self.now,
        )
        if plan.refused:
            raise HhsyncError(f"refused to apply the plan: {plan.refused}")
        self.outcome.retirements = plan.retirements
        return plan

    def reviewed(self, plan: Plan, fingerprint: str, edits: int) -> tuple[Plan, str | None]:
        """With a saved plan: the plan made now when it is the one saved (the fabric and NetBox
        have not moved since), else a refusal naming what moved, or with `partial` the saved
        changes still valid and a sentence on what was left out."""
        saved = self.options.saved
        if saved is None:
            return plan, None
        why = []
        if saved.fingerprint.partition(":")[0] != fingerprint:
            why.append("the fabric changed since the plan was made")
        if edits:
            why.append(f"NetBox has {edits} change(s) since, to objects hhsync manages")
        drift = planfile.moved(saved.changes, plan.changes)
        if not why and not drift:
            return plan, None
        more = f"; and {len(drift) - 10} more" if len(drift) > 10 else ""
        detail = "; ".join(why + drift[:10]) + more
        if not self.options.partial:
            raise HhsyncError(
                f"refused to apply the saved plan: {detail} (--force applies what is still valid)"
            )
        valid = planfile.still_valid(saved.changes, plan.changes)
        self.outcome.warnings += [f"not applied: {line}" for line in drift]
        left = f"applied {len(valid)} of {len(saved.changes)} saved changes: {detail}"
        return replace(plan, changes=tuple(valid)), left

    def staged(self, desired: Desired, progress: Callable[[int, int], None] | None) -> None:
        """Write into a branch: the fabric's open branch, brought up to date, or else a new one
        when main differs from the fabric. In merge mode, merged once all of the plan is in."""
        o, netbox, deadline = self.outcome, self.netbox, self.deadline
        branch, provisioning = self.open_branch(), None
        o.branch_known = True
        if branch is None:
            main = read_current(netbox, self.fabric.name, desired, deadline, True)
            o.plan = self.plan(desired, main)
            if not o.plan.changes:
                return  # main mirrors the fabric already: nothing to review
            name = f"hhsync/{self.fabric.name}/{format_time(self.now)}"
            branch = branches.create(netbox, name, _description(self.fabric, o.plan), deadline)
        started = time.monotonic()
        if branch.status != "ready":
            branch = branches.wait_ready(netbox, branch, deadline)
            provisioning = time.monotonic() - started
        o.staged = staged = Staged(branch, self.mode, provisioning=provisioning)
        with netbox.in_branch(branch.schema_id):
            current = read_current(netbox, self.fabric.name, desired, deadline, True)
            o.plan = plan = self.plan(desired, current)
            if plan.changes:
                self.apply(plan, current, progress)
        staged.changes = branches.changes(netbox, branch, deadline)
        if self.mode == "merge" and staged.changes == 0:
            branches.delete(netbox, branch, deadline)  # nothing to merge: NetBox would keep it
            staged.merged = True
        elif self.mode == "merge":
            branches.archive(netbox, branches.merge(netbox, branch, deadline), deadline)
            staged.merged = True
        elif plan.changes:
            branches.describe(netbox, branch, _description(self.fabric, plan), deadline)

    def forget_branch(self) -> None:
        """Writing to main: a branch an earlier run opened is no longer the fabric's."""
        known = self.options.previous.branch if self.options.previous else None
        if self.options.dry_run:
            return
        self.outcome.branch_known = True
        if known:
            self.outcome.warnings.append(
                f"branch {known.get('name')} of an earlier run may still be open in NetBox; "
                'this run wrote to main (branch = "off")'
            )

    def open_branch(self) -> Branch | None:
        """The fabric's branch from an earlier run, while it is open (not merged or discarded);
        one that a run killed before it could record it is found by its name."""
        known = (self.options.previous.branch if self.options.previous else None) or {}
        if isinstance(known.get("id"), int):
            found = branches.get(self.netbox, known["id"], self.deadline)
            if found is not None and found.open:
                return found
            if found is None or not found.merged:
                self.outcome.warnings.append(
                    f"branch {known.get('name')} was {found.status if found else 'deleted'} "
                    "in NetBox without being merged; a new branch holds its changes"
                )
        prefix = f"hhsync/{self.fabric.name}/"
        return branches.find_open(self.netbox, prefix, self.deadline)

    def fast_path(self, fingerprint: str) -> bool:
        """Take the fast path when the fabric hashes as at the last success and nothing hhsync
        manages changed in NetBox since (its change log says so in one request); True if taken.
        """
        previous, options = self.options.previous, self.options
        if options.full or options.dry_run or options.saved or previous is None:
            return False
        if self.mode != "off" or (previous.retire_due and self.now >= previous.retire_due):
            return False  # a branch is compared in full; retired objects are due for deletion
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
        self.outcome.retirements = previous.retirements
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


def _description(fabric: FabricConfig, plan: Plan) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in plan.summary().items() if v and k != "unchanged")
    return f"hhsync: fabric {fabric.name} into site {fabric.site}: {counts or 'no changes'}"


def _require_kinds(inventory: Inventory) -> None:
    if inventory.missing:
        raise HhsyncError(
            f"the fabric's API does not serve {', '.join(inventory.missing)} (HTTP 404): the rest "
            "was synced, and NetBox objects built from those kinds were kept, not deleted"
        )
