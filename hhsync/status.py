"""`hhsync status`: one row per configured fabric, computed from stored state and the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hhsync.config import FabricConfig
from hhsync.durations import format_age, format_duration
from hhsync.syncstate import SyncState, computed_state, format_time, needs_sync, parse_time

COLUMNS = (
    "fabric",
    "site",
    "state",
    "last success",
    "last attempt",
    "interval",
    "needs sync",
    "next run",
    "objects",
    "mismatches",
    "branch",
    "retired",
    "last error",
)
ERROR_WIDTH = 60


@dataclass(frozen=True)
class Row:
    fabric: FabricConfig
    state: SyncState
    computed: str
    needed: bool
    due: str
    next_run: datetime | None
    now: datetime

    def cells(self) -> tuple[str, ...]:
        s = self.state
        counts = s.counts
        objects = (
            f"{sum(counts.get(k, 0) for k in ('created', 'updated', 'unchanged'))} "
            f"(+{counts.get('created', 0)} ~{counts.get('updated', 0)} -{counts.get('deleted', 0)})"
            if counts
            else "-"
        )
        error = s.message if s.result == "error" else ""
        if len(error) > ERROR_WIDTH:
            error = error[: ERROR_WIDTH - 3] + "..."
        state = self.computed if self.fabric.enabled else f"{self.computed} (disabled)"
        return (
            self.fabric.name,
            self.fabric.site,
            state,
            _moment(s.last_success, self.now),
            _moment(s.last_attempt, self.now),
            format_duration(self.fabric.interval),
            "yes" if self.needed else "no",
            format_time(self.next_run) if self.next_run else "-",
            objects,
            str(len(s.mismatches)),
            self.branch(),
            self.retired(),
            error or "-",
        )

    def branch(self) -> str:
        b = self.state.branch
        if not b:
            return "-"
        created = parse_time(b.get("created"))
        age = f", {format_age((self.now - created).total_seconds())}" if created else ""
        return f"{b.get('name')} ({b.get('changes')} changes{age})"

    def retired(self) -> str:
        batches = self.state.retirements
        if not batches:
            return "-"
        first = batches[0][0]
        return f"{sum(n for _, n in batches)} (deleted from {format_time(first)})"

    def as_json(self) -> dict[str, Any]:
        s = self.state
        return {
            "fabric": self.fabric.name,
            "site": self.fabric.site,
            "enabled": self.fabric.enabled,
            "state": self.computed,
            "last_success": format_time(s.last_success) if s.last_success else None,
            "last_attempt": format_time(s.last_attempt) if s.last_attempt else None,
            "result": s.result,
            "message": s.message or None,
            "interval_seconds": self.fabric.interval,
            "needs_sync": self.needed,
            "due": self.due,
            "next_run": format_time(self.next_run) if self.next_run else None,
            "counts": s.counts,
            "mismatches": list(s.mismatches),
            "branch": s.branch,
            "retirements": [{"due": format_time(d), "count": n} for d, n in s.retirements],
        }


def _moment(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{format_age((now - moment).total_seconds())} ({format_time(moment)})"


def rows(
    fabrics: list[FabricConfig],
    states: dict[str, SyncState],
    now: datetime,
    next_runs: dict[str, datetime],
) -> list[Row]:
    out = []
    for fabric in fabrics:
        state = states.get(fabric.site, SyncState())
        due = needs_sync(state, fabric.interval, now)
        computed = computed_state(state, fabric.interval, now)
        out.append(
            Row(fabric, state, computed, due.needed, due.reason, next_runs.get(fabric.name), now)
        )
    return out


def in_sync(rows: list[Row]) -> bool:
    """`status --check`: every enabled fabric is in sync."""
    return all(r.computed == "in_sync" for r in rows if r.fabric.enabled)
