"""The whole-run deadline and stop requests (SIGTERM), checked at safe points."""

from __future__ import annotations

import time
from collections.abc import Callable

from hhsync.durations import format_duration
from hhsync.errors import DeadlineExceeded, Interrupted


class Deadline:
    """A monotonic deadline; `phase` names what the run is doing, for the error message."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.start = clock()
        self.phase = "start"
        self.stop_reason: str | None = None

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def enter(self, phase: str) -> None:
        """Mark a safe point: stop here if the deadline passed or a stop was requested."""
        self.check()
        self.phase = phase

    def check(self) -> None:
        if self.stop_reason:
            raise Interrupted(f"stopped by {self.stop_reason} during {self.phase}")
        if self.remaining() <= 0:
            raise DeadlineExceeded(f"{format_duration(self.seconds)}, during {self.phase}")

    def timeout(self, limit: float) -> float:
        """A per-request timeout that never runs past the deadline."""
        self.check()
        return max(0.05, min(limit, self.remaining()))


def unlimited() -> Deadline:
    """For commands without a run deadline (check, status): per-request timeouts still apply."""
    return Deadline(float("inf"))
