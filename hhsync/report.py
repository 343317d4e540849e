"""Plans and outcomes as rows and lines for people (the CLI renders them)."""

from __future__ import annotations

from typing import Any

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
