"""Sync state: what NetBox stores on a fabric's site, and what it means. Pure, `now` passed in.

Stored (custom fields on the site): last success, last attempt, result, message, counts,
cabling mismatches, interval, fingerprint. Computed, never stored: whether a fabric needs a
sync, and its state (never_synced, in_sync, out_of_sync, error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hhsync.durations import format_duration


@dataclass(frozen=True)
class SyncState:
    """A fabric's stored sync state; all None for a site hhsync never synced."""

    last_success: datetime | None = None
    last_attempt: datetime | None = None
    result: str | None = None  # "ok" or "error"
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: tuple[str, ...] = ()
    interval: int | None = None
    fingerprint: str | None = None
    branch: dict[str, Any] | None = None  # the fabric's open branch (name, url, changes, ...)
    retirements: tuple[tuple[datetime, int], ...] = ()  # retired objects: (deleted when, count)

    @property
    def retire_due(self) -> datetime | None:
        """When the first retired object is due for deletion."""
        return self.retirements[0][0] if self.retirements else None

    @classmethod
    def from_custom_fields(cls, cf: dict[str, Any]) -> SyncState:
        counts = cf.get("hhsync_counts")
        mismatches = cf.get("hhsync_mismatches")
        interval = cf.get("hhsync_interval")
        return cls(
            last_success=parse_time(cf.get("hhsync_last_success")),
            last_attempt=parse_time(cf.get("hhsync_last_attempt")),
            result=cf.get("hhsync_result") if cf.get("hhsync_result") in ("ok", "error") else None,
            message=str(cf.get("hhsync_message") or ""),
            counts={k: v for k, v in counts.items() if isinstance(v, int)}
            if isinstance(counts, dict)
            else {},
            mismatches=tuple(str(m) for m in mismatches) if isinstance(mismatches, list) else (),
            interval=interval if isinstance(interval, int) else None,
            fingerprint=cf.get("hhsync_fingerprint") or None,
            branch=branch if isinstance(branch := cf.get("hhsync_branch"), dict) else None,
            retirements=_batches(cf.get("hhsync_retirements")),
        )


def _batches(value: Any) -> tuple[tuple[datetime, int], ...]:
    batches = []
    for batch in value if isinstance(value, list) else ():
        due = parse_time(batch.get("due")) if isinstance(batch, dict) else None
        if due is not None and isinstance(batch.get("count"), int):
            batches.append((due, batch["count"]))
    return tuple(sorted(batches))


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC to the second, as NetBox stores datetime custom fields."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Due:
    needed: bool
    reason: str  # why, or when the next sync is due


def needs_sync(state: SyncState, interval: int, now: datetime) -> Due:
    """Never synced, last attempt failed, or last success at least `interval` old."""
    if state.last_attempt is None:
        return Due(True, "never synced")
    if state.result != "ok" or state.last_success is None:
        return Due(True, "the last attempt failed")
    age = (now - state.last_success).total_seconds()
    if age >= interval:
        return Due(True, f"last success {format_duration(age)} ago")
    return Due(False, f"fresh, next sync due in {format_duration(interval - age)}")


def computed_state(state: SyncState, interval: int, now: datetime) -> str:
    """never_synced | in_sync | awaiting_review | out_of_sync | error, from the stored state
    and the clock. `awaiting_review`: the fabric's changes wait in a branch for a person."""
    if state.last_attempt is None:
        return "never_synced"
    if state.result != "ok":
        return "error"
    if state.last_success is None or (now - state.last_success).total_seconds() >= 2 * interval:
        return "out_of_sync"
    return "awaiting_review" if state.branch else "in_sync"


def record(
    *,
    now: datetime,
    ok: bool,
    message: str,
    counts: dict[str, int],
    mismatches: list[str],
    interval: int,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """Custom field values for the end of an attempt; last success only for a complete one."""
    fields: dict[str, Any] = {
        "hhsync_last_attempt": format_time(now),
        "hhsync_result": "ok" if ok else "error",
        "hhsync_message": message,
        "hhsync_counts": counts,
        "hhsync_mismatches": mismatches,
        "hhsync_interval": interval,
    }
    if ok:
        fields["hhsync_last_success"] = format_time(now)
        fields["hhsync_fingerprint"] = fingerprint
    return fields


def retirements_field(batches: tuple[tuple[datetime, int], ...]) -> dict[str, Any]:
    """The stored retirements, once a run has made its plan (else they stay as they were)."""
    return {"hhsync_retirements": [{"due": format_time(d), "count": n} for d, n in batches]}
