"""How plans and run outcomes look to people and to `--json`: the one place that renders them.

The values come from `plan.py` and `mirror.py`; `console.py` prints what this module returns.
"""

from __future__ import annotations

from typing import Any

from hhsync.mirror import Outcome
from hhsync.model import TYPES, Ref
from hhsync.plan import Plan

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
            key = set(TYPES[change.ref.type].key)
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
    text = (
        f"{verb} {c['created']}, updated {c['updated']}, deleted {c['deleted']}, unchanged "
        f"{c['unchanged']}, skipped {c['skipped']}, conflicts {c['conflicts']}"
    )
    if c["mismatches"]:
        text += f", cabling mismatches {c['mismatches']}"
    seen = "; fabric and NetBox unchanged since the last sync" if outcome.fast else ""
    return f"{text} in {outcome.seconds:.1f}s{seen}"


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
    }


def mismatches(outcome: Outcome) -> list[str]:
    return [str(m) for m in outcome.desired.mismatches] if outcome.desired else []
