"""How plans and run outcomes look to people and to `--json`: the one place that renders them.

The values come from `plan.py` and `mirror.py`; `console.py` prints what this module returns.
"""

from __future__ import annotations

from typing import Any

from hhsync import planfile
from hhsync.mirror import Outcome, Staged
from hhsync.model import TYPES, Ref
from hhsync.plan import Plan
from hhsync.syncstate import format_time

PLAN_COLUMNS = ("action", "type", "object", "changes")


def show(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def plan_rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for change in plan.changes:
        label = TYPES[change.ref.type].label
        if change.action in ("update", "adopt"):
            details = "; ".join(
                f"{k}: {show(change.old.get(k))} -> {show(v)}" for k, v in change.attrs.items()
            )
            if change.action == "adopt":
                details = "take over (add tag hhsync)" + (f"; {details}" if details else "")
        elif change.action == "create":
            key = {*TYPES[change.ref.type].key, "owner"}  # every owned object has the owner
            details = ", ".join(
                f"{k}={show(v)}"
                for k, v in change.attrs.items()
                if k not in key and v not in (None, "", (), False)
            )
        else:
            details = ""
        rows.append((change.action, label, str(change.ref), details))
    return rows


def summary(outcome: Outcome) -> str:
    """The counts and time of a run: what the site's `hhsync_message` holds after a success."""
    c = outcome.counts()
    verb = "would create" if outcome.dry_run else "created"
    parts = [f"{verb} {c['created']}", f"updated {c['updated']}", f"deleted {c['deleted']}"]
    batches = outcome.retirements or ()
    if c["retired"] or batches:
        waiting = sum(n for _, n in batches)
        first = f", the first at {format_time(batches[0][0])}" if batches else ""
        parts.append(f"retired {c['retired']} ({waiting} awaiting deletion{first})")
    parts += [f"unchanged {c['unchanged']}", f"skipped {c['skipped']}"]
    parts.append(f"conflicts {c['conflicts']}")
    if c["mismatches"]:
        parts.append(f"cabling mismatches {c['mismatches']}")
    seen = "; fabric and NetBox unchanged since the last sync" if outcome.fast else ""
    return f"{', '.join(parts)} in {outcome.seconds:.1f}s{seen}{_branch(outcome.staged)}"


def _branch(staged: Staged | None) -> str:
    if staged is None:
        return ""
    b = staged.branch
    new = f", provisioned in {staged.provisioning:.1f}s" if staged.provisioning else ""
    if staged.merged:
        return f"; merged branch {b.name} ({staged.changes} changes{new})"
    return f"; branch {b.name} awaits review ({staged.changes} changes{new}): {b.url}"


def line(outcome: Outcome) -> str:
    """The one line a run prints."""
    name = outcome.fabric
    if outcome.fresh:
        return f"{name}: {outcome.fresh}"
    if outcome.busy:
        return f"{name}: busy: {outcome.error}"
    if outcome.plan is None and outcome.error:
        return f"{name}: error: {outcome.error}"
    error = f"; error: {outcome.error}" if outcome.error else ""
    return f"{name}: {summary(outcome)}{error}"


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One fabric's entry of `sync --json` (documented in the README)."""
    o = outcome
    return {
        "fabric": o.fabric,
        "ok": o.ok,
        "result": o.result,
        "summary": line(o),
        "reason": o.fresh,
        "fast": o.fast,
        "warnings": o.warnings,
        "dry_run": o.dry_run,
        "counts": o.counts(),
        "error": o.error,
        "seconds": round(o.seconds, 3),
        "skipped": [str(s) for s in o.desired.skipped] if o.desired else [],
        "conflicts": [str(c) for c in o.plan.conflicts] if o.plan else [],
        "mismatches": mismatches(o),
        "absent_kinds": o.inventory.absent if o.inventory else [],
        "failures": o.applied.failures if o.applied else [],
        "netbox_requests": o.requests,
        "branch": _branch_json(o.staged),
        "plan": plan_document(o) if o.dry_run else None,
        "retirements": [{"due": format_time(d), "count": n} for d, n in o.retirements or ()],
    }


def plan_document(outcome: Outcome) -> dict[str, Any] | None:
    """The plan a dry run made, as `--plan-out` saves it (see planfile.py)."""
    if outcome.plan is None or outcome.fingerprint is None:
        return None
    digest, _, marker = outcome.fingerprint.partition(":")
    return planfile.to_json(
        outcome.plan,
        fabric=outcome.fabric,
        netbox=outcome.netbox,
        fingerprint=digest,
        marker=int(marker or 0),
        skipped=[str(s) for s in outcome.desired.skipped] if outcome.desired else [],
    )


def _branch_json(staged: Staged | None) -> dict[str, Any] | None:
    if staged is None:
        return None
    return {
        **staged.record(),
        "status": "merged" if staged.merged else staged.branch.status,
        "provisioning_seconds": round(staged.provisioning, 3) if staged.provisioning else None,
    }


def retired_list(outcome: Outcome, limit: int = 100) -> str:
    """The objects a run retired, one per line, for the site's journal."""
    if outcome.applied is None or not outcome.applied.done["retire"] or outcome.plan is None:
        return ""
    retired = [c for c in outcome.plan.changes if c.action == "retire"]
    lines = [f"- {TYPES[c.ref.type].label} {c.ref}" for c in retired[:limit]]
    more = [f"- and {len(retired) - limit} more"] if len(retired) > limit else []
    return "\n\nRetired (deleted after retire_after unless they come back):\n" + "\n".join(
        lines + more
    )


def mismatches(outcome: Outcome) -> list[str]:
    return [str(m) for m in outcome.desired.mismatches] if outcome.desired else []
